"""CONSORT flow: screened → randomised → analysed (pooled for blinded roles)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from components.blinding import POOLED_LABEL, groups_for, load_groups
from components.cohort import charts
from components.cohort.panel import Panel, PanelView, Section
from components.data.cohort import CohortFilters, frame, site_countries
from components.data.keys import Context
from components.server.auth import ArmVisibility
from components.server.cache import cache
from components.server.context import engine
from core.repository import load_disposition
from core.stats import consort_counts


@cache.memoize()
def compute(ctx: Context, filters: CohortFilters) -> dict[str, Any]:
    """CONSORT counts (:func:`core.stats.consort_counts`; pooled for blinded roles) + notes."""
    d = load_disposition(engine()).merge(site_countries(), on="site_id", how="left")
    if ctx.sites is not None:
        d = d[d["site_id"].isin(ctx.sites)]
    if filters.site:
        d = d[d["site_id"].isin(filters.site)]
    if filters.country:
        d = d[d["country"].isin(filters.country)]
    if filters.phenotype:
        d = d[d["phenotype_at_screening"].isin(filters.phenotype)]
    notes = []
    if filters.patient_level():
        # screening rows have no age / infection / SOFA: restrict to the filtered patients
        kept = set(frame(ctx, filters)["patient_id"])
        d = d[d["patient_id"].isin(kept)]
        notes.append(
            "Age, infection and baseline SOFA filters are known only for randomised patients: "
            "screening and exclusion boxes show the patients that match them."
        )
    randomised = d[d["patient_id"].notna()]
    if ctx.visibility is ArmVisibility.NONE:
        arms = pd.DataFrame({"patient_id": randomised["patient_id"], "group": POOLED_LABEL})
    else:
        arms = load_groups(ctx.version, ctx.visibility)
        missing = ~randomised["patient_id"].isin(arms["patient_id"])
        if missing.any():
            extra = pd.DataFrame(
                {"patient_id": randomised.loc[missing, "patient_id"], "group": "arm not stored"}
            )
            arms = pd.concat([arms, extra], ignore_index=True)
            notes.append(f"{int(missing.sum())} randomised patient(s) without a stored arm.")
    return {"counts": consort_counts(d, arms, arm_col="group"), "notes": notes}


def render(res: dict[str, Any], ctx: Context) -> PanelView:
    g = groups_for(ctx.visibility)
    return PanelView(
        sections=(
            Section(
                "CONSORT counts",
                figure_name="consort",
                figure=charts.consort_figure(res["counts"], order=g.labels, title="CONSORT flow"),
                table_name="consort",
                table=charts.consort_table(res["counts"]),
            ),
        ),
        notes=tuple(res["notes"]),
    )


PANEL = Panel("flow", "CONSORT flow", compute, render)
