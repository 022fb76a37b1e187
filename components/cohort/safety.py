"""Safety: adverse events by group × SOC × PT, adverse events of special interest (anemia,
hemorrhage: by group only for roles that may compare groups) and deaths to day 90.

Blinded roles (docs/blinding.md 6.5): the filtered adverse-event table leaves the AESI events
out entirely (also from its SOC and "any" rows, which would otherwise be differenced), and the
AESIs are shown pooled on the role's whole visible cohort
(:func:`components.data.cohort.guarded_scope`), overall and by baseline immune state, each cell
over at least ``MIN_CELL_SIZE`` patients (:func:`components.blinding.cell_shown`,
:func:`components.blinding.partition_shown`); smaller cells are suppressed with a chip."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from components.blinding import (
    GUARDS,
    MIN_CELL_SIZE,
    POOLED_LABEL,
    SUPPRESSED,
    cell_shown,
    groups_for,
    may_compare_groups,
    partition_shown,
)
from components.cohort import charts
from components.cohort.panel import Drill, Panel, PanelView, Section, first_point, group_headers
from components.data.cohort import (
    CohortFilters,
    aesi_mask,
    cohort_adverse_events,
    frame,
    guarded_scope,
    strata_sizes,
)
from components.data.keys import Context
from components.format import comparison_texts, fmt_prop
from components.server.cache import cache
from core.stats import AE_TABLE_COLUMNS, adverse_event_table, compare_proportions

#: drug-specific adverse events of special interest (docs/clinical.md; can reveal the arm)
AESI_KINDS = ("anemia", "hemorrhage")
DEATH_COLUMNS = {
    "patient_id": "Patient",
    "site_id": "Site",
    "phenotype": "Immune state",
    "death_study_day": "Study day of death",
    "group": "Group",
}
#: the pooled AESI table of blinded roles (a guarded item: docs/blinding.md 6.5)
AESI_POOLED_COLUMNS = (
    "Adverse event of special interest",
    "Stratum",
    "Patients (n)",
    "Patients with the event",
)


@cache.memoize()
def compute(ctx: Context, filters: CohortFilters) -> dict[str, Any]:
    """AEs by group × SOC × PT (:func:`core.stats.adverse_event_table`), AESIs, deaths."""
    g = groups_for(ctx.visibility)
    df = frame(ctx, filters)
    all_aes = cohort_adverse_events(ctx)
    aes = all_aes[all_aes["patient_id"].isin(df["patient_id"])]
    scope = guarded_scope(ctx, filters)
    if not scope.filtered:
        # the AESIs never enter the filtered table of a blinded role (not even its SOC / any rows)
        aes = aes[~aesi_mask(aes)]
    if g.compared:
        groups = df.loc[df["group"].isin(g.labels), ["patient_id", "group"]]
        n_by = {lab: int((groups["group"] == lab).sum()) for lab in g.labels}
    else:
        groups = df[["patient_id"]].assign(group=POOLED_LABEL)
        n_by = {POOLED_LABEL: len(df)}
    aes = aes[aes["patient_id"].isin(groups["patient_id"])]
    table = (
        adverse_event_table(aes, groups, n_by, arm_col="group")
        if len(aes)
        else pd.DataFrame(columns=list(AE_TABLE_COLUMNS))
    )
    table = table.rename(columns={"arm": "group"})
    out: dict[str, Any] = {"table": table, "n_by_group": n_by}
    aesi_rows = []
    if g.compared and all(n_by.values()):
        merged = aes.merge(groups, on="patient_id")
        for kind in AESI_KINDS:
            hit = merged[merged["aesi"] == kind].groupby("group")["patient_id"].nunique()
            e1, e2 = int(hit.get(g.treated, 0)), int(hit.get(g.control, 0))
            aesi_rows.append(
                {
                    "aesi": kind,
                    "comparison": compare_proportions(e1, n_by[g.treated], e2, n_by[g.control]),
                }
            )
    out["aesi"] = aesi_rows
    out["aesi_pooled"], out["suppressed"] = (
        ((), ()) if scope.filtered else _aesi_pooled(scope.frame, all_aes, g.visibility)
    )
    out["scope_note"] = scope.note
    deaths = df[df["died_90"]].sort_values(["death_study_day", "patient_id"])
    cols = ["patient_id", "site_id", "phenotype", "death_study_day"]
    if g.compared:
        cols.append("group")
    out["deaths"] = deaths[cols].reset_index(drop=True)
    return out


def _aesi_pooled(
    patients: pd.DataFrame, aes: pd.DataFrame, visibility: Any
) -> tuple[tuple[dict[str, Any], ...], tuple[str, ...]]:
    """Blinded roles: patients with each AESI in the whole visible cohort, overall and by
    baseline immune state (all its levels as one partition), cells of at least MIN_CELL_SIZE
    patients only. Returns (rows, suppression texts)."""
    rows: list[dict[str, Any]] = []
    suppressed: list[str] = []
    n = len(patients)
    if not cell_shown(visibility, n):
        return (), (f"Adverse events of special interest ({n} patients): {SUPPRESSED}.",)
    strata = patients["phenotype"]
    by_stratum = partition_shown(visibility, strata_sizes(strata))
    if not by_stratum:
        suppressed.append(
            "Adverse events of special interest by immune state: a stratum has fewer than "
            f"{MIN_CELL_SIZE} patients ({SUPPRESSED}); pooled counts only."
        )
    hits = aes[aes["patient_id"].isin(patients["patient_id"])]
    for kind in AESI_KINDS:
        with_kind = set(hits.loc[hits["aesi"] == kind, "patient_id"])
        cells = [("All patients", patients)]
        if by_stratum:
            cells += [
                (charts.stratum_label(str(v)), patients[strata == v])
                for v in sorted(strata.dropna().unique(), key=str)
            ]
        for label, part in cells:
            rows.append(
                {
                    "Adverse event of special interest": kind,
                    "Stratum": label,
                    "Patients (n)": len(part),
                    "Patients with the event": int(part["patient_id"].isin(with_kind).sum()),
                }
            )
    return tuple(rows), tuple(suppressed)


def render(res: dict[str, Any], ctx: Context) -> PanelView:
    g = groups_for(ctx.visibility)
    labels = tuple(res["n_by_group"])
    heads = {}
    for i, lab in enumerate(labels):
        heads[f"g{i}"] = f"{lab} (n = {res['n_by_group'][lab]}): patients (%) · events"
        heads[f"g{i}_serious"] = f"{lab}: serious (patients)"
        heads[f"g{i}_severe"] = f"{lab}: severe (patients)"
    blinded_table = not may_compare_groups(ctx.visibility)
    sections = [
        Section(
            "Adverse events by system organ class and preferred term"
            + (" (adverse events of special interest left out)" if blinded_table else ""),
            figure_name="ae",
            figure=charts.ae_figure(
                res["table"], list(labels), title="Most frequent adverse events (preferred terms)"
            ),
            table_name="ae",
            table=charts.ae_table(res["table"], labels),
            headers=heads,
        )
    ]
    chips: tuple[str, ...] = ()
    if res["aesi"]:
        rows = []
        for item in res["aesi"]:
            m = item["comparison"]
            t = comparison_texts(m)
            rows.append(
                {
                    "Adverse event of special interest": item["aesi"],
                    "g0": fmt_prop(m.events_treated, m.n_treated),
                    "g1": fmt_prop(m.events_control, m.n_control),
                    "Risk difference, % (95 % CI)": t["rd"],
                    "Fisher P": t["p"],
                }
            )
        sections.append(
            Section(
                "Adverse events of special interest",
                table_name="aesi",
                table=pd.DataFrame(rows),
                headers=group_headers(g.labels),
            )
        )
    elif blinded_table:
        chips = (
            (
                "Anemia and hemorrhage (adverse events of special interest) by allocation "
                "group, and the patients behind them, are withheld; pooled counts only. "
                + GUARDS["aesi_by_arm"]
            ),
        )
    if res.get("aesi_pooled"):
        sections.append(
            Section(
                "Adverse events of special interest (pooled)",
                table_name="aesi_pooled",
                table=pd.DataFrame(list(res["aesi_pooled"]), columns=list(AESI_POOLED_COLUMNS)),
                guard="aesi_by_arm",
                note=res["scope_note"],
            )
        )
    sections.append(
        Section(
            "Deaths to day 90",
            table_name="deaths",
            table=res["deaths"].rename(columns=DEATH_COLUMNS),
        )
    )
    return PanelView(
        sections=tuple(sections), chips=chips, suppressed=tuple(res.get("suppressed", ()))
    )


def _ae_drill(click: Mapping[str, Any]) -> Drill | None:
    custom = (first_point(click) or {}).get("customdata")
    if not custom:
        return None
    return "ae", {"pt": custom[0], "group": custom[1]}


PANEL = Panel("safety", "Safety", compute, render, drills={"ae": _ae_drill})
