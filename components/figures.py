"""Pure figure builders: tidy DataFrames in, ``plotly.graph_objects.Figure`` out.

No data access, no cache, no callbacks, so every builder is tested without a browser. Colours
come from :mod:`components.theme` (the same organ colour on every page); every axis carries
its unit; hover text is in plain words.

Time axes: daily values are drawn at the integer study day ``n`` (bar centre); time-stamped
events are drawn at ``x = days_since_anchor + 0.5`` so that the 24 h of study day ``n``
([anchor + (n-1)·24 h, anchor + n·24 h), clinical.md 1.5) cover exactly the bar of day ``n``.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from components.theme import (
    FONT_FAMILY,
    ORGAN_COLOURS,
    ORGAN_LABELS,
    PHENOTYPE_COLOURS,
    PHENOTYPE_LABELS,
    TOTAL_LINE_COLOUR,
)
from core.derive import vasopressor_counts, vasopressor_duration_text
from core.rules import PhenotypeThresholds, SofaRules
from core.vocab import ORGANS, SOFA_COLUMNS, SOFA_TOTAL, EpisodeKind, Phenotype

IMPUTATION_WORDS = {
    "day1_zero": "not measured on day 1: scored 0 (assumed normal)",
    "locf": "not measured: last observation carried forward",
    "death24": "after death: scored 24 for the endpoint",
}
LANE_ORDER = (
    "Norepinephrine",
    "Epinephrine",
    "Dopamine",
    "Dobutamine",
    "Ventilation",
    "Sedation",
    "RRT",
    "Study drug",
)
VENT_COLOURS = {
    EpisodeKind.INVASIVE_VENTILATION: "#4477AA",
    EpisodeKind.NONINVASIVE_VENTILATION: "#77AADD",
    EpisodeKind.CPAP: "#99DDFF",
    EpisodeKind.OXYGEN: "#DDDDDD",
}
VENT_LABELS = {
    EpisodeKind.INVASIVE_VENTILATION: "invasive ventilation",
    EpisodeKind.NONINVASIVE_VENTILATION: "non-invasive ventilation",
    EpisodeKind.CPAP: "CPAP",
    EpisodeKind.OXYGEN: "oxygen only",
}


#: the chart tools a chart keeps: download as PNG and reset the axes (plotly's other buttons
#: were a Tab stop each; assets/20_a11y.js makes what is left one toolbar, one Tab stop)
MODEBAR_BUTTONS = (("toImage", "resetScale2d"),)


def chart_config(filename: str) -> dict[str, Any]:
    """A dcc.Graph ``config``: the chart tools of :data:`MODEBAR_BUTTONS`, no plotly logo, the
    PNG download named ``filename`` at twice the size on screen."""
    return {
        "displaylogo": False,
        "modeBarButtons": [list(group) for group in MODEBAR_BUTTONS],
        "toImageButtonOptions": {"format": "png", "filename": filename, "scale": 2},
    }


def base_layout(fig: go.Figure, *, height: int, title: str | None = None) -> go.Figure:
    fig.update_layout(
        height=height,
        margin={"l": 70, "r": 20, "t": 60 if title else 30, "b": 50},
        font={"family": FONT_FAMILY, "size": 13},
        template="plotly_white",
        title={"text": title, "x": 0.01, "font": {"size": 15}} if title else None,
        hoverlabel={"font_size": 13},
    )
    return fig


def _imputation_text(row: pd.Series, organ: str) -> str:
    kind = row.get(f"{organ}_imputation")
    if isinstance(kind, str) and kind:
        return IMPUTATION_WORDS.get(kind, kind)
    return "measured"


def sofa_timeline(
    daily: pd.DataFrame,
    *,
    death_study_day: float | None = None,
    selected_day: int | None = None,
    show_sofa2: bool = False,
    endpoint_last_day: int | None = 9,
    max_day: int = 28,
    lanes: pd.DataFrame | None = None,
    death_score: int = 24,
) -> go.Figure:
    """Stacked daily organ components, the total as a line, endpoint window and death marked.

    Parameters
    ----------
    daily
        One patient's rows: ``study_day``, ``sofa_<organ>``, ``sofa_total``,
        ``<organ>_imputed`` / ``<organ>_imputation``; optional ``sofa2_total``.
    lanes
        Optional organ-support segments (see :func:`support_segments`), drawn in a second row
        on the same time axis.
    """
    with_lanes = lanes is not None
    fig = (
        make_subplots(
            rows=2,
            cols=1,
            shared_xaxes=True,
            row_heights=[0.66, 0.34],
            vertical_spacing=0.06,
        )
        if with_lanes
        else go.Figure()
    )
    row_kw = {"row": 1, "col": 1} if with_lanes else {}
    d = daily.sort_values("study_day")
    days = d["study_day"].to_numpy()
    for organ in ORGANS:
        col = SOFA_COLUMNS[organ]
        values = pd.to_numeric(d[col], errors="coerce").fillna(0).to_numpy()
        imputed = (
            d[f"{organ.value}_imputed"].fillna(False).astype(bool).to_numpy()
            if f"{organ.value}_imputed" in d
            else np.zeros(len(d), bool)
        )
        words = [_imputation_text(r, organ.value) for _, r in d.iterrows()]
        fig.add_trace(
            go.Bar(
                x=days,
                y=values,
                name=ORGAN_LABELS[organ],
                marker={
                    "color": ORGAN_COLOURS[organ],
                    "opacity": [0.45 if i else 1.0 for i in imputed],
                    "pattern": {
                        "shape": ["/" if i else "" for i in imputed],
                        "fgcolor": "#ffffff",
                        "size": 6,
                    },
                    "line": {"width": 0},
                },
                customdata=np.column_stack([words]),
                hovertemplate=(
                    f"Day %{{x}}<br>{ORGAN_LABELS[organ]}: %{{y}} points"
                    "<br>%{customdata[0]}<extra></extra>"
                ),
            ),
            **row_kw,
        )
    totals = pd.to_numeric(d[SOFA_TOTAL], errors="coerce")
    fig.add_trace(
        go.Scatter(
            x=days,
            y=totals,
            mode="lines+markers",
            name="Total SOFA",
            line={"color": TOTAL_LINE_COLOUR, "width": 2.5},
            marker={"size": 7},
            hovertemplate="Day %{x}<br>Total SOFA: %{y} points<extra></extra>",
        ),
        **row_kw,
    )
    if show_sofa2 and "sofa2_total" in d:
        fig.add_trace(
            go.Scatter(
                x=days,
                y=pd.to_numeric(d["sofa2_total"], errors="coerce"),
                mode="lines+markers",
                name="SOFA-2 total (display only)",
                line={"color": "#777777", "width": 2, "dash": "dash"},
                marker={"size": 6, "symbol": "diamond"},
                hovertemplate="Day %{x}<br>SOFA-2 total: %{y} points<extra></extra>",
            ),
            **row_kw,
        )
    if death_study_day is not None and not pd.isna(death_study_day):
        death_day = int(death_study_day)
        # the endpoint's death score: trial participants only (None: no endpoint window)
        ghost = list(range(death_day, (endpoint_last_day or 0) + 1))
        if ghost:
            fig.add_trace(
                go.Scatter(
                    x=ghost,
                    y=[death_score] * len(ghost),
                    mode="markers",
                    name=f"Scored {death_score} for the endpoint (after death)",
                    marker={
                        "symbol": "x-thin-open",
                        "size": 11,
                        "color": "#000000",
                        "line": {"width": 2},
                    },
                    hovertemplate=f"Day %{{x}}<br>Died on day {death_day}: "
                    f"scored {death_score} for the endpoint<extra></extra>",
                ),
                **row_kw,
            )
        fig.add_vline(x=death_day, line={"color": "#000000", "width": 2, "dash": "dot"}, **row_kw)
        fig.add_annotation(
            x=death_day,
            y=1.0,
            yref="y domain",
            text=f"Died (day {death_day})",
            showarrow=False,
            xanchor="left",
            yanchor="top",
            font={"size": 12},
            bgcolor="rgba(255,255,255,0.8)",
        )
    if endpoint_last_day is not None:
        fig.add_vrect(
            x0=1.5,
            x1=endpoint_last_day + 0.5,
            fillcolor="#8888aa",
            opacity=0.08,
            line_width=0,
            layer="below",
            **row_kw,
        )
        fig.add_annotation(
            x=(1.5 + endpoint_last_day + 0.5) / 2,
            y=1.0,
            yref="y domain",
            showarrow=False,
            yanchor="bottom",
            text=f"Endpoint window: days 2–{endpoint_last_day}",
            font={"size": 12, "color": "#444466"},
        )
    if len(d) and d["study_day"].iloc[0] == 1 and not pd.isna(totals.iloc[0]):
        fig.add_annotation(
            x=1,
            y=float(totals.iloc[0]),
            text="Baseline",
            showarrow=True,
            arrowhead=0,
            ay=-28,
            font={"size": 12},
        )
    if selected_day is not None:
        fig.add_vrect(
            x0=selected_day - 0.5,
            x1=selected_day + 0.5,
            line={"color": "#000000", "width": 1.5},
            fillcolor="rgba(0,0,0,0)",
            layer="above",
            **row_kw,
        )
    fig.update_layout(barmode="stack", bargap=0.15, clickmode="event")
    fig.update_yaxes(title_text="SOFA points", range=[0, 24.5], dtick=4, **row_kw)
    xaxis = {"range": [0.5, max_day + 0.5], "dtick": 1, "tick0": 1}
    if with_lanes:
        _add_lanes(fig, lanes, row=2)
        fig.update_xaxes(**xaxis)
        fig.update_xaxes(
            title_text="Study day (day 1 = first 24 h after the first study-drug dose)",
            row=2,
            col=1,
        )
    else:
        fig.update_xaxes(
            title_text="Study day (day 1 = first 24 h after the first study-drug dose)", **xaxis
        )
    fig = base_layout(fig, height=680 if with_lanes else 470)
    fig.update_layout(
        # the legend at the top of the figure, under the modebar and above the "Endpoint
        # window" label (it wraps to two rows at 1024 px: the top margin holds both)
        legend={
            "orientation": "h",
            "yref": "container",
            "yanchor": "top",
            # below the modebar's row (about 28 px at the top of the figure)
            "y": 1 - 30 / (680 if with_lanes else 470),
            "x": 0,
            "xanchor": "left",
            "font": {"size": 12},
        },
        margin={"t": 110},
    )
    return fig


def support_segments(
    infusions: pd.DataFrame,
    episodes: pd.DataFrame,
    doses: pd.DataFrame,
    *,
    anchor_time: pd.Timestamp,
    max_day: int = 28,
    rules: SofaRules = SofaRules(),
) -> pd.DataFrame:
    """Organ-support lanes as tidy segments on the study-day axis.

    Returns ``lane, start_x, stop_x, label, colour, qualifying`` where ``x`` is
    ``days_since_anchor + 0.5`` (see module docstring). Infusions carry
    ``rate_mcg_kg_min`` and, if present, ``qualifying``; otherwise a segment qualifies by
    :func:`core.derive.vasopressor_counts` (``rules``' minimum duration, SRC-RICU vaso60).
    """
    rows: list[dict] = []

    def x_of(t: pd.Series) -> np.ndarray:
        return ((pd.to_datetime(t) - anchor_time) / pd.Timedelta(hours=24)).to_numpy(float) + 0.5

    lim = max_day + 0.5
    if len(infusions):
        inf = infusions.copy()
        inf["x0"], inf["x1"] = x_of(inf["start"]), x_of(inf["stop"])
        for r in inf.itertuples(index=False):
            if r.x1 < 0.5 or r.x0 > lim:
                continue
            minutes = (r.x1 - r.x0) * 24 * 60
            qualifying = bool(getattr(r, "qualifying", vasopressor_counts(minutes, rules)))
            rate = getattr(r, "rate_mcg_kg_min", getattr(r, "rate", np.nan))
            rows.append(
                {
                    "lane": str(r.drug).capitalize(),
                    "start_x": max(r.x0, 0.5),
                    "stop_x": min(r.x1, lim),
                    "label": f"{r.drug} {rate:.3g} mcg/kg/min for {minutes:.0f} min"
                    + ("" if qualifying else f" (not counted: {vasopressor_duration_text(rules)})"),
                    "colour": ORGAN_COLOURS[ORGANS[3]] if qualifying else "#D8B5CC",
                    "qualifying": qualifying,
                }
            )
    if len(episodes):
        ep = episodes.copy()
        ep["x0"], ep["x1"] = x_of(ep["start"]), x_of(ep["stop"])
        for r in ep.itertuples(index=False):
            if r.x1 < 0.5 or r.x0 > lim:
                continue
            if r.kind in VENT_COLOURS:
                lane, colour, label = "Ventilation", VENT_COLOURS[r.kind], VENT_LABELS[r.kind]
            elif r.kind == EpisodeKind.SEDATION:
                lane, colour, label = "Sedation", "#66CCEE", "sedation"
            elif r.kind == EpisodeKind.RRT:
                lane, colour, label = "RRT", "#228833", "renal replacement therapy"
            else:
                continue
            hours = (r.x1 - r.x0) * 24
            rows.append(
                {
                    "lane": lane,
                    "start_x": max(r.x0, 0.5),
                    "stop_x": min(r.x1, lim),
                    "label": f"{label}, {hours:.0f} h",
                    "colour": colour,
                    "qualifying": True,
                }
            )
    if len(doses):
        xs = x_of(doses["time"])
        for x, route in zip(xs, doses["route"], strict=True):
            if 0.5 <= x <= lim:
                rows.append(
                    {
                        "lane": "Study drug",
                        "start_x": x,
                        "stop_x": x,
                        "label": f"study drug ({route})",
                        "colour": "#333333",
                        "qualifying": True,
                    }
                )
    return pd.DataFrame(
        rows, columns=["lane", "start_x", "stop_x", "label", "colour", "qualifying"]
    )


def _add_lanes(fig: go.Figure, lanes: pd.DataFrame, *, row: int) -> None:
    present = [lane for lane in LANE_ORDER if lane in set(lanes["lane"])] or ["Study drug"]
    spans = lanes[lanes["stop_x"] > lanes["start_x"]]
    points = lanes[lanes["stop_x"] <= lanes["start_x"]]
    if len(spans):
        fig.add_trace(
            go.Bar(
                y=spans["lane"],
                x=spans["stop_x"] - spans["start_x"],
                base=spans["start_x"],
                orientation="h",
                marker={"color": spans["colour"], "line": {"width": 0}},
                customdata=spans[["label"]].to_numpy(),
                hovertemplate="%{customdata[0]}<extra></extra>",
                showlegend=False,
                width=0.6,
                name="organ support",
            ),
            row=row,
            col=1,
        )
    if len(points):
        fig.add_trace(
            go.Scatter(
                y=points["lane"],
                x=points["start_x"],
                mode="markers",
                marker={
                    "symbol": "line-ns-open",
                    "size": 12,
                    "color": "#333333",
                    "line": {"width": 2},
                },
                customdata=points[["label"]].to_numpy(),
                hovertemplate="%{customdata[0]}<extra></extra>",
                showlegend=False,
                name="study drug",
            ),
            row=row,
            col=1,
        )
    fig.update_yaxes(
        categoryorder="array",
        categoryarray=list(reversed(present)),
        type="category",
        row=row,
        col=1,
        title_text="Organ support",
    )
    fig.update_layout(barmode="stack")


def biomarker_trajectory(
    samples: pd.DataFrame,
    *,
    thresholds: PhenotypeThresholds = PhenotypeThresholds(),
    note: str | None = None,
) -> go.Figure:
    """Ferritin (ng/mL, log axis) and monocyte HLA-DR (antibodies per cell) against thresholds.

    ``samples``: ``study_day`` (day of the draw; ≤ 0 = screening), ``ferritin_ng_ml``,
    ``hla_dr_ab_per_cell`` and ``phenotype`` (classification of that sample).
    """
    fig = make_subplots(
        rows=1,
        cols=2,
        horizontal_spacing=0.14,
        subplot_titles=("Ferritin (ng/mL)", "Monocyte HLA-DR (antibodies bound per cell)"),
    )
    s = samples.sort_values("study_day")
    colours = [PHENOTYPE_COLOURS.get(Phenotype(p), "#999999") for p in s["phenotype"]]
    labels = [PHENOTYPE_LABELS.get(Phenotype(p), str(p)) for p in s["phenotype"]]
    for col, field, unit in (
        (1, "ferritin_ng_ml", "ng/mL"),
        (2, "hla_dr_ab_per_cell", "antibodies per cell"),
    ):
        fig.add_trace(
            go.Scatter(
                x=s["study_day"],
                y=s[field],
                mode="lines+markers",
                line={"color": "#888888", "width": 1.5},
                marker={"color": colours, "size": 10, "line": {"color": "#333", "width": 1}},
                customdata=np.column_stack([labels]),
                hovertemplate=f"Day %{{x}}<br>%{{y:,.0f}} {unit}<br>sample phenotype: "
                "%{customdata[0]}<extra></extra>",
                showlegend=False,
            ),
            row=1,
            col=col,
        )
    # colour carries the sample's phenotype: a legend names each colour present
    for ph in dict.fromkeys(Phenotype(p) for p in s["phenotype"]):
        fig.add_trace(
            go.Scatter(
                x=[None],
                y=[None],
                mode="markers",
                marker={
                    "color": PHENOTYPE_COLOURS.get(ph, "#999999"),
                    "size": 10,
                    "line": {"color": "#333", "width": 1},
                },
                name=f"sample: {PHENOTYPE_LABELS.get(ph, str(ph))}",
                showlegend=True,
                hoverinfo="skip",
            ),
            row=1,
            col=1,
        )
    fig.add_hline(
        y=thresholds.ferritin_mals_above_ng_ml,
        line={"color": PHENOTYPE_COLOURS[Phenotype.MALS], "dash": "dash"},
        row=1,
        col=1,
    )
    # on a log axis an annotation's y is log10 of the value (add_hline's own label would be
    # placed at 10^4420, off the chart)
    fig.add_annotation(
        x=0,
        xref="x domain",
        y=float(np.log10(thresholds.ferritin_mals_above_ng_ml)),
        yref="y",
        text=f"MALS > {thresholds.ferritin_mals_above_ng_ml:,.0f}",
        showarrow=False,
        xanchor="left",
        yanchor="bottom",
        font={"size": 12, "color": "#444466"},
    )
    fig.add_hline(
        y=thresholds.hla_dr_sip_below_ab_per_cell,
        line={"color": PHENOTYPE_COLOURS[Phenotype.SIP], "dash": "dash"},
        annotation_text=f"SIP < {thresholds.hla_dr_sip_below_ab_per_cell:,.0f}",
        annotation_position="bottom left",
        row=1,
        col=2,
    )
    fig.add_hline(
        y=thresholds.hla_dr_reversal_above_ab_per_cell,
        line={"color": "#117733", "dash": "dot"},
        annotation_text=f"reversal > {thresholds.hla_dr_reversal_above_ab_per_cell:,.0f}",
        annotation_position="top left",
        row=1,
        col=2,
    )
    ferritin = pd.to_numeric(s["ferritin_ng_ml"], errors="coerce").dropna()
    lo = min([thresholds.ferritin_mals_above_ng_ml / 3, *ferritin.tolist()])
    hi = max([thresholds.ferritin_mals_above_ng_ml * 3, *ferritin.tolist()])
    ticks = [
        v
        for v in (10, 30, 100, 300, 1000, 3000, 10000, 30000, 100000, 300000)
        if lo / 1.5 <= v <= hi * 1.5
    ]
    fig.update_yaxes(
        type="log",
        title_text="ng/mL",
        tickvals=ticks,
        ticktext=[f"{v:,}" for v in ticks],
        range=[np.log10(lo / 1.5), np.log10(hi * 1.5)],
        row=1,
        col=1,
    )
    fig.update_yaxes(title_text="antibodies per cell", rangemode="tozero", row=1, col=2)
    fig.update_xaxes(title_text="Study day of the sample", dtick=2)
    if note:
        fig.add_annotation(
            text=note,
            x=0,
            y=-0.32,
            xref="paper",
            yref="paper",
            showarrow=False,
            font={"size": 12, "color": "#334"},
            xanchor="left",
        )
    fig = base_layout(fig, height=340)
    fig.update_layout(margin={"t": 50})
    return fig


def empty_figure(message: str, *, height: int = 300) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(
        text=message,
        x=0.5,
        y=0.5,
        xref="paper",
        yref="paper",
        showarrow=False,
        font={"size": 15, "color": "#555"},
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return base_layout(fig, height=height)


def trace_names(fig: go.Figure) -> Sequence[str]:
    """Names of the traces (used by tests and the blinding leak check)."""
    return [t.name for t in fig.data]


# ---------------------------------------------------------------------------------------------
# Text alternatives (docs/accessibility.md): what a screen reader says for a chart
# ---------------------------------------------------------------------------------------------

#: at most this many values are read out per trace; longer traces are summarised
DESCRIBE_MAX_POINTS = 8


def _plain_values(values: Any) -> list[Any]:
    """Trace values as a list: plotly JSON's typed arrays (``{"dtype", "bdata"}``), numpy
    arrays, tuples and lists; ``None`` for no values."""
    if values is None:
        return []
    if isinstance(values, dict) and "bdata" in values:
        arr = np.frombuffer(base64.b64decode(values["bdata"]), dtype=np.dtype(values["dtype"]))
        shape = values.get("shape")
        if shape:
            dims = [int(s) for s in str(shape).split(",")]
            arr = arr.reshape(dims)
        return arr.tolist()
    if isinstance(values, np.ndarray | pd.Series | pd.Index):
        return list(np.asarray(values).tolist())
    if isinstance(values, list | tuple):
        return list(values)
    return [values]


def _value_text(v: Any) -> str:
    if v is None or (isinstance(v, float) and (math.isnan(v) or math.isinf(v))):
        return "no value"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int | np.integer):
        return f"{int(v):,}" if abs(int(v)) >= 10_000 else str(int(v))
    if isinstance(v, float | np.floating):
        f = float(v)
        if f.is_integer():
            return _value_text(int(f))
        if abs(f) >= 100:
            return f"{f:,.0f}"
        return f"{f:.3g}"
    text = str(v)
    return re.sub(r"<[^>]+>", " ", text).strip()


def _text(value: Any) -> str:
    if isinstance(value, dict):
        value = value.get("text")
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", str(value or ""))).strip()


def _describe_trace(trace: dict[str, Any]) -> str | None:
    kind = trace.get("type") or "scatter"
    name = _text(trace.get("name")) or kind
    if trace.get("visible") in (False, "legendonly"):
        return None
    if kind in ("heatmap", "contour"):
        z = _plain_values(trace.get("z"))
        flat = [v for row in z for v in (row if isinstance(row, list) else [row])]
        nums = [float(v) for v in flat if isinstance(v, int | float) and not math.isnan(v)]
        if not nums:
            return f"{name}: heat map without values"
        return (
            f"{name}: heat map of {len(z)} rows, values from {_value_text(min(nums))} "
            f"to {_value_text(max(nums))}"
        )
    xs, ys = _plain_values(trace.get("x")), _plain_values(trace.get("y"))
    if trace.get("orientation") == "h":
        xs, ys = ys, xs  # categories on the vertical axis: read "category: value"
    if kind in ("box", "violin"):
        nums = [float(v) for v in ys if isinstance(v, int | float) and not math.isnan(v)]
        if not nums:
            return None
        return (
            f"{name}: {len(nums)} values, median {_value_text(float(np.median(nums)))}, "
            f"range {_value_text(min(nums))} to {_value_text(max(nums))}"
        )
    if not ys and not xs:
        return None
    if not xs:
        xs = list(range(len(ys)))
    pairs = [(x, y) for x, y in zip(xs, ys, strict=False) if y is not None]
    if not pairs:
        return f"{name}: no values"
    if len(pairs) <= DESCRIBE_MAX_POINTS:
        return f"{name}: " + ", ".join(f"{_value_text(x)}: {_value_text(y)}" for x, y in pairs)
    nums = [float(y) for _, y in pairs if isinstance(y, int | float) and not math.isnan(y)]
    first, last = pairs[0], pairs[-1]
    summary = f"{name}: {len(pairs)} points from {_value_text(first[0])} to {_value_text(last[0])}"
    if nums:
        summary += (
            f", values {_value_text(min(nums))} to {_value_text(max(nums))}, "
            f"last {_value_text(last[1])}"
        )
    return summary


def describe_figure(fig: go.Figure | dict[str, Any]) -> str:
    """A plain-text alternative for a chart: its title, then each visible trace's values
    (category: value for a few points; count, range and last value for long series; median
    and range for box plots; the value range for heat maps) and any annotation text (an
    empty figure's message). Built from the figure's own data, so it tells a role no more
    than the chart it describes."""
    d = fig.to_plotly_json() if isinstance(fig, go.Figure) else fig
    layout = d.get("layout") or {}
    parts = [_text(layout.get("title")) or "Chart"]
    traces = [t for t in (_describe_trace(t) for t in d.get("data") or []) if t]
    parts += traces
    if not traces:
        parts += [_text(a.get("text")) for a in layout.get("annotations") or [] if a.get("text")]
    return ". ".join(p for p in parts if p) + "."
