"""Pure table builders: tidy frames in, display-ready frames / components out.

All number formatting lives here (core returns numbers). Column headers carry units.
"""

from __future__ import annotations

from collections.abc import Mapping

import dash_bootstrap_components as dbc
import pandas as pd
from dash import html

from components.format import fmt_number, fmt_pct, records, safe_csv_frame  # noqa: F401
from components.theme import ORGAN_COLOURS, ORGAN_LABELS
from core.concepts import CONCEPTS
from core.vocab import ORGANS, Organ

#: daily input column -> header with unit (labs and vitals table)
LAB_COLUMNS: Mapping[str, str] = {
    "pao2_fio2_mmhg": "PaO2/FiO2 (mmHg)",
    "respiratory_support": "Respiratory support",
    "platelets_10e3_per_ul": "Platelets (10³/µL)",
    "bilirubin_mg_dl": "Bilirubin (mg/dL)",
    "map_mmhg": "MAP (mmHg)",
    "norepinephrine_mcg_kg_min": "Norepinephrine (mcg/kg/min)",
    "epinephrine_mcg_kg_min": "Epinephrine (mcg/kg/min)",
    "dopamine_mcg_kg_min": "Dopamine (mcg/kg/min)",
    "dobutamine_mcg_kg_min": "Dobutamine (mcg/kg/min)",
    "gcs_total": "GCS (3–15)",
    "creatinine_mg_dl": "Creatinine (mg/dL)",
    "urine_output_ml_24h": "Urine output (mL/24 h)",
}
IMPUTATION_LABELS = {
    "day1_zero": "imputed: day 1 not measured, scored 0",
    "locf": "imputed: carried forward from the last measured day",
    "death24": "death: scored 24",
}


#: display precision per input column (values stay numbers; CSV keeps them rounded alike)
LAB_DIGITS: Mapping[str, int] = {
    "pao2_fio2_mmhg": 0,
    "platelets_10e3_per_ul": 0,
    "bilirubin_mg_dl": 2,
    "map_mmhg": 0,
    "norepinephrine_mcg_kg_min": 3,
    "epinephrine_mcg_kg_min": 3,
    "dopamine_mcg_kg_min": 2,
    "dobutamine_mcg_kg_min": 2,
    "gcs_total": 0,
    "creatinine_mg_dl": 2,
    "urine_output_ml_24h": 0,
}


def labs_by_day(daily: pd.DataFrame) -> pd.DataFrame:
    """Worst value per study day of every SOFA input, with units in the headers."""
    cols = [c for c in LAB_COLUMNS if c in daily.columns]
    out = daily.sort_values("study_day")[["study_day", *cols]].copy()
    for col, digits in LAB_DIGITS.items():
        if col in out:
            out[col] = pd.to_numeric(out[col], errors="coerce").round(digits)
    if "respiratory_support" in out:
        out["respiratory_support"] = (
            out["respiratory_support"].map({True: "yes", False: "no"}).fillna("–")
        )
    return out.rename(columns={"study_day": "Study day", **LAB_COLUMNS})


def variable_label(name: str) -> str:
    """The user-facing name of a raw variable ("pao2" -> "PaO2", "gcs_total" -> "GCS total");
    names without a concept (derived ratios such as "pf_ratio") lose their underscores."""
    if name in CONCEPTS:
        return CONCEPTS[name].label
    return name.replace("_", " ")


def why_rows(provenance: pd.DataFrame, study_day: int) -> pd.DataFrame:
    """Per organ for one day: score, deciding value with unit and time, rule, imputation."""
    p = provenance[provenance["study_day"] == study_day]
    rows = []
    for organ in ORGANS:
        hit = p[p["organ"] == organ.value]
        if hit.empty:
            rows.append(
                {
                    "organ": organ.value,
                    "Organ": ORGAN_LABELS[organ],
                    "Points": "–",
                    "Deciding value": "no data",
                    "Time": "",
                    "Rule": "",
                    "Imputation": "",
                }
            )
            continue
        r = hit.iloc[0]
        value = r.get("value")
        unit = r.get("unit") or ""
        shown = "–" if value is None or pd.isna(value) else f"{fmt_number(value, 2)} {unit}".strip()
        variable = variable_label(r.get("variable") or "")
        time = r.get("time")
        rows.append(
            {
                "organ": organ.value,
                "Organ": ORGAN_LABELS[organ],
                "Points": fmt_number(r.get("score"), 0) if not pd.isna(r.get("score")) else "–",
                "Deciding value": f"{variable} {shown}".strip() if variable else shown,
                "Time": ""
                if time is None or pd.isna(time)
                else pd.Timestamp(time).strftime("%Y-%m-%d %H:%M"),
                "Rule": r.get("rule") or "",
                "Imputation": IMPUTATION_LABELS.get(r.get("imputation") or "", "measured")
                if bool(r.get("imputed"))
                else "measured",
            }
        )
    return pd.DataFrame(rows)


def changes_list(changes: pd.DataFrame, day: int) -> html.Div:
    """ "What changed since day N−1": one line per organ whose score moved
    (:func:`core.ward.what_changed` texts, largest change first)."""
    title = html.Div(f"What changed since day {day - 1}", className="card-title-sm mb-1")
    if day <= 1:
        return html.Div(
            [
                html.Div("What changed", className="card-title-sm mb-1"),
                html.P("Day 1: no previous day to compare with.", className="text-muted small"),
            ],
            className="what-changed mb-2",
        )
    if changes.empty:
        body: html.Ul | html.P = html.P(
            "No organ score changed.", className="text-muted small mb-2"
        )
    else:
        body = html.Ul(
            [
                html.Li(
                    [
                        html.Span(
                            "■ ",
                            style={"color": ORGAN_COLOURS[Organ(r["organ"])]},
                            **{"aria-hidden": "true"},
                        ),
                        html.Span(
                            "▲ " if r["change"] > 0 else "▼ ",
                            className="text-danger" if r["change"] > 0 else "text-primary",
                            title="score up" if r["change"] > 0 else "score down",
                        ),
                        r["text"],
                    ]
                )
                for r in changes.to_dict("records")
            ],
            className="list-unstyled mb-2",
        )
    return html.Div([title, body], className="what-changed")


def why_table(rows: pd.DataFrame) -> dbc.Table:
    header = html.Thead(
        html.Tr(
            [
                html.Th(c)
                for c in ("Organ", "Points", "Deciding value", "Time", "Rule", "Imputation")
            ]
        )
    )
    body = []
    for r in rows.to_dict("records"):
        swatch = html.Span(
            "■ ", style={"color": ORGAN_COLOURS[Organ(r["organ"])]}, **{"aria-hidden": "true"}
        )
        measured = r["Imputation"] == "measured"
        body.append(
            html.Tr(
                [
                    html.Td([swatch, r["Organ"]]),
                    html.Td(r["Points"], className="fw-bold text-end"),
                    html.Td(r["Deciding value"]),
                    html.Td(r["Time"]),
                    html.Td(r["Rule"]),
                    html.Td(
                        r["Imputation"],
                        className="text-muted" if measured else "text-warning-emphasis",
                    ),
                ]
            )
        )
    return dbc.Table(
        [header, html.Tbody(body)],
        bordered=False,
        hover=True,
        size="sm",
        className="why-table mb-0",
    )
