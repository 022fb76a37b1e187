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

from components.blinding import POOLED_LABEL, Groups, groups_for
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

#: the two SOFA-response endpoints: tag → which EndpointRules day closes its window
ENDPOINTS = ("d9", "d15")
#: forest-plot subgroups: display name → column of the analysis frame (docs/features.md 5.5)
SUBGROUPS: Mapping[str, str] = {
    "Immune state": "phenotype",
    "APACHE II ≥ 25": "apache_ge_25",
    "Charlson ≥ 5": "charlson_ge_5",
    "Baseline SOFA ≥ 10": "sofa_ge_10",
    "Infection type": "infection_type",
    "Country": "country",
    "Site": "site_id",
}
#: subgroups with more levels than this get per-level rows but no interaction P: the
#: likelihood-ratio test over many sparse levels is unstable (and slow: seconds per call)
MAX_INTERACTION_LEVELS = 8


def last_day(tag: str, ctx: Context) -> int:
    return ctx.endpoint_rules.last_day if tag == "d9" else ctx.endpoint_rules.day15_last_day


def _forest(two: pd.DataFrame, g: Groups) -> pd.DataFrame:
    """:func:`core.stats.forest_rows` on the subgroups that have ≥ 2 levels.

    Subgroups with more than :data:`MAX_INTERACTION_LEVELS` levels (sites) are summarised with
    :func:`core.stats.arm_summary` per level and carry no interaction P (NaN).
    """
    levels = {name: two[col].dropna().nunique() for name, col in SUBGROUPS.items()}
    tested = {n: SUBGROUPS[n] for n, k in levels.items() if 2 <= k <= MAX_INTERACTION_LEVELS}
    with warnings.catch_warnings():
        # statsmodels evaluates bse / llf lazily, outside core's own warning filter: sparse
        # subgroup levels can separate (reported to core; the LR statistic stays defined)
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
            col = SUBGROUPS[name]
            table = arm_summary(
                two,
                outcome_col="responder_d9",
                arm_col="group",
                stratum_col=col,
                treated=g.treated,
                control=g.control,
            ).iloc[1:]
            table = table.rename(columns={"stratum": "level"}).assign(
                subgroup=name, interaction_p=math.nan
            )
            table["n"] = table["n_treated"] + table["n_control"]
            parts.append(table[forest.columns])
    order = {name: i for i, name in enumerate(["overall", *SUBGROUPS])}
    out = pd.concat(parts, ignore_index=True)
    out["_o"] = out["subgroup"].map(order)
    return out.sort_values("_o", kind="stable").drop(columns="_o").reset_index(drop=True)


@cache.memoize()
def compute(ctx: Context, filters: CohortFilters) -> dict[str, Any]:
    """Responder proportions (day 9 and day 15), comparisons and forest rows.

    Keys: ``n``; ``proportions_d9`` / ``proportions_d15`` (``stratum``, ``group``, ``n``,
    ``events``, ``proportion``, ``ci_lower``, ``ci_upper``); ``summary_d9`` / ``summary_d15``
    (:func:`core.stats.arm_summary`, empty for blinded roles); ``forest``
    (:func:`core.stats.forest_rows`, or pooled proportions per subgroup level when blinded).
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
    if g.compared:
        two = df[df["group"].isin(g.labels)]
        forest = _forest(two, g) if two["group"].nunique() == 2 else pd.DataFrame()
    else:
        parts = [
            proportion_rows(df.assign(level="all"), "responder_d9", ["level"]).assign(
                subgroup="overall"
            )
        ]
        for name, col in SUBGROUPS.items():
            rows = proportion_rows(df.assign(level=df[col]), "responder_d9", ["level"])
            parts.append(rows.assign(subgroup=name))
        forest = pd.concat(parts, ignore_index=True)
    out["forest"] = forest
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
    if len(res["forest"]):
        sections.append(
            Section(
                "Subgroup estimates",
                figure_name="forest",
                figure=charts.forest_figure(
                    res["forest"],
                    compared=g.compared,
                    difference_words=g.difference_words,
                    title=f"Subgroups (day-{rules.last_day} response; exploratory)",
                ),
                table_name="forest",
                table=charts.forest_table(res["forest"], compared=g.compared),
                headers=group_headers(g.labels),
            )
        )
    if g.compared:
        note = (
            f"Risk difference = {g.difference_words} (percentage points, Newcombe 95 % CI); "
            "odds ratio with Woolf 95 % CI; two-sided Fisher exact P; interaction P from a "
            "logistic likelihood-ratio test. Subgroup analyses are exploratory."
        )
    else:
        note = (
            "Pooled responder proportions with Wilson 95 % CI; comparisons between "
            "allocation groups are not shown in the blinded view."
        )
    return PanelView(sections=tuple(sections), notes=(note,))


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
