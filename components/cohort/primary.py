"""Primary endpoint: SOFA response by day 9 (and day 15), comparisons, and the subgroup forest.

Responder = SOFA decrease > threshold (day 1 minus the mean of days 2–9; docs/clinical.md
1.5), computed per patient by :func:`core.endpoints.sofa_response` in the data layer.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

import pandas as pd
from statsmodels.tools.sm_exceptions import (
    ConvergenceWarning,
    PerfectSeparationWarning,
    SingularMatrixWarning,
)

from components.blinding import POOLED_LABEL, ArmVisibility, Groups, groups_for
from components.cohort import charts
from components.cohort.panel import Drill, Panel, PanelView, Section, first_point, group_headers
from components.data.cohort import (
    PHENOTYPE_STRATA,
    CohortFilters,
    compare_groups,
    frame,
    proportion_rows,
)
from components.data.keys import Context
from components.server.cache import cache
from core.stats import arm_summary, forest_rows
from core.stats.subgroups import inverse_variance_weight

#: the two SOFA-response endpoints: tag → which EndpointRules day closes its window
ENDPOINTS = ("d9", "d15")
#: the pre-specified forest-plot subgroups: display name → column of the analysis frame.
#: Cut-points are the SAP's (docs/clinical.md §1.6 "Subgroups", eFigure 7B): APACHE II ≥ 25,
#: Charlson ≥ 5, baseline SOFA ≥ 10 points (columns built in components/data/cohort.py);
#: immune state, infection type and country are categorical (docs/features.md §5.5).
SUBGROUPS: Mapping[str, str] = {
    "Immune state": "phenotype",
    "APACHE II (points)": "apache_ge_25",
    "Charlson comorbidity index": "charlson_ge_5",
    "Baseline SOFA (points)": "sofa_ge_10",
    "Infection type": "infection_type",
    "Country": "country",
}
#: sites are not a pre-specified subgroup: their estimates get a separate panel, no
#: interaction P (33 sparse levels: the likelihood-ratio test is unstable and slow)
SITE_SUBGROUP = ("Site", "site_id")
#: subgroups with more levels than this get per-level rows but no interaction P
MAX_INTERACTION_LEVELS = 8
#: the figure note naming the subgroups and cut-points used
SUBGROUP_NOTE = (
    "Pre-specified subgroups (SAP, docs/clinical.md §1.6): immune state (MALS / SIP), "
    "APACHE II ≥ 25 vs < 25, Charlson comorbidity index ≥ 5 vs < 5, baseline SOFA ≥ 10 vs "
    "< 10 points (the SAP's cut-points), infection type and country (by category). Boxes are "
    "sized by inverse-variance weight; interaction P from a logistic likelihood-ratio test "
    "of treatment × subgroup; confidence limits beyond 0.05–30 are drawn to the axis edge. "
    "Site-level estimates are shown separately and are not a pre-specified analysis."
)


def last_day(tag: str, ctx: Context) -> int:
    return ctx.endpoint_rules.last_day if tag == "d9" else ctx.endpoint_rules.day15_last_day


def _forest(two: pd.DataFrame, g: Groups) -> pd.DataFrame:
    """:func:`core.stats.forest_rows` on the pre-specified subgroups that have ≥ 2 levels.

    Subgroups with more than :data:`MAX_INTERACTION_LEVELS` levels are summarised per level
    and carry no interaction P (NaN).
    """
    levels = {name: two[col].dropna().nunique() for name, col in SUBGROUPS.items()}
    tested = {n: SUBGROUPS[n] for n, k in levels.items() if 2 <= k <= MAX_INTERACTION_LEVELS}
    with warnings.catch_warnings():
        # statsmodels evaluates bse / llf lazily, outside core's own warning filter: sparse
        # levels can separate (reported as not estimable; the LR statistic stays defined)
        for w in (RuntimeWarning, ConvergenceWarning, PerfectSeparationWarning):
            warnings.simplefilter("ignore", w)
        warnings.simplefilter("ignore", SingularMatrixWarning)
        forest = forest_rows(
            two,
            outcome_col="responder_d9",
            subgroups=tested,
            arm_col="group",
            treated=g.treated,
            control=g.control,
        )
    parts = [forest]
    for name, k in levels.items():
        if k > MAX_INTERACTION_LEVELS:
            parts.append(_per_level(two, name, SUBGROUPS[name], g, forest.columns))
    order = {name: i for i, name in enumerate(["overall", *SUBGROUPS])}
    out = pd.concat(parts, ignore_index=True)
    out["_o"] = out["subgroup"].map(order)
    return out.sort_values("_o", kind="stable").drop(columns="_o").reset_index(drop=True)


def _per_level(
    two: pd.DataFrame, name: str, col: str, g: Groups, columns: pd.Index
) -> pd.DataFrame:
    """Forest rows per level of ``col`` without an interaction test (NaN P)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        table = arm_summary(
            two,
            outcome_col="responder_d9",
            arm_col="group",
            stratum_col=col,
            treated=g.treated,
            control=g.control,
        ).iloc[1:]
    table = table.rename(columns={"stratum": "level"}).assign(subgroup=name, interaction_p=math.nan)
    table["n"] = table["n_treated"] + table["n_control"]
    table["weight"] = [
        inverse_variance_weight(a, b)
        for a, b in zip(table["odds_ratio_ci_lower"], table["odds_ratio_ci_upper"], strict=True)
    ]
    return table[list(columns)]


