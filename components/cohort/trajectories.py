"""Mean SOFA by study day per group (pooled and by immune state when blinded) and the binned
distribution of the day-9 SOFA decrease.

Deaths are handled two ways, both computed and offered on the chart (docs/clinical.md,
"Primary endpoint (per SAP)"):

- **observed** (default): the mean of the SOFA values measured on each day, so patients who
  died or have no value that day drop out and the curve describes the survivors;
- **endpoint convention** (SAP): SOFA = ``EndpointRules.death_score`` (24) from the day of
  death inclusive, missing days while alive carried forward (LOCF), as the primary endpoint
  scores them; every patient counts on every day.

The number of patients behind each day's mean is in the hover text, the table and the note.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from components.blinding import POOLED_LABEL, groups_for
from components.cohort import charts
from components.cohort.panel import Panel, PanelView, Section
from components.data.cohort import PHENOTYPE_STRATA, CohortFilters, cohort_daily, frame
from components.data.keys import Context
from components.server.cache import cache
from core.stats import sofa_trajectories

TRAJECTORY_DAYS = range(1, 16)
DECREASE_BIN = 0.5  # edges at multiples of 0.5: "> 1.4" is exactly the bins from 1.5 up
#: how deaths and missing days enter a day's mean (module docstring)
OBSERVED = "observed"
ENDPOINT = "endpoint"
CONVENTIONS = {
    OBSERVED: "Observed values (patients who died or have no value that day drop out)",
    ENDPOINT: "Endpoint convention (death = 24 from the day of death, missing days carried "
    "forward)",
}
#: button labels of the chart's convention switch
CONVENTION_BUTTONS = {OBSERVED: "Observed (survivors)", ENDPOINT: "Death scored 24 (SAP)"}
TABLE_COLUMNS = {
    "convention": "Deaths",
    "arm": "Group",
    "study_day": "Study day",
    "n_patients": "Patients (n)",
    "mean_sofa": "Mean SOFA (points)",
    "sd_sofa": "SD (points)",
    "ci_lower": "95 % CI lower",
    "ci_upper": "95 % CI upper",
}


def endpoint_daily(
    daily: pd.DataFrame,
    patients: pd.DataFrame,
    *,
    days: range = TRAJECTORY_DAYS,
    death_score: int = 24,
) -> pd.DataFrame:
    """Daily SOFA as the primary endpoint scores it (docs/clinical.md, "Primary endpoint (per
    SAP)"): ``death_score`` from the study day of death inclusive, a missing day while alive carried forward from the
    last measured day (LOCF); a day before any measured value stays missing (never imputed as
    normal).

    ``daily``: ``patient_id``, ``study_day``, ``sofa_total``; ``patients``: ``patient_id``,
    ``death_study_day`` (NaN: alive). Returns one row per patient of ``patients`` and day.
    """
    ids = patients["patient_id"].drop_duplicates()
    grid = pd.MultiIndex.from_product(
        [ids, list(days)], names=["patient_id", "study_day"]
    ).to_frame(index=False)
    obs = daily.loc[daily["patient_id"].isin(ids), ["patient_id", "study_day", "sofa_total"]]
    out = grid.merge(obs, on=["patient_id", "study_day"], how="left")
    out = out.sort_values(["patient_id", "study_day"], kind="stable")
    out["sofa_total"] = out.groupby("patient_id", sort=False)["sofa_total"].ffill()
    death = out["patient_id"].map(
        patients.drop_duplicates("patient_id").set_index("patient_id")["death_study_day"]
    )
    dead = death.notna() & (out["study_day"] >= death)
    out.loc[dead, "sofa_total"] = float(death_score)
    return out.reset_index(drop=True)


def trajectory_table(
    daily: pd.DataFrame,
    grp: pd.DataFrame,
    patients: pd.DataFrame,
    convention: str,
    *,
    death_score: int = 24,
) -> pd.DataFrame:
    """Mean SOFA by day per label of ``grp`` (``patient_id``, ``group``) under ``convention``
    (:data:`OBSERVED` or :data:`ENDPOINT`), via :func:`core.stats.sofa_trajectories`."""
    if convention not in CONVENTIONS:
        raise ValueError(
            f"unknown death convention {convention!r}: expected one of {list(CONVENTIONS)}"
        )
    if convention == ENDPOINT:
        daily = endpoint_daily(daily, patients, death_score=death_score)
    parts = []
    for label in pd.unique(grp["group"]):
        sub = grp[grp["group"] == label]
        if sub.empty:
            continue
        parts.append(sofa_trajectories(daily, sub, days=TRAJECTORY_DAYS, arm_col="group"))
    cols = [c for c in TABLE_COLUMNS if c != "convention"]
    traj = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=cols)
    return traj.assign(convention=convention)[list(TABLE_COLUMNS)]


@cache.memoize()
def compute(ctx: Context, filters: CohortFilters) -> dict[str, Any]:
    """Mean SOFA by day under both death conventions and the binned day-9 decrease."""
    g = groups_for(ctx.visibility)
    df = frame(ctx, filters)
    daily = cohort_daily(ctx)
    daily = daily[daily["patient_id"].isin(df["patient_id"])]
    if g.compared:
        grp = df[["patient_id", "group"]]
    else:
        grp = pd.concat(
            [
                df[["patient_id"]].assign(group=POOLED_LABEL),
                df.loc[df["phenotype"].isin(PHENOTYPE_STRATA), ["patient_id", "phenotype"]].rename(
                    columns={"phenotype": "group"}
                ),
            ],
            ignore_index=True,
        )
    patients = df[["patient_id", "death_study_day"]]
    score = ctx.endpoint_rules.death_score
    traj = pd.concat(
        [
            trajectory_table(daily, grp, patients, c, death_score=score)
            for c in (OBSERVED, ENDPOINT)
        ],
        ignore_index=True,
    )
    # distribution of the day-9 decrease, pre-binned (no per-patient values in the payload)
    dec = df[df["evaluable_d9"].fillna(False).astype(bool)]
    values = dec["sofa_decrease_d9"].astype(float)
    lo = math.floor(values.min() / DECREASE_BIN) * DECREASE_BIN if len(values) else -2.0
    hi = (math.floor(values.max() / DECREASE_BIN) + 1) * DECREASE_BIN if len(values) else 4.0
    edges = np.arange(lo, hi + DECREASE_BIN / 2, DECREASE_BIN)
    hist_groups = (
        [(lab, dec[dec["group"] == lab]) for lab in g.labels]
        if g.compared
        else [(POOLED_LABEL, dec)]
    )
    hist_parts = []
    for label, sub in hist_groups:
        cnt, _ = np.histogram(sub["sofa_decrease_d9"].astype(float), bins=edges)
        hist_parts.append(
            pd.DataFrame(
                {"group": label, "bin_lower": edges[:-1], "bin_upper": edges[1:], "n_patients": cnt}
            )
        )
    hist = pd.concat(hist_parts, ignore_index=True)
    return {"trajectories": traj, "decrease_histogram": hist, "n_evaluable": len(dec)}


def n_per_day_note(traj: pd.DataFrame) -> str:
    """Patients behind each day's mean (days 1–15), per group and death convention."""
    parts = []
    for conv in CONVENTIONS:
        sub = traj[traj["convention"] == conv]
        groups = []
        for label in pd.unique(sub["arm"]):
            t = sub[sub["arm"] == label].sort_values("study_day")
            ns = [int(n) for n in t["n_patients"]]
            if len(set(ns)) == 1:
                groups.append(f"{label} {ns[0]} every day")
            else:
                groups.append(f"{label} " + ", ".join(str(n) for n in ns))
        parts.append(f"{CONVENTION_BUTTONS[conv]}: " + "; ".join(groups))
    return "Patients per day (days 1–15). " + ". ".join(parts) + "."


