"""Data completeness: measured vs imputed SOFA components per site × study day, and the
query list of patients whose primary endpoint uses imputed days."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from components.cohort import charts
from components.cohort.panel import Drill, Panel, PanelView, Section, first_point
from components.data.cohort import CohortFilters, cohort_daily, frame
from components.data.keys import Context
from components.server.cache import cache
from core.vocab import ORGANS

QUERY_COLUMNS = {
    "patient_id": "Patient",
    "site_id": "Site",
    "day1_components_imputed": "Day-1 components imputed (scored 0)",
    "days_2_9_carried_forward": "Days 2–9 carried forward (LOCF)",
    "days_2_9_scored_24_after_death": "Days 2–9 scored 24 (death)",
    "sofa_decrease_day9": "Day-9 SOFA decrease (points)",
    "responder_day9": "Responder (day 9)",
}


@cache.memoize()
def compute(ctx: Context, filters: CohortFilters) -> dict[str, Any]:
    """Measured vs imputed SOFA components per site × study day, and the endpoint query list."""
    df = frame(ctx, filters)
    daily = cohort_daily(ctx)
    daily = daily[
        daily["patient_id"].isin(df["patient_id"])
        & daily["study_day"].between(1, ctx.endpoint_rules.day15_last_day)
    ]
    long = pd.DataFrame(
        {
            "site_id": daily["patient_id"].map(df.set_index("patient_id")["site_id"]),
            "study_day": daily["study_day"].astype(int),
            "imputed": daily["n_components_imputed"].astype(int),
            "components": len(ORGANS),
        }
    )
    grid = long.groupby(["site_id", "study_day"], as_index=False).agg(
        n_patient_days=("imputed", "size"),
        n_imputed=("imputed", "sum"),
        n_components=("components", "sum"),
    )
    grid["share_imputed"] = grid["n_imputed"] / grid["n_components"]
    grid["share_measured"] = 1 - grid["share_imputed"]
    q = df[(df["n_locf_days_d9"].fillna(0) > 0) | (df["day1_components_imputed"] > 0)]
    query = pd.DataFrame(
        {
            "patient_id": q["patient_id"],
            "site_id": q["site_id"],
            "day1_components_imputed": q["day1_components_imputed"].astype(int),
            "days_2_9_carried_forward": q["n_locf_days_d9"].fillna(0).astype(int),
            "days_2_9_scored_24_after_death": q["n_death_days_d9"].fillna(0).astype(int),
            "sofa_decrease_day9": q["sofa_decrease_d9"].astype(float),
            "responder_day9": q["responder_d9"].astype(bool),
        }
    ).sort_values(
        ["days_2_9_carried_forward", "day1_components_imputed", "patient_id"],
        ascending=[False, False, True],
    )
    return {"grid": grid, "query": query.reset_index(drop=True)}


def render(res: dict[str, Any], ctx: Context) -> PanelView:
    return PanelView(
        sections=(
            Section(
                "SOFA components measured (not imputed), % per site and study day",
                figure_name="completeness",
                figure=charts.completeness_heatmap(
                    res["grid"],
                    title="SOFA components measured (not imputed), % per site and study day",
                ),
            ),
            Section(
                "Endpoint depends on imputed days: query list",
                table_name="query",
                table=res["query"].rename(columns=QUERY_COLUMNS),
            ),
        ),
        notes=(
            (
                "Query list: patients whose primary endpoint uses imputed days (day-1 components "
                "scored 0, or days 2–9 carried forward). Export it to raise data queries."
            ),
        ),
    )


def _cell_drill(click: Mapping[str, Any]) -> Drill | None:
    pt = first_point(click)
    if pt is None or pt.get("x") is None or pt.get("y") is None:
        return None
    return "site_day", {"site_id": pt["y"], "study_day": pt["x"]}


PANEL = Panel(
    "completeness", "Data completeness", compute, render, drills={"completeness": _cell_drill}
)
