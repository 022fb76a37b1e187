"""Immune reversal by day 28 (SIP: HLA-DR > 8000 with ferritin < 4420; MALS: ferritin fall
≥ 15 %) and the immune state per sampling window. Post-baseline biomarkers enter pooled only
for blinded roles (:func:`components.blinding.may_see_post_baseline_biomarkers`).

The reversal proportion counts the blood-sampling subset (:func:`core.phenotype.reversal_subset`,
clinical.md §1.6: patients with serial sampling; those without ≥ 2 samples by day 28 are
counted as not reversed, and their number is shown next to each proportion).

Everything on this tab derives from post-baseline ferritin / HLA-DR, a guarded item
(docs/blinding.md 6.5): for blinded roles it is computed on the role's whole visible cohort
(:func:`components.data.cohort.guarded_scope`, the filters do not apply), overall and by
baseline immune state only when every stratum has at least ``MIN_CELL_SIZE`` patients, and a
sampling window only when that many patients were sampled in it; the rest is suppressed with a
chip."""

from __future__ import annotations

from typing import Any

import pandas as pd

from components.blinding import (
    MIN_CELL_SIZE,
    POOLED_LABEL,
    SUPPRESSED,
    cell_shown,
    groups_for,
    partition_shown,
)
from components.cohort import charts
from components.cohort.panel import Panel, PanelView, Section, group_headers
from components.data.cohort import (
    CohortFilters,
    compare_groups,
    guarded_scope,
    immune_samples,
    proportion_rows,
    strata_sizes,
)
from components.data.keys import Context
from components.format import fmt_num, fmt_prop
from components.server.cache import cache
from core.phenotype import reversal_subset, shift_summary

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
    vis = ctx.visibility
    scope = guarded_scope(ctx, filters)
    df = scope.frame
    samples = immune_samples(ctx)
    # the denominator of clinical.md §1.6: the blood-sampling subset, non-evaluable included
    rev = reversal_subset(samples["reversal"]).merge(
        df[["patient_id", *(["group"] if g.compared else [])]], on="patient_id"
    )
    suppressed: list[str] = []
    out: dict[str, Any] = {
        "n_subset": len(rev),
        "n_evaluable": int(rev["evaluable"].sum()),
        "n_not_evaluable": int((~rev["evaluable"]).sum()),
        "scope_note": scope.note,
    }
    if g.compared:
        two = rev[rev["group"].isin(g.labels)]
        out["reversal"] = compare_groups(two, "reversed", two["baseline_phenotype"], g)
        out["reversal_props"] = pd.concat(
            [
                _reversal_rows(two.assign(stratum="overall"), ["stratum", "group"]),
                _reversal_rows(two.assign(stratum=two["baseline_phenotype"]), ["stratum", "group"]),
            ],
            ignore_index=True,
        )
    else:
        out["reversal"] = pd.DataFrame()
        parts = []
        if cell_shown(vis, len(rev)):
            parts.append(_reversal_rows(rev.assign(stratum="overall"), ["stratum"]))
            if partition_shown(vis, strata_sizes(rev["baseline_phenotype"])):
                parts.append(
                    _reversal_rows(rev.assign(stratum=rev["baseline_phenotype"]), ["stratum"])
                )
            else:
                suppressed.append(
                    "Immune reversal by baseline immune state: a stratum has fewer than "
                    f"{MIN_CELL_SIZE} patients in the blood-sampling subset ({SUPPRESSED}); "
                    "pooled only."
                )
        else:
            suppressed.append(
                f"Immune reversal ({len(rev)} patients in the blood-sampling subset): {SUPPRESSED}."
            )
        props = (
            pd.concat(parts, ignore_index=True)
            if parts
            else _reversal_rows(rev.iloc[0:0].assign(stratum=[]), ["stratum"])
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
        sampled = dist.groupby(["group", "window"])["n_patients"].transform("sum")
        dist["share"] = dist["n_patients"] / sampled
        small = ~sampled.map(lambda n: cell_shown(vis, int(n)))
        if small.any():
            windows = sorted(set(dist.loc[small, "window"]), key=_window_order)
            suppressed.append(
                f"Immune state in sampling window(s) {', '.join(windows)}: fewer than "
                f"{MIN_CELL_SIZE} patients sampled ({SUPPRESSED})."
            )
            dist = dist[~small].reset_index(drop=True)
        if len(shifts) and not partition_shown(vis, shifts["n_patients"]):
            suppressed.append(
                "Immune-state shifts by baseline immune state: a stratum has fewer than "
                f"{MIN_CELL_SIZE} patients ({SUPPRESSED})."
            )
            shifts = pd.DataFrame()
    else:
        dist = pd.DataFrame(columns=["group", "window", "phenotype", "n_patients", "share"])
        shifts = pd.DataFrame()
    out["phenotype_over_time"] = dist
    out["shifts"] = shifts
    out["suppressed"] = tuple(suppressed)
    return out


def _reversal_rows(subset: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Reversal proportions of sampling-subset rows per level of ``by``
    (:func:`components.data.cohort.proportion_rows`) with ``not_evaluable``: how many of the
    ``n`` had fewer than 2 samples by day 28 (counted as not reversed, clinical.md §1.6)."""
    props = proportion_rows(subset, "reversed", by)
    missing = (
        (~subset["evaluable"].astype(bool)).groupby([subset[c] for c in by], observed=True).sum()
        if len(subset)
        else pd.Series(dtype=int)
    )
    keys = list(zip(*(props[c] for c in by), strict=True)) if len(by) > 1 else list(props[by[0]])
    props["not_evaluable"] = [int(missing.get(k, 0)) for k in keys]
    return props


def _window_order(label: str) -> int:
    return [w[2] for w in SHIFT_WINDOWS].index(label)


def render(res: dict[str, Any], ctx: Context) -> PanelView:
    g = groups_for(ctx.visibility)
    t = ctx.thresholds
    guard = None if g.compared else "post_baseline_biomarkers"
    sections = [
        Section(
            "Immune reversal by day 28",
            figure_name="reversal",
            figure=charts.reversal_figure(
                res["reversal_props"],
                g.labels,
                title=f"Reversal by day 28 ({subset_text(res)})",
            ),
            table_name=_reversal_table_name(res, g.compared),
            table=(
                reversal_table(res["reversal_props"], res["reversal"], g.labels)
                if len(res["reversal"])
                else (None if g.compared else pooled_reversal_table(res["reversal_props"]))
            ),
            headers={
                **group_headers(g.labels, ": reversed [95 % CI]"),
                **{f"ne{i}": f"{lab}: {NOT_EVALUABLE_HEADER}" for i, lab in enumerate(g.labels)},
            },
            guard=guard,
            note=res["scope_note"],
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
            guard=guard,
            note=res["scope_note"],
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
    return PanelView(
        sections=tuple(sections),
        notes=(note,),
        chips=chips,
        suppressed=tuple(res.get("suppressed", ())),
    )


def _reversal_table_name(res: dict[str, Any], compared: bool) -> str | None:
    if compared:
        return "reversal" if len(res["reversal"]) else None
    return "reversal_pooled" if len(res["reversal_props"]) else None


#: the column beside each reversal proportion: its non-evaluable patients (clinical.md §1.6)
NOT_EVALUABLE_HEADER = "< 2 samples by day 28 (counted not reversed)"


def subset_text(res: dict[str, Any]) -> str:
    """The denominator in words, with the non-evaluable count (figure title)."""
    return (
        f"blood-sampling subset, n = {res['n_subset']}; {res['n_not_evaluable']} with < 2 "
        "samples, counted not reversed"
    )


def reversal_table(
    props: pd.DataFrame, summary: pd.DataFrame, labels: tuple[str, ...]
) -> pd.DataFrame:
    """The primary-style table (:func:`charts.primary_table`) with, next to each group's
    proportion, how many of its patients had fewer than 2 samples (``ne0``, ``ne1``)."""
    table = charts.primary_table(props, summary, labels)
    if table.empty:
        return table
    for i, lab in reversed(list(enumerate(labels))):
        counts = props[props["group"] == lab].set_index("stratum")["not_evaluable"]
        col = [int(counts[k]) if k in counts.index else "–" for k in table["stratum_key"]]
        table.insert(table.columns.get_loc(f"g{len(labels) - 1}") + 1, f"ne{i}", col)
    return table


def pooled_reversal_table(props: pd.DataFrame) -> pd.DataFrame | None:
    """Blinded roles: reversal per pooled cell with its number of patients in the
    blood-sampling subset and of those without ≥ 2 samples."""
    if props.empty:
        return None
    return pd.DataFrame(
        {
            "Stratum": [charts.stratum_label(str(v)) for v in props["stratum"]],
            "Patients in the blood-sampling subset (n)": props["n"].astype(int).tolist(),
            "Reversed by day 28": [
                fmt_prop(int(e), int(n), float(lo), float(hi))
                for e, n, lo, hi in zip(
                    props["events"], props["n"], props["ci_lower"], props["ci_upper"], strict=True
                )
            ],
            f"Of them {NOT_EVALUABLE_HEADER}": props["not_evaluable"].astype(int).tolist(),
        }
    )


PANEL = Panel("immune", "Immune reversal", compute, render)
