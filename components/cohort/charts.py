"""Pure builders for the cohort page: tidy frames in, figures / display frames out.

No data access, no cache, no callbacks. Group colours are chosen from the *label*, never from
the arm: real labels use the arm colours of :mod:`components.theme`, the DSMB codes "Group A"
/ "Group B" two neutral colours assigned by code letter, pooled views the pooled grey and
phenotypes their phenotype colour. Every axis carries its unit; hover text is plain words.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from components.figures import base_layout
from components.format import MINUS, comparison_texts, fmt_num, fmt_p, fmt_prop, fmt_ratio, fmt_rd  # noqa: F401
from components.theme import GROUP_COLOURS, PHENOTYPE_COLOURS, PHENOTYPE_LABELS, POOLED_COLOUR
from core.vocab import ARM_LABELS, Arm, Phenotype

#: DSMB coded groups: neutral Tol "muted" indigo / teal, by code letter (not by arm)
CODED_COLOURS = {"Group A": "#332288", "Group B": "#44AA99"}


def colour_for(label: str, index: int = 0) -> str:
    if label == ARM_LABELS[Arm.PRECISION]:
        return GROUP_COLOURS[0]
    if label == ARM_LABELS[Arm.PLACEBO]:
        return GROUP_COLOURS[1]
    if label in CODED_COLOURS:
        return CODED_COLOURS[label]
    try:
        return PHENOTYPE_COLOURS[Phenotype(label)]
    except ValueError:
        pass
    return POOLED_COLOUR if index == 0 else "#999999"


def stratum_label(value: str) -> str:
    if value == "overall":
        return "All strata"
    try:
        return PHENOTYPE_LABELS[Phenotype(value)]
    except ValueError:
        return str(value)


# ---------------------------------------------------------------------------------------------
# Primary endpoint
# ---------------------------------------------------------------------------------------------


def primary_table(
    proportions: pd.DataFrame, summary: pd.DataFrame, labels: Sequence[str]
) -> pd.DataFrame:
    """Display rows: stratum, one column per group 'events/n (%) [95 % CI]', RD, OR, P.

    Group columns are keyed ``g0``, ``g1`` (headers carry the labels), so no label ever
    becomes a field or component id.
    """
    rows = []
    for stratum in ("overall", Phenotype.MALS.value, Phenotype.SIP.value):
        row: dict[str, Any] = {"stratum_key": stratum, "Stratum": stratum_label(stratum)}
        p = proportions[proportions["stratum"] == stratum]
        if p.empty:
            continue
        for i, lab in enumerate(labels):
            hit = p[p["group"] == lab]
            row[f"g{i}"] = (
                fmt_prop(
                    int(hit["events"].iloc[0]),
                    int(hit["n"].iloc[0]),
                    float(hit["ci_lower"].iloc[0]),
                    float(hit["ci_upper"].iloc[0]),
                )
                if len(hit)
                else "–"
            )
        if len(summary):
            s = summary[summary["stratum"] == stratum]
            if len(s) and not math.isnan(float(s["risk_difference"].iloc[0])):
                r = s.iloc[0]
                row["Risk difference, % (95 % CI)"] = fmt_rd(
                    r["risk_difference"],
                    r["risk_difference_ci_lower"],
                    r["risk_difference_ci_upper"],
                )
                row["Odds ratio (95 % CI)"] = fmt_ratio(
                    r["odds_ratio"], r["odds_ratio_ci_lower"], r["odds_ratio_ci_upper"]
                )
                row["Fisher P"] = fmt_p(r["p_value"])
            else:
                row["Risk difference, % (95 % CI)"] = "–"
                row["Odds ratio (95 % CI)"] = "–"
                row["Fisher P"] = "–"
        rows.append(row)
    return pd.DataFrame(rows)


def proportion_bars(
    proportions: pd.DataFrame,
    labels: Sequence[str],
    *,
    noun: str,
    clickable: bool,
    legend_y: float,
) -> go.Figure:
    """Grouped bars of a proportion per stratum (overall / MALS / SIP) and group, with the
    Wilson 95 % CI as error bars and "events/n" inside each bar."""
    fig = go.Figure()
    strata = [s for s in ("overall", "MALS", "SIP") if s in set(proportions["stratum"])]
    for i, lab in enumerate(labels):
        p = proportions[proportions["group"] == lab].set_index("stratum").reindex(strata)
        pct = 100 * p["proportion"].astype(float)
        fig.add_trace(
            go.Bar(
                x=[stratum_label(s) for s in strata],
                y=pct,
                name=lab,
                marker_color=colour_for(lab, i),
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": 100 * p["ci_upper"].astype(float) - pct,
                    "arrayminus": pct - 100 * p["ci_lower"].astype(float),
                    "color": "#333",
                },
                text=[
                    "0/0" if pd.isna(n) else f"{int(e)}/{int(n)}"
                    for e, n in zip(p["events"], p["n"], strict=True)
                ],
                textposition="inside",
                insidetextanchor="start",
                customdata=[[s, lab] for s in strata] if clickable else None,
                hovertemplate=(
                    f"{lab}<br>%{{x}}: %{{text}} {noun} (%{{y:.1f}} %)"
                    + ("<br>Click to list the patients" if clickable else "")
                    + "<extra></extra>"
                ),
            )
        )
    fig.update_layout(barmode="group", legend={"orientation": "h", "y": legend_y})
    return fig


def responders_figure(
    proportions: pd.DataFrame, labels: Sequence[str], *, title: str, threshold: float = 1.4
) -> go.Figure:
    """Grouped bars: % responders per stratum and group with Wilson 95 % CI.

    ``customdata`` = [stratum key, group label] (the group label is already the trace name, so
    it adds nothing a role could not see; blinded views only have the pooled label).
    """
    fig = proportion_bars(proportions, labels, noun="responders", clickable=True, legend_y=-0.18)
    fig.update_yaxes(title_text="Responders (%, 95 % CI)", rangemode="tozero")
    fig.update_xaxes(title_text="Immune-state stratum")
    return base_layout(fig, height=360, title=title)


#: forest x-axis (odds ratio, log): range and the only tick labels shown (no minor labels)
FOREST_RANGE = (0.05, 30.0)
FOREST_TICKS = (0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20)
#: box side in px: smallest (weight 0 / not estimable) and largest (the heaviest row)
FOREST_BOX_PX = (6.0, 18.0)


def _tick_text(v: float) -> str:
    return f"{v:g}"


def forest_level_label(subgroup: str, level: Any) -> str:
    """Display text of a subgroup level: immune-state codes as words, others as they are."""
    if subgroup == "overall":
        return "All patients"
    return stratum_label(str(level))


def forest_figure(
    forest: pd.DataFrame,
    *,
    compared: bool = True,
    difference_words: str = "",
    favours: tuple[str, str] = ("", ""),
    title: str = "",
) -> go.Figure:
    """Subgroup forest plot: odds ratio (log axis) with Woolf 95 % CI per subgroup level.

    Rows of :func:`core.stats.forest_rows`: an "All patients" diamond, then per subgroup a
    bold header row and one row per level. Boxes are sized by inverse-variance weight
    (``weight``; area-proportional, an open square when the estimate is not estimable);
    n, "OR (95 % CI)" and the treatment × subgroup interaction P are text columns right of
    the plot; the only tick labels are 0.05 … 20 (no minor labels); ``favours`` =
    (left, right) words under the axis, e.g. ("placebo", "precision"), (Group B, Group A).
    CIs beyond the axis are clipped to it (the text column gives the real limits).

    Blinded views get no forest (docs/blinding.md: no group comparison at all), so
    ``compared=False`` is refused.
    """
    if not compared:
        raise ValueError(
            "forest_figure: blinded (pooled) views have no forest plot; got compared=False"
        )
    labels: list[str] = []
    xs: list[float] = []
    lo: list[float] = []
    hi: list[float] = []
    weights: list[float] = []
    symbols: list[str] = []
    hover: list[str] = []
    n_text: list[str] = []
    est_text: list[str] = []
    p_text: list[str] = []

    def blank(label: str, p: str = "") -> None:
        labels.append(label)
        for col in (xs, lo, hi, weights):
            col.append(math.nan)
        symbols.append("square")
        hover.append("")
        n_text.append("")
        est_text.append("")
        p_text.append(p)

    for name in pd.unique(forest["subgroup"]):
        rows = forest[forest["subgroup"] == name]
        if name != "overall":
            ps = rows["interaction_p"] if "interaction_p" in rows else pd.Series(dtype=float)
            p = fmt_p(float(ps.iloc[0])) if len(ps) and not ps.isna().all() else "not tested"
            blank(f"<b>{name}</b>", p)
        for r in rows.to_dict("records"):
            level = forest_level_label(name, r["level"])
            labels.append(f"<b>{level}</b>" if name == "overall" else f"   {level}")
            est, elo, ehi = (
                float(r[c]) for c in ("odds_ratio", "odds_ratio_ci_lower", "odds_ratio_ci_upper")
            )
            xs.append(est)
            lo.append(elo)
            hi.append(ehi)
            w = float(r.get("weight", math.nan))
            weights.append(w)
            estimable = math.isfinite(w) and w > 0
            symbols.append(
                ("diamond" if name == "overall" else "square") + ("" if estimable else "-open")
            )
            hover.append(
                f"{level}: {r['events_treated']}/{r['n_treated']} vs "
                f"{r['events_control']}/{r['n_control']} responders; odds ratio "
                f"{fmt_ratio(est, elo, ehi)}"
            )
            n_text.append(str(int(r["n"])))
            est_text.append(fmt_ratio(est, elo, ehi) if estimable else "not estimable")
            p_text.append("")
    x = np.array(xs, dtype=float)
    x = np.where(np.isfinite(x) & (x > 0), x, np.nan)
    lo_a = np.array(lo, dtype=float)
    hi_a = np.array(hi, dtype=float)
    lo_a = np.clip(np.where(np.isfinite(lo_a) & (lo_a > 0), lo_a, FOREST_RANGE[0]), *FOREST_RANGE)
    hi_a = np.clip(np.where(np.isfinite(hi_a), hi_a, FOREST_RANGE[1]), *FOREST_RANGE)
    w = np.array(weights, dtype=float)
    w_ok = np.where(np.isfinite(w), w, 0.0)
    wmax = float(w_ok.max()) if len(w_ok) and w_ok.max() > 0 else 1.0
    small, large = FOREST_BOX_PX
    # area proportional to weight: side ∝ √weight
    sizes = small + (large - small) * np.sqrt(w_ok / wmax)
    y = list(range(len(labels)))
    fig = go.Figure(
        go.Scatter(
            x=x,
            y=y,
            mode="markers",
            marker={
                "symbol": symbols,
                "size": sizes,
                "color": "#222",
                "line": {"color": "#222", "width": 1},
            },
            error_x={
                "type": "data",
                "symmetric": False,
                "array": hi_a - x,
                "arrayminus": x - lo_a,
                "color": "#222",
                "thickness": 1.5,
                "width": 0,
            },
            hovertext=hover,
            hovertemplate="%{hovertext}<extra></extra>",
            showlegend=False,
        )
    )
    fig.add_vline(x=1, line_dash="dash", line_color="#888")
    words = difference_words.replace(" − ", " vs ")
    fig.update_xaxes(
        type="log",
        range=[math.log10(FOREST_RANGE[0]), math.log10(FOREST_RANGE[1])],
        tickvals=list(FOREST_TICKS),
        ticktext=[_tick_text(v) for v in FOREST_TICKS],
        minor={"showgrid": False, "ticks": ""},
        title_text=f"Odds ratio of response ({words}), log scale"
        if words
        else "Odds ratio, log scale",
        title_standoff=34,
    )
    fig.update_yaxes(
        tickvals=y,
        ticktext=labels,
        showgrid=False,
        zeroline=False,
        range=[len(labels) - 0.5, -0.5],
    )
    left, right = favours
    if left and right:
        for text, xpos, anchor in (
            (f"← favours {left}", 0.93, "right"),
            (f"favours {right} →", 1.075, "left"),
        ):
            fig.add_annotation(
                x=math.log10(xpos),
                xref="x",
                y=0,
                yref="paper",
                yanchor="top",
                yshift=-20,
                xanchor=anchor,
                text=text,
                showarrow=False,
                font={"size": 11, "color": "#555"},
            )
    columns = (("n", n_text, 8), ("OR (95 % CI)", est_text, 58), ("Interaction P", p_text, 200))
    for header, texts, shift in columns:
        fig.add_annotation(
            x=1,
            xref="paper",
            xanchor="left",
            xshift=shift,
            y=1,
            yref="paper",
            yanchor="bottom",
            text=f"<b>{header}</b>",
            showarrow=False,
            font={"size": 12},
        )
        for i, t in enumerate(texts):
            if t:
                fig.add_annotation(
                    x=1,
                    xref="paper",
                    xanchor="left",
                    xshift=shift,
                    y=i,
                    yref="y",
                    text=t,
                    showarrow=False,
                    font={"size": 12},
                )
    height = max(300, 26 * len(labels) + 150)
    base_layout(fig, height=height, title=title)
    fig.update_layout(margin={"l": 250, "r": 300, "t": 80, "b": 90})
    return fig


def forest_table(forest: pd.DataFrame, *, compared: bool = True) -> pd.DataFrame:
    """Forest rows as a table: subgroup, level, n, both groups' responders, RD, OR, weight, P.

    ``Weight, %`` is the row's inverse-variance weight as a share of its subgroup's total
    (100 for "All patients"). Blinded views have no forest (see :func:`forest_figure`).
    """
    if not compared:
        raise ValueError(
            "forest_table: blinded (pooled) views have no forest table; got compared=False"
        )
    totals = (
        forest.groupby("subgroup", sort=False)["weight"].transform("sum")
        if "weight" in forest
        else None
    )
    rows = []
    for i, r in enumerate(forest.to_dict("records")):
        share = math.nan
        if totals is not None and totals.iloc[i] > 0:
            share = 100 * float(r["weight"]) / float(totals.iloc[i])
        rows.append(
            {
                "Subgroup": "All patients" if r["subgroup"] == "overall" else r["subgroup"],
                "Level": forest_level_label(r["subgroup"], r["level"]),
                "n": int(r["n"]),
                "g0": fmt_prop(r["events_treated"], r["n_treated"]),
                "g1": fmt_prop(r["events_control"], r["n_control"]),
                "Risk difference, % (95 % CI)": fmt_rd(
                    r["risk_difference"],
                    r["risk_difference_ci_lower"],
                    r["risk_difference_ci_upper"],
                ),
                "Odds ratio (95 % CI)": fmt_ratio(
                    r["odds_ratio"], r["odds_ratio_ci_lower"], r["odds_ratio_ci_upper"]
                ),
                "Weight, %": fmt_num(share, 1) if math.isfinite(share) else "–",
                "Interaction P": fmt_p(r["interaction_p"]),
            }
        )
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# SOFA trajectories and the decrease
# ---------------------------------------------------------------------------------------------


def _rgba(hex_colour: str, alpha: float) -> str:
    h = hex_colour.lstrip("#")
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def trajectory_figure(traj: pd.DataFrame, *, title: str = "") -> go.Figure:
    """Mean daily SOFA per group with a 95 % CI band (days 1–15)."""
    fig = go.Figure()
    for i, lab in enumerate(pd.unique(traj["arm"])):
        t = traj[traj["arm"] == lab].sort_values("study_day")
        colour = colour_for(lab, i)
        fig.add_trace(
            go.Scatter(
                x=np.concatenate([t["study_day"], t["study_day"][::-1]]),
                y=np.concatenate([t["ci_upper"], t["ci_lower"][::-1]]),
                fill="toself",
                fillcolor=_rgba(colour, 0.15),
                line={"width": 0},
                hoverinfo="skip",
                showlegend=False,
                name=f"{lab} 95 % CI",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=t["study_day"],
                y=t["mean_sofa"],
                mode="lines+markers",
                name=lab,
                line={"color": colour, "width": 2.5},
                customdata=np.column_stack([t["n_patients"], t["ci_lower"], t["ci_upper"]]),
                hovertemplate=(
                    f"{lab}, day %{{x}}: mean SOFA %{{y:.1f}} points "
                    "(95 % CI %{customdata[1]:.1f}–%{customdata[2]:.1f}; %{customdata[0]} patients)"
                    "<extra></extra>"
                ),
            )
        )
    fig.add_vrect(x0=1.5, x1=9.5, fillcolor="#999", opacity=0.07, line_width=0)
    fig.add_annotation(
        x=5.5,
        y=1,
        yref="paper",
        text="primary endpoint window (days 2–9)",
        showarrow=False,
        font={"size": 11, "color": "#555"},
        yanchor="bottom",
    )
    fig.update_xaxes(
        title_text="Study day (day 1 = first 24 h from the first study-drug dose)", dtick=1
    )
    fig.update_yaxes(title_text="Mean SOFA score (points, 0–24)", rangemode="tozero")
    fig.update_layout(legend={"orientation": "h", "y": -0.22})
    return base_layout(fig, height=400, title=title)


def decrease_histogram(hist: pd.DataFrame, *, threshold: float = 1.4, title: str = "") -> go.Figure:
    """Distribution of the day-9 SOFA decrease (pre-binned), with the responder threshold line."""
    fig = go.Figure()
    for i, lab in enumerate(pd.unique(hist["group"])):
        h = hist[hist["group"] == lab]
        centre = (h["bin_lower"] + h["bin_upper"]) / 2
        fig.add_trace(
            go.Bar(
                x=centre,
                y=h["n_patients"],
                width=(h["bin_upper"] - h["bin_lower"]) * 0.9,
                name=lab,
                marker_color=colour_for(lab, i),
                opacity=0.75,
                customdata=np.column_stack([h["bin_lower"], h["bin_upper"]]),
                hovertemplate=(
                    f"{lab}: %{{y}} patients with a decrease from %{{customdata[0]:.1f}} "
                    "to below %{customdata[1]:.1f} points<extra></extra>"
                ),
            )
        )
    fig.add_vline(x=threshold, line_color="#b2182b", line_width=2, line_dash="dash")
    fig.add_annotation(
        x=threshold,
        y=1,
        yref="paper",
        xanchor="left",
        yanchor="top",
        text=f" responder: decrease > {threshold} →",
        showarrow=False,
        font={"color": "#b2182b", "size": 12},
    )
    fig.update_layout(barmode="group", legend={"orientation": "h", "y": -0.22})
    fig.update_xaxes(
        title_text="SOFA decrease: day 1 minus mean of days 2–9 (points; positive = improvement)"
    )
    fig.update_yaxes(title_text="Patients (n)")
    return base_layout(fig, height=380, title=title)


# ---------------------------------------------------------------------------------------------
# Kaplan–Meier with numbers at risk
# ---------------------------------------------------------------------------------------------


def _survival_at(curve: pd.DataFrame, times: Sequence[float]) -> np.ndarray:
    t = curve["time_days"].to_numpy(float)
    s = curve["survival"].to_numpy(float)
    idx = np.searchsorted(t, np.asarray(times, float), side="right") - 1
    return s[np.clip(idx, 0, len(s) - 1)]


def km_figure(
    km: Mapping[str, Any],
    *,
    horizon: int,
    annotation: str = "",
    title: str = "",
) -> go.Figure:
    """Kaplan–Meier curves with censor marks and a numbers-at-risk table under the plot.

    ``km``: label → :class:`core.stats.KaplanMeierResult` (``curve``, ``censor_times_days``,
    ``at_risk``). The at-risk row shows ``at_risk.n_at_risk`` at ``at_risk.time_days``.
    """
    labels = list(km)
    fig = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        row_heights=[0.76, 0.24],
        vertical_spacing=0.14,
    )
    for i, lab in enumerate(labels):
        res = km[lab]
        c = res.curve
        colour = colour_for(str(lab), i)
        fig.add_trace(
            go.Scatter(
                x=c["time_days"],
                y=c["survival"],
                mode="lines",
                line={"shape": "hv", "color": colour, "width": 2.5},
                name=str(lab),
                legendgroup=str(lab),
                customdata=np.column_stack([c["n_at_risk"], c["ci_lower"], c["ci_upper"]]),
                hovertemplate=(
                    f"{lab}, day %{{x:.0f}}: survival %{{y:.1%}} "
                    "(95 % CI %{customdata[1]:.1%}–%{customdata[2]:.1%}); "
                    "%{customdata[0]} at risk<extra></extra>"
                ),
            ),
            row=1,
            col=1,
        )
        ct = list(res.censor_times_days)
        if ct:
            fig.add_trace(
                go.Scatter(
                    x=ct,
                    y=_survival_at(c, ct),
                    mode="markers",
                    marker={"symbol": "line-ns-open", "size": 10, "color": colour},
                    name=f"{lab} censored",
                    legendgroup=str(lab),
                    showlegend=False,
                    hovertemplate=f"{lab}: censored at day %{{x:.0f}}<extra></extra>",
                ),
                row=1,
                col=1,
            )
        ar = res.at_risk
        fig.add_trace(
            go.Scatter(
                x=ar["time_days"],
                y=[i] * len(ar),
                mode="text",
                text=[str(int(n)) for n in ar["n_at_risk"]],
                textfont={"color": colour, "size": 13},
                showlegend=False,
                name=f"{lab} at risk",
                hovertemplate=f"{lab}: %{{text}} at risk on day %{{x:.0f}}<extra></extra>",
            ),
            row=2,
            col=1,
        )
    ticks = list(next(iter(km.values())).at_risk["time_days"]) if km else []
    fig.update_xaxes(range=[-1, horizon + 1], tickvals=ticks, showticklabels=True, row=1, col=1)
    fig.update_xaxes(
        title_text="Days from the first study-drug dose",
        range=[-1, horizon + 1],
        tickvals=ticks,
        showticklabels=False,
        showgrid=False,
        zeroline=False,
        row=2,
        col=1,
    )
    fig.update_yaxes(
        title_text="Survival probability", range=[0, 1.02], tickformat=".0%", row=1, col=1
    )
    fig.update_yaxes(
        tickvals=list(range(len(labels))),
        ticktext=[str(lab) for lab in labels],
        range=[len(labels) - 0.5, -0.5],
        showgrid=False,
        zeroline=False,
        title_text="",
        row=2,
        col=1,
    )
    fig.add_annotation(
        x=0,
        xref="paper",
        y=1.0,
        yref="y2 domain",
        yanchor="bottom",
        xanchor="left",
        text="<b>Number at risk</b>",
        showarrow=False,
        font={"size": 12},
    )
    if annotation:
        fig.add_annotation(
            x=0.01,
            xref="paper",
            y=0.02,
            yref="y domain",
            xanchor="left",
            yanchor="bottom",
            text=annotation,
            showarrow=False,
            align="left",
            bgcolor="rgba(255,255,255,0.85)",
            font={"size": 12},
        )
    fig.update_layout(legend={"orientation": "h", "y": 1.08, "x": 1, "xanchor": "right"})
    base_layout(fig, height=520, title=title)
    fig.update_layout(margin={"l": 190})
    return fig


def km_annotation(logrank: Any, cox: Any, *, ratio_words: str = "") -> str:
    parts = []
    if logrank is not None:
        parts.append(f"Log-rank P = {fmt_p(logrank.p_value)}")
    if cox is not None:
        parts.append(f"Cox HR ({ratio_words}) {fmt_ratio(cox.hazard_ratio, *cox.hazard_ratio_ci)}")
    return "<br>".join(parts)


def km_table(km: Mapping[str, Any]) -> pd.DataFrame:
    """Numbers at risk, one row per group, one column per time."""
    rows = []
    for lab, res in km.items():
        row = {"Group": str(lab)}
        for t, n in zip(res.at_risk["time_days"], res.at_risk["n_at_risk"], strict=True):
            row[f"Day {int(t)}"] = int(n)
        row["Median survival (days)"] = (
            "not reached" if math.isinf(res.median_days) else fmt_num(res.median_days, 0)
        )
        rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# Immune reversal and phenotype shifts
# ---------------------------------------------------------------------------------------------


def reversal_figure(props: pd.DataFrame, labels: Sequence[str], *, title: str = "") -> go.Figure:
    fig = proportion_bars(props, labels, noun="reversed", clickable=False, legend_y=-0.2)
    fig.update_yaxes(title_text="Reversed by day 28 (%)", range=[0, 100])
    fig.update_xaxes(title_text="Baseline immune state")
    return base_layout(fig, height=360, title=title)


def phenotype_shift_figure(
    dist: pd.DataFrame, *, windows: Sequence[str], title: str = ""
) -> go.Figure:
    groups = list(pd.unique(dist["group"])) if len(dist) else []
    fig = make_subplots(rows=1, cols=max(1, len(groups)), shared_yaxes=True, subplot_titles=groups)
    for j, grp in enumerate(groups, start=1):
        d = dist[dist["group"] == grp]
        for ph in Phenotype:
            sub = d[d["phenotype"] == ph.value].set_index("window").reindex(windows)
            if sub["n_patients"].isna().all():
                continue
            fig.add_trace(
                go.Bar(
                    x=list(windows),
                    y=100 * sub["share"].fillna(0),
                    name=PHENOTYPE_LABELS[ph],
                    marker_color=PHENOTYPE_COLOURS[ph],
                    legendgroup=ph.value,
                    showlegend=j == 1,
                    customdata=sub["n_patients"].fillna(0).astype(int),
                    hovertemplate=(
                        f"{grp}, %{{x}}: {PHENOTYPE_LABELS[ph]} in %{{customdata}} patients "
                        "(%{y:.0f} % of those sampled)<extra></extra>"
                    ),
                ),
                row=1,
                col=j,
            )
        fig.update_xaxes(title_text="Sampling window (study days)", row=1, col=j)
    fig.update_yaxes(title_text="Immune state, % of sampled patients", range=[0, 100], row=1, col=1)
    fig.update_layout(barmode="stack", legend={"orientation": "h", "y": -0.3})
    return base_layout(fig, height=380, title=title)


# ---------------------------------------------------------------------------------------------
# Safety
# ---------------------------------------------------------------------------------------------


def ae_table(table: pd.DataFrame, labels: Sequence[str]) -> pd.DataFrame:
    """AE display rows: SOC / PT with, per group (g0, g1, ...), 'patients (% of group) · events'
    and serious / severe patient counts."""
    rows = []
    for key, part in table.groupby(["level", "soc", "pt"], dropna=False, sort=False):
        level, soc, pt = key
        row: dict[str, Any] = {
            "Level": {
                "any": "Any adverse event",
                "soc": "System organ class",
                "pt": "Preferred term",
            }[level],
            "System organ class": "" if pd.isna(soc) else soc,
            "Preferred term": "" if pd.isna(pt) else pt,
            "AESI": "" if pd.isna(part["aesi"].iloc[0]) else str(part["aesi"].iloc[0]),
        }
        for i, lab in enumerate(labels):
            r = part[part["group"] == lab]
            if r.empty:
                row[f"g{i}"] = "0"
                row[f"g{i}_serious"] = 0
                row[f"g{i}_severe"] = 0
                continue
            r = r.iloc[0]
            row[f"g{i}"] = (
                f"{int(r['n_patients'])} ({fmt_num(float(r['percent_of_arm']), 1)} %) · {int(r['n_events'])} events"
            )
            row[f"g{i}_serious"] = int(r["n_patients_serious"])
            row[f"g{i}_severe"] = int(r["n_patients_severe"])
        rows.append(row)
    return pd.DataFrame(rows)


def ae_figure(
    table: pd.DataFrame, labels: Sequence[str], *, top: int = 15, title: str = ""
) -> go.Figure:
    """Horizontal bars: % of patients with each of the most frequent preferred terms."""
    pt = table[table["level"] == "pt"]
    totals = pt.groupby("pt")["n_patients"].sum().sort_values(ascending=False)
    keep = list(totals.index[:top])
    fig = go.Figure()
    for i, lab in enumerate(labels):
        d = pt[(pt["group"] == lab) & pt["pt"].isin(keep)].set_index("pt").reindex(keep)
        fig.add_trace(
            go.Bar(
                y=keep,
                x=d["percent_of_arm"],
                orientation="h",
                name=lab,
                marker_color=colour_for(lab, i),
                customdata=[[p, lab] for p in keep],
                text=d["n_patients"].fillna(0).astype(int),
                textposition="none",
                hovertemplate=(
                    f"{lab}: %{{y}} in %{{text}} patients (%{{x:.1f}} %)"
                    "<br>Click to list the patients<extra></extra>"
                ),
            )
        )
    fig.update_yaxes(autorange="reversed", title_text="")
    fig.update_xaxes(title_text="Patients with the event, % of group", rangemode="tozero")
    fig.update_layout(barmode="group", legend={"orientation": "h", "y": -0.12})
    base_layout(fig, height=max(360, 28 * len(keep) * max(1, len(labels)) // 2 + 140), title=title)
    fig.update_layout(margin={"l": 260})
    return fig


# ---------------------------------------------------------------------------------------------
# CONSORT
# ---------------------------------------------------------------------------------------------


def consort_figure(
    counts: pd.DataFrame, *, order: Sequence[str] = (), title: str = ""
) -> go.Figure:
    """CONSORT flow drawn with shapes: screened → excluded (reasons) → randomised → per group
    withdrawn → analysed (and per phenotype)."""
    c = counts

    def n(step: str, arm: Any = None, phenotype: Any = None) -> int:
        m = c["step"] == step
        m &= c["arm"].isna() if arm is None else c["arm"] == arm
        m &= c["phenotype"].isna() if phenotype is None else c["phenotype"] == phenotype
        m &= c["reason"].isna() if step != "withdrawn" else True
        hit = c.loc[m, "n"]
        return int(hit.sum()) if len(hit) else 0

    present = list(pd.unique(c.loc[c["step"] == "randomised", "arm"].dropna()))
    groups = [g for g in order if g in present] + [g for g in present if g not in order]
    fig = go.Figure()
    boxes: list[tuple[float, float, float, float, str, str]] = []

    def box(xc: float, yc: float, w: float, h: float, text: str, colour: str = "#333") -> None:
        boxes.append((xc - w / 2, yc - h / 2, xc + w / 2, yc + h / 2, text, colour))

    def arrow(x0: float, y0: float, x1: float, y1: float) -> None:
        fig.add_annotation(
            x=x1,
            y=y1,
            ax=x0,
            ay=y0,
            xref="x",
            yref="y",
            axref="x",
            ayref="y",
            showarrow=True,
            arrowhead=2,
            arrowsize=1,
            arrowwidth=1.3,
            arrowcolor="#555",
            text="",
        )

    box(0.3, 0.93, 0.34, 0.08, f"<b>Screened</b><br>n = {n('screened')}")
    reasons = c[(c["step"] == "excluded") & c["reason"].notna()]
    reason_lines = "<br>".join(
        f"• {r.replace(' [synthetic label]', '')}: {int(k)}"
        for r, k in zip(reasons["reason"].head(9), reasons["n"].head(9), strict=True)
    )
    box(0.76, 0.80, 0.46, 0.30, f"<b>Excluded</b> n = {n('excluded')}<br>{reason_lines}")
    arrow(0.3, 0.80, 0.53, 0.80)
    box(0.3, 0.62, 0.34, 0.08, f"<b>Randomised</b><br>n = {n('randomised')}")
    arrow(0.3, 0.89, 0.3, 0.66)
    k = max(1, len(groups))
    for i, g in enumerate(groups):
        xc = (i + 0.5) / k if k > 1 else 0.3
        w = min(0.42, 0.9 / k)
        colour = colour_for(str(g), i)
        box(xc, 0.45, w, 0.08, f"<b>{g}</b><br>randomised n = {n('randomised', g)}", colour)
        arrow(0.3, 0.58, xc, 0.49)
        wd = c[(c["step"] == "withdrawn") & (c["arm"] == g)]["n"].sum()
        box(xc, 0.30, w, 0.08, f"Withdrew consent with data removal<br>n = {int(wd)}", colour)
        arrow(xc, 0.41, xc, 0.34)
        ph = c[(c["step"] == "analysed") & (c["arm"] == g) & c["phenotype"].notna()]
        ph_text = ", ".join(
            f"{stratum_label(p)} {int(m)}" for p, m in zip(ph["phenotype"], ph["n"], strict=True)
        )
        box(xc, 0.10, w, 0.12, f"<b>Analysed</b> n = {n('analysed', g)}<br>{ph_text}", colour)
        arrow(xc, 0.26, xc, 0.16)
    for x0, y0, x1, y1, text, colour in boxes:
        fig.add_shape(
            type="rect",
            x0=x0,
            y0=y0,
            x1=x1,
            y1=y1,
            line={"color": colour, "width": 2},
            fillcolor="white",
            layer="below",
        )
        fig.add_annotation(
            x=(x0 + x1) / 2,
            y=(y0 + y1) / 2,
            text=text,
            showarrow=False,
            font={"size": 12},
            align="center" if "•" not in text else "left",
        )
    fig.update_xaxes(visible=False, range=[0, 1])
    fig.update_yaxes(visible=False, range=[0, 1])
    base_layout(fig, height=620, title=title)
    fig.update_layout(margin={"l": 10, "r": 10})
    return fig


def consort_table(counts: pd.DataFrame) -> pd.DataFrame:
    out = counts.rename(
        columns={
            "step": "Step",
            "arm": "Group",
            "phenotype": "Immune state",
            "reason": "Reason",
            "n": "n",
        }
    )
    return out.fillna("")


# ---------------------------------------------------------------------------------------------
# Table 1
# ---------------------------------------------------------------------------------------------

VARIABLE_LABELS = {
    "age_years": "Age (years), mean (SD)",
    "immune_state": "Immune state at baseline, n (%)",
    "baseline_sofa": "Baseline SOFA (points), median [IQR]",
    "apache_ii": "APACHE II (points), median [IQR]",
    "charlson": "Charlson comorbidity index (points), median [IQR]",
    "ferritin_ng_ml": "Baseline ferritin (ng/mL), median [IQR]",
    "hla_dr_ab_per_cell": "Baseline monocyte HLA-DR (AB/C), median [IQR]",
    "sex": "Sex, n (%)",
    "mechanical_ventilation": "Mechanical ventilation at baseline, n (%)",
    "infection_type": "Infection type, n (%)",
    "country": "Country, n (%)",
    "site_id": "Sites contributing patients, n",
}
#: display order of Table 1 rows (variables not listed follow in their own order)
TABLE_ONE_ORDER = (
    "age_years",
    "sex",
    "immune_state",
    "ferritin_ng_ml",
    "hla_dr_ab_per_cell",
    "baseline_sofa",
    "apache_ii",
    "charlson",
    "mechanical_ventilation",
    "infection_type",
    "country",
    "site_id",
)


def _continuous_cell(r: Mapping[str, Any]) -> str:
    digits = 0 if abs(float(r["median"]) if math.isfinite(float(r["median"])) else 0) >= 100 else 1
    if r["summary"] == "median_iqr":
        text = (
            f"{fmt_num(r['median'], digits)} "
            f"[{fmt_num(r['q1'], digits)}–{fmt_num(r['q3'], digits)}]"
        )
    else:
        text = f"{fmt_num(r['mean'], 1)} ({fmt_num(r['sd'], 1)})"
    if int(r["n_missing"]):
        text += f"; {int(r['n_missing'])} missing"
    return text


def table_one_display(t1: pd.DataFrame, groups: Sequence[str]) -> pd.DataFrame:
    """Table 1 rows: variable, level, one column per group (g0, g1, ...), SMD; no p-values.

    The SMD column is there only when exactly two groups are compared: a pooled (blinded)
    or single-group table has no comparison, so no empty column. Continuous cells say how
    many values are missing (never silently complete).
    """
    rows = []
    order = {v: i for i, v in enumerate(TABLE_ONE_ORDER)}
    variables = sorted(pd.unique(t1["variable"]), key=lambda v: order.get(v, len(order)))
    for var in variables:
        part = t1[t1["variable"] == var]
        kind = part["kind"].iloc[0]
        levels = [None] if kind != "categorical" else list(pd.unique(part["level"]))
        for j, lv in enumerate(levels):
            sub = part if lv is None else part[part["level"] == lv]
            row: dict[str, Any] = {
                "Variable": VARIABLE_LABELS.get(var, var) if j == 0 else "",
                "Level": "" if lv is None else str(lv),
            }
            for i, g in enumerate(groups):
                r = sub[sub["group"] == g]
                if r.empty:
                    row[f"g{i}"] = "–"
                    continue
                r = r.iloc[0]
                if kind == "continuous":
                    row[f"g{i}"] = _continuous_cell(r)
                elif kind == "distinct":
                    row[f"g{i}"] = str(int(r["count"]))
                else:
                    row[f"g{i}"] = f"{int(r['count'])} ({fmt_num(r['percent'], 1)} %)"
            if len(groups) == 2:
                smd = float(part["smd"].iloc[0])
                row["SMD"] = fmt_num(smd, 2) if j == 0 and not math.isnan(smd) else ""
            rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# Completeness
# ---------------------------------------------------------------------------------------------


def completeness_heatmap(grid: pd.DataFrame, *, title: str = "") -> go.Figure:
    """Share of SOFA components measured (not imputed) per site × study day."""
    if grid.empty:
        fig = go.Figure()
        return base_layout(fig, height=300, title=title)
    z = grid.pivot(index="site_id", columns="study_day", values="share_measured")
    nd = grid.pivot(index="site_id", columns="study_day", values="n_patient_days")
    ni = grid.pivot(index="site_id", columns="study_day", values="n_imputed")
    custom = np.dstack([nd.to_numpy(), ni.to_numpy()])
    fig = go.Figure(
        go.Heatmap(
            z=100 * z.to_numpy(),
            x=list(z.columns),
            y=list(z.index),
            zmin=50,
            zmax=100,
            colorscale="Cividis",
            colorbar={"title": {"text": "% measured"}},
            customdata=custom,
            hovertemplate=(
                "Site %{y}, study day %{x}: %{z:.0f} % of SOFA components measured "
                "(%{customdata[1]} imputed component-days over %{customdata[0]} patient-days)"
                "<br>Click to list the patients<extra></extra>"
            ),
        )
    )
    fig.update_xaxes(title_text="Study day", dtick=1)
    fig.update_yaxes(title_text="Site", autorange="reversed", dtick=1)
    return base_layout(fig, height=max(360, 16 * len(z) + 120), title=title)
