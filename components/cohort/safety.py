"""Safety: adverse events by group × SOC × PT, adverse events of special interest (anemia,
hemorrhage: by group only for roles that may compare groups) and deaths to day 90."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from components.blinding import POOLED_LABEL, groups_for, may_compare_groups
from components.cohort import charts
from components.cohort.panel import Drill, Panel, PanelView, Section, first_point, group_headers
from components.data.cohort import CohortFilters, cohort_adverse_events, frame
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


@cache.memoize()
def compute(ctx: Context, filters: CohortFilters) -> dict[str, Any]:
    """AEs by group × SOC × PT (:func:`core.stats.adverse_event_table`), AESIs, deaths."""
    g = groups_for(ctx.visibility)
    df = frame(ctx, filters)
    aes = cohort_adverse_events(ctx)
    aes = aes[aes["patient_id"].isin(df["patient_id"])]
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
    deaths = df[df["died_90"]].sort_values(["death_study_day", "patient_id"])
    cols = ["patient_id", "site_id", "phenotype", "death_study_day"]
    if g.compared:
        cols.append("group")
    out["deaths"] = deaths[cols].reset_index(drop=True)
    return out


def render(res: dict[str, Any], ctx: Context) -> PanelView:
    g = groups_for(ctx.visibility)
    labels = tuple(res["n_by_group"])
    heads = {}
    for i, lab in enumerate(labels):
        heads[f"g{i}"] = f"{lab} (n = {res['n_by_group'][lab]}): patients (%) · events"
        heads[f"g{i}_serious"] = f"{lab}: serious (patients)"
        heads[f"g{i}_severe"] = f"{lab}: severe (patients)"
    sections = [
        Section(
            "Adverse events by system organ class and preferred term",
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
    elif not may_compare_groups(ctx.visibility):
        chips = (
            (
                "Anemia and hemorrhage (adverse events of special interest) by allocation "
                "group, and the patients behind them, are withheld; pooled counts only."
            ),
        )
    sections.append(
        Section(
            "Deaths to day 90",
            table_name="deaths",
            table=res["deaths"].rename(columns=DEATH_COLUMNS),
        )
    )
    return PanelView(sections=tuple(sections), chips=chips)


def _ae_drill(click: Mapping[str, Any]) -> Drill | None:
    custom = (first_point(click) or {}).get("customdata")
    if not custom:
        return None
    return "ae", {"pt": custom[0], "group": custom[1]}


PANEL = Panel("safety", "Safety", compute, render, drills={"ae": _ae_drill})