def convention_figure(traj: pd.DataFrame, *, title: str) -> go.Figure:
    """The trajectory chart with a switch between the death conventions: the observed curves
    shown first, the SAP curves (death = 24, LOCF) one click away."""
    figs = {
        c: charts.trajectory_figure(traj[traj["convention"] == c], title=title) for c in CONVENTIONS
    }
    fig = figs[OBSERVED]
    n_obs = len(fig.data)
    for tr in figs[ENDPOINT].data:
        fig.add_trace(tr.update(visible=False))
    n_all = len(fig.data)

    def shown(c: str) -> list[bool]:
        return [(i < n_obs) == (c == OBSERVED) for i in range(n_all)]

    fig.update_layout(
        updatemenus=[
            {
                "type": "buttons",
                "direction": "right",
                "x": 1,
                "xanchor": "right",
                "y": 1.0,
                "yanchor": "bottom",
                "pad": {"b": 4},
                "showactive": True,
                "active": 0,
                "buttons": [
                    {
                        "label": CONVENTION_BUTTONS[c],
                        "method": "update",
                        "args": [{"visible": shown(c)}],
                    }
                    for c in CONVENTIONS
                ],
            }
        ]
    )
    return fig


def render(res: dict[str, Any], ctx: Context) -> PanelView:
    rules = ctx.endpoint_rules
    traj = res["trajectories"]
    table = traj.assign(convention=traj["convention"].map(CONVENTION_BUTTONS))
    title = "Mean SOFA by study day (95 % CI)"
    return PanelView(
        sections=(
            Section(
                title,
                figure_name="trajectories",
                figure=convention_figure(traj, title=title),
                note=(
                    f"Deaths: by default the mean of the observed values, so patients who died "
                    f"or have no value that day drop out (the curve describes survivors). "
                    f"\u201c{CONVENTION_BUTTONS[ENDPOINT]}\u201d scores SOFA "
                    f"{rules.death_score} from the day of death and carries missing days "
                    f"forward, as the primary endpoint does (SAP). " + n_per_day_note(traj)
                ),
            ),
            Section(
                "Mean SOFA by study day",
                figure_name="decrease",
                figure=charts.decrease_histogram(
                    res["decrease_histogram"],
                    threshold=rules.threshold,
                    title=(
                        f"Day-{rules.last_day} SOFA decrease "
                        f"({res['n_evaluable']} evaluable patients)"
                    ),
                ),
                table_name="trajectories",
                table=table.rename(columns=TABLE_COLUMNS).round(2),
            ),
        )
    )


PANEL = Panel("trajectories", "SOFA trajectories", compute, render)