def _site_forest(two: pd.DataFrame, forest: pd.DataFrame, g: Groups) -> pd.DataFrame:
    """All patients + one row per site (sorted by site id), no interaction P."""
    name, col = SITE_SUBGROUP
    sites = _per_level(two, name, col, g, forest.columns)
    sites = sites.sort_values("level", key=lambda s: s.astype(str), kind="stable")
    overall = forest[forest["subgroup"] == "overall"]
    return pd.concat([overall, sites], ignore_index=True)


@cache.memoize()
def compute(ctx: Context, filters: CohortFilters) -> dict[str, Any]:
    """Responder proportions (day 9 and day 15), comparisons and forest rows.

    Keys: ``n``; ``proportions_d9`` / ``proportions_d15`` (``stratum``, ``group``, ``n``,
    ``events``, ``proportion``, ``ci_lower``, ``ci_upper``); ``summary_d9`` / ``summary_d15``
    (:func:`core.stats.arm_summary`, empty for blinded roles); ``forest``
    (:func:`core.stats.forest_rows` on the pre-specified subgroups) and ``site_forest`` (all
    patients + one row per site); both empty for blinded roles, who see no forest.
    """
    g = groups_for(ctx.visibility)
    df = frame(ctx, filters)
    strata_df = df[df["phenotype"].isin(PHENOTYPE_STRATA)]
    out: dict[str, Any] = {"n": len(df)}
    for tag in ENDPOINTS:
        col = f"responder_{tag}"
        if g.compared:
            two = df[df["group"].isin(g.labels)]
            strata = two["phenotype"].where(two["phenotype"].isin(PHENOTYPE_STRATA))
            summ = compare_groups(two, col, strata, g)
            by = ["stratum", "group"]
            props = pd.concat(
                [
                    proportion_rows(two.assign(stratum="overall"), col, by),
                    proportion_rows(strata_df.assign(stratum=strata_df["phenotype"]), col, by),
                ],
                ignore_index=True,
            )
        else:
            summ = pd.DataFrame()
            props = pd.concat(
                [
                    proportion_rows(df.assign(stratum="overall"), col, ["stratum"]),
                    proportion_rows(
                        strata_df.assign(stratum=strata_df["phenotype"]), col, ["stratum"]
                    ),
                ],
                ignore_index=True,
            )
            props["group"] = POOLED_LABEL
        out[f"summary_{tag}"] = summ
        out[f"proportions_{tag}"] = props
    forest = site_forest = pd.DataFrame()
    if g.compared:
        two = df[df["group"].isin(g.labels)]
        if two["group"].nunique() == 2:
            forest = _forest(two, g)
            site_forest = _site_forest(two, forest, g)
    out["forest"] = forest
    out["site_forest"] = site_forest
    return out


