"""Mean SOFA by study day per group (pooled and by immune state when blinded) and the binned
distribution of the day-9 SOFA decrease."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from components.blinding import POOLED_LABEL, groups_for
from components.cohort import charts
from components.cohort.panel import Panel, PanelView, Section
from components.data.cohort import PHENOTYPE_STRATA, CohortFilters, cohort_daily, frame
from components.data.keys import Context
from components.server.cache import cache
from core.stats import sofa_trajectories

TRAJECTORY_DAYS = range(1, 16)
DECREASE_BIN = 0.5  # edges at multiples of 0.5: "> 1.4" is exactly the bins from 1.5 up
TABLE_COLUMNS = {
    "arm": "Group",
    "study_day": "Study day",
    "n_patients": "Patients (n)",
    "mean_sofa": "Mean SOFA (points)",
    "sd_sofa": "SD (points)",
    "ci_lower": "95 % CI lower",
    "ci_upper": "95 % CI upper",
}


@cache.memoize()
def compute(ctx: Context, filters: CohortFilters) -> dict[str, Any]:
    """Mean SOFA by day (:func:`core.stats.sofa_trajectories`) and the binned day-9 decrease."""
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
    parts = []
    for label in pd.unique(grp["group"]):
        sub = grp[grp["group"] == label]
        if sub.empty:
            continue
        parts.append(sofa_trajectories(daily, sub, days=TRAJECTORY_DAYS, arm_col="group"))
    # no patient left after filtering: an empty table with the columns, never a crash
    traj = (
        pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(TABLE_COLUMNS))
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


def render(res: dict[str, Any], ctx: Context) -> PanelView:
    rules = ctx.endpoint_rules
    return PanelView(
        sections=(
            Section(
                "Mean SOFA by study day (95 % CI)",
                figure_name="trajectories",
                figure=charts.trajectory_figure(
                    res["trajectories"], title="Mean SOFA by study day (95 % CI)"
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
                table=res["trajectories"].rename(columns=TABLE_COLUMNS).round(2),
            ),
        )
    )


PANEL = Panel("trajectories", "SOFA trajectories", compute, render)
