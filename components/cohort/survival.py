"""Survival to day 28 and day 90: Kaplan–Meier with numbers at risk, log-rank, Cox HR and the
mortality comparison by group (pooled and by immune state for blinded roles)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from components.blinding import POOLED_LABEL, groups_for
from components.cohort import charts
from components.cohort.panel import Panel, PanelView, Section, group_headers
from components.data.cohort import PHENOTYPE_STRATA, CohortFilters, frame
from components.data.keys import Context
from components.format import comparison_texts, fmt_prop
from components.server.cache import cache
from core.stats import compare_proportions, cox_hr, kaplan_meier, logrank

AT_RISK_TIMES = {28: (0, 7, 14, 21, 28), 90: (0, 15, 30, 45, 60, 75, 90)}
HORIZONS = tuple(AT_RISK_TIMES)


def _cox_or_none(two: pd.DataFrame, dur: str, ev: str, g: Any, horizon: int) -> Any:
    """The Cox hazard ratio, or None where it does not exist: a group without an event (or
    with every patient an event) separates the data, the coefficient diverges and its
    exponential overflows (a filter narrowed to a few patients did this: HTTP 500)."""
    events = two.groupby("group")[ev].agg(["sum", "size"])
    if ((events["sum"] == 0) | (events["sum"] == events["size"])).any():
        return None
    try:
        return cox_hr(
            two[dur], two[ev], two["group"], treated=g.treated, control=g.control, horizon=horizon
        )
    except (OverflowError, ValueError):  # lifelines.exceptions.ConvergenceError is a ValueError
        return None


def _horizon(df: pd.DataFrame, ctx: Context, horizon: int) -> dict[str, Any]:
    g = groups_for(ctx.visibility)
    dur, ev = f"duration_{horizon}", f"event_{horizon}"
    times = AT_RISK_TIMES[horizon]
    out: dict[str, Any] = {"horizon": horizon, "n": len(df)}
    if g.compared:
        two = df[df["group"].isin(g.labels)]
        km = (
            kaplan_meier(two[dur], two[ev], two["group"], horizon=horizon, at_risk_times=times)
            if len(two)
            else {}
        )
        out["km"] = {lab: km[lab] for lab in g.labels if lab in km}  # display order
        if two["group"].nunique() == 2:
            out["logrank"] = logrank(two[dur], two[ev], two["group"], horizon=horizon)
            out["cox"] = _cox_or_none(two, dur, ev, g, horizon)
            e1 = int(two.loc[two["group"] == g.treated, f"died_{horizon}"].sum())
            n1 = int((two["group"] == g.treated).sum())
            e2 = int(two.loc[two["group"] == g.control, f"died_{horizon}"].sum())
            n2 = int((two["group"] == g.control).sum())
            out["mortality"] = compare_proportions(e1, n1, e2, n2)
        else:
            out["logrank"] = out["cox"] = out["mortality"] = None
    else:
        pooled = (
            kaplan_meier(
                df[dur], df[ev], [POOLED_LABEL] * len(df), horizon=horizon, at_risk_times=times
            )
            if len(df)
            else {}
        )
        ph = df[df["phenotype"].isin(PHENOTYPE_STRATA)]
        by_ph = (
            kaplan_meier(ph[dur], ph[ev], ph["phenotype"], horizon=horizon, at_risk_times=times)
            if len(ph)
            else {}
        )
        out["km"] = {**pooled, **by_ph}
        out["logrank"] = (
            logrank(ph[dur], ph[ev], ph["phenotype"], horizon=horizon)
            if ph["phenotype"].nunique() == 2
            else None
        )
        out["cox"] = None
        out["mortality"] = None
    return out


@cache.memoize()
def compute(ctx: Context, filters: CohortFilters) -> dict[int, dict[str, Any]]:
    """Per horizon: Kaplan–Meier per group (pooled and by phenotype when blinded), log-rank,
    Cox HR and the mortality comparison (None where not allowed or not estimable)."""
    df = frame(ctx, filters)
    return {h: _horizon(df, ctx, h) for h in HORIZONS}


def render(res: dict[int, dict[str, Any]], ctx: Context) -> PanelView:
    g = groups_for(ctx.visibility)
    sections = []
    for horizon in HORIZONS:
        r = res[horizon]
        ann = charts.km_annotation(
            r["logrank"],
            r["cox"],
            ratio_words=g.difference_words.replace(" − ", " vs ") if g.compared else "",
        )
        if not g.compared and r["logrank"] is not None:
            ann = ann.replace("Log-rank P", "Log-rank P (MALS vs SIP)")
        fig = charts.km_figure(
            r["km"], horizon=horizon, annotation=ann, title=f"Survival to day {horizon}"
        )
        m = r["mortality"]
        if m is not None:
            t = comparison_texts(m)
            table = pd.DataFrame(
                [
                    {
                        "Outcome": f"{horizon}-day mortality",
                        "g0": fmt_prop(m.events_treated, m.n_treated),
                        "g1": fmt_prop(m.events_control, m.n_control),
                        "Risk difference, % (95 % CI)": t["rd"],
                        "Odds ratio (95 % CI)": t["or"],
                        "Fisher P": t["p"],
                    }
                ]
            )
            sections.append(
                Section(
                    f"{horizon}-day mortality",
                    figure_name=f"km{horizon}",
                    figure=fig,
                    table_name=f"mortality_{horizon}",
                    table=table,
                    headers=group_headers(g.labels),
                )
            )
        else:
            sections.append(
                Section(f"Survival to day {horizon}", figure_name=f"km{horizon}", figure=fig)
            )
        sections.append(
            Section(
                f"Numbers at risk (day {horizon})",
                table_name=f"at_risk_{horizon}",
                table=charts.km_table(r["km"]),
            )
        )
    chips = (
        () if g.compared else ("Survival by allocation group is not shown in the blinded view.",)
    )
    return PanelView(sections=tuple(sections), chips=chips)


PANEL = Panel("survival", "Survival", compute, render)