def render(res: dict[str, Any], ctx: Context) -> PanelView:
    g = groups_for(ctx.visibility)
    rules = ctx.endpoint_rules
    sections = []
    for tag in ENDPOINTS:
        day = last_day(tag, ctx)
        kind = "Primary endpoint" if tag == "d9" else "Secondary endpoint"
        sections.append(
            Section(
                f"{kind}: SOFA response by day {day}",
                figure_name=f"responders_{tag}",
                figure=charts.responders_figure(
                    res[f"proportions_{tag}"],
                    g.labels,
                    title=f"SOFA response by day {day} (decrease > {rules.threshold:g})",
                    threshold=rules.threshold,
                ),
                table_name=f"primary_{tag}",
                table=charts.primary_table(
                    res[f"proportions_{tag}"], res[f"summary_{tag}"], g.labels
                ),
                headers=group_headers(g.labels, ": responders [95 % CI]"),
            )
        )
    if g.compared and len(res["forest"]):
        favours = (
            ("placebo", "precision")
            if g.visibility is ArmVisibility.FULL
            else (g.control, g.treated)
        )
        for key, name, heading, fig_title in (
            (
                "forest",
                "forest",
                "Pre-specified subgroups",
                f"Pre-specified subgroups (day-{rules.last_day} response; exploratory)",
            ),
            (
                "site_forest",
                "forest_sites",
                "Site-level estimates",
                f"Sites (day-{rules.last_day} response; not pre-specified)",
            ),
        ):
            sections.append(
                Section(
                    heading,
                    figure_name=name,
                    figure=charts.forest_figure(
                        res[key],
                        difference_words=g.difference_words,
                        favours=favours,
                        title=fig_title,
                    ),
                    table_name=name,
                    table=charts.forest_table(res[key]),
                    headers=group_headers(g.labels, ": responders"),
                )
            )
    if g.compared:
        note = (
            f"Risk difference = {g.difference_words} (percentage points, Newcombe 95 % CI); "
            "odds ratio with Woolf 95 % CI; two-sided Fisher exact P; interaction P from a "
            "logistic likelihood-ratio test. Subgroup analyses are exploratory."
        )
        notes = (note, SUBGROUP_NOTE)
    else:
        note = (
            "Pooled responder proportions with Wilson 95 % CI; comparisons between "
            "allocation groups (and the subgroup forest) are not shown in the blinded view."
        )
        notes = (note,)
    return PanelView(sections=tuple(sections), notes=notes)


def _bar_drill(tag: str):
    def drill(click: Mapping[str, Any]) -> Drill | None:
        pt = first_point(click)
        custom = (pt or {}).get("customdata")
        if not custom:
            return None
        return "responders", {"stratum": custom[0], "group": custom[1], "endpoint": tag}

    return drill


def _cell_drill(tag: str):
    def drill(click: Mapping[str, Any]) -> Drill | None:
        col = click.get("colId") or ""
        # dash-ag-grid reports the row by its id (getRowId: the stratum_key column)
        stratum = click.get("rowId") or (click.get("data") or {}).get("stratum_key")
        if not (col.startswith("g") and col[1:].isdigit() and stratum):
            return None
        return "responders", {"stratum": stratum, "group_index": int(col[1:]), "endpoint": tag}

    return drill


PANEL = Panel(
    "primary",
    "Primary endpoint",
    compute,
    render,
    drills={
        **{f"responders_{t}": _bar_drill(t) for t in ENDPOINTS},
        **{f"primary_{t}": _cell_drill(t) for t in ENDPOINTS},
    },
)
