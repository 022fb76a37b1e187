"""Immune reversal by day 28 (SIP: HLA-DR > 8000 with ferritin < 4420; MALS: ferritin fall
≥ 15 %) and the immune state per sampling window. Post-baseline biomarkers enter pooled only
for blinded roles (:func:`components.blinding.may_see_post_baseline_biomarkers`)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from components.blinding import POOLED_LABEL, groups_for
from components.cohort import charts
from components.cohort.panel import Panel, PanelView, Section, group_headers
from components.data.cohort import (
    CohortFilters,
    compare_groups,
    frame,
    immune_samples,
    proportion_rows,
)
from components.data.keys import Context
from components.format import fmt_num
from components.server.cache import cache
from core.phenotype import shift_summary

SHIFT_WINDOWS = (
    (1, 1, "day 1"),
    (2, 4, "days 2–4"),
    (5, 8, "days 5–8"),
    (9, 15, "days 9–15"),
    (16, 28, "days 16–28"),
)


@cache.memoize()
def compute(ctx: Context, filters: CohortFilters) -> dict[str, Any]:
    """Immune reversal by group (:func:`core.phenotype.immune_reversal`) and phenotype shifts."""
    g = groups_for(ctx.visibility)
    df = frame(ctx, filters)
    samples = immune_samples(ctx)
    rev = samples["reversal"].merge(
        df[["patient_id", *(["group"] if g.compared else [])]], on="patient_id"
    )
    evaluable = rev[rev["evaluable"]]
    out: dict[str, Any] = {"n_evaluable": len(evaluable)}
    if g.compared:
        two = evaluable[evaluable["group"].isin(g.labels)]
        out["reversal"] = compare_groups(two, "reversed", two["baseline_phenotype"], g)
        out["reversal_props"] = pd.concat(
            [
                proportion_rows(two.assign(stratum="overall"), "reversed", ["stratum", "group"]),
                proportion_rows(
                    two.assign(stratum=two["baseline_phenotype"]), "reversed", ["stratum", "group"]
                ),
            ],
            ignore_index=True,
        )
    else:
        out["reversal"] = pd.DataFrame()
        props = pd.concat(
            [
                proportion_rows(evaluable.assign(stratum="overall"), "reversed", ["stratum"]),
                proportion_rows(
                    evaluable.assign(stratum=evaluable["baseline_phenotype"]),
                    "reversed",
                    ["stratum"],
                ),
            ],
            ignore_index=True,
        )
        out["reversal_props"] = props.assign(group=POOLED_LABEL)
    # phenotype distribution per sampling window (pooled when blinded)
    ot = samples["over_time"]
    ot = ot[ot["patient_id"].isin(df["patient_id"])]
    groups = (
        df[["patient_id", "group"]] if g.compared else df[["patient_id"]].assign(group=POOLED_LABEL)
    )
    if len(ot):
        shifts = shift_summary(ot, groups, arm_col="group")
        ot = ot.merge(groups, on="patient_id")
        window = pd.Series(None, index=ot.index, dtype=object)
        for lo, hi, label in SHIFT_WINDOWS:
            window = window.mask(ot["study_day"].between(lo, hi), label)
        ot["window"] = window
        # one sample per patient and window: the last one
        last = (
            ot.dropna(subset=["window"])
            .sort_values("study_day")
            .groupby(["patient_id", "window"], as_index=False)
            .last()
        )
        dist = (
            last.groupby(["group", "window", "phenotype"], observed=True)
            .size()
            .rename("n_patients")
            .reset_index()
        )
        dist["share"] = dist["n_patients"] / dist.groupby(["group", "window"])[
            "n_patients"
        ].transform("sum")
    else:
        dist = pd.DataFrame(columns=["group", "window", "phenotype", "n_patients", "share"])
        shifts = pd.DataFrame()
    out["phenotype_over_time"] = dist
    out["shifts"] = shifts
    return out


def render(res: dict[str, Any], ctx: Context) -> PanelView:
    g = groups_for(ctx.visibility)
    t = ctx.thresholds
    sections = [
        Section(
            "Immune reversal by day 28",
            figure_name="reversal",
            figure=charts.reversal_figure(
                res["reversal_props"],
                g.labels,
                title=(
                    f"Immune reversal by day 28 ({res['n_evaluable']} patients with ≥ 2 samples)"
                ),
            ),
            table_name="reversal" if len(res["reversal"]) else None,
            table=(
                charts.primary_table(res["reversal_props"], res["reversal"], g.labels)
                if len(res["reversal"])
                else None
            ),
            headers=group_headers(g.labels, ": reversed [95 % CI]"),
        ),
        Section(
            "Immune-state shifts",
            figure_name="phenotype_shift",
            figure=charts.phenotype_shift_figure(
                res["phenotype_over_time"],
                windows=[w[2] for w in SHIFT_WINDOWS],
                title="Immune state over time (last sample per window)",
            ),
            table_name="shifts" if len(res["shifts"]) else None,
            table=res["shifts"].rename(columns={"arm": "Group"}) if len(res["shifts"]) else None,
        ),
    ]
    chips = (
        ()
        if g.compared
        else (
            (
                "Post-baseline HLA-DR and ferritin by allocation group (they move with the "
                "active products) are withheld; pooled summaries only."
            ),
        )
    )
    note = (
        f"SIP reversal: HLA-DR > {fmt_num(t.hla_dr_reversal_above_ab_per_cell, 0)} AB/C with "
        f"ferritin < {fmt_num(t.ferritin_mals_above_ng_ml, 0)} ng/mL; MALS reversal: ferritin "
        f"fall ≥ {fmt_num(100 * t.ferritin_reversal_fall_fraction, 0)} % from baseline."
    )
    return PanelView(sections=tuple(sections), notes=(note,), chips=chips)


PANEL = Panel("immune", "Immune reversal", compute, render)
