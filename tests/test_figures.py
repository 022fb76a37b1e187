"""Figure and table builders are pure: tested on hand-built frames, without a browser."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from components import figures, tables
from components.theme import ORGAN_COLOURS, ORGAN_LABELS
from core.rules import SofaRules
from core.vocab import ORGANS, SOFA_COLUMNS


def patient_daily() -> pd.DataFrame:
    rows = []
    for d in range(1, 6):
        row = {"patient_id": "P", "study_day": d, "sofa2_total": 7 + d % 2}
        for i, organ in enumerate(ORGANS):
            row[SOFA_COLUMNS[organ]] = (i + d) % 5
            row[f"{organ.value}_imputed"] = organ.value == "liver" and d == 3
            row[f"{organ.value}_imputation"] = "locf" if row[f"{organ.value}_imputed"] else None
        row["sofa_total"] = sum(row[SOFA_COLUMNS[o]] for o in ORGANS)
        rows.append(row)
    return pd.DataFrame(rows)


def test_fig001_timeline_stacks_organs_in_theme_colours():
    fig = figures.sofa_timeline(patient_daily())
    bars = [t for t in fig.data if t.type == "bar"]
    assert [t.name for t in bars] == [ORGAN_LABELS[o] for o in ORGANS]
    assert [t.marker.color for t in bars] == [ORGAN_COLOURS[o] for o in ORGANS]
    renal = bars[5]
    assert list(renal.y) == [(5 + d) % 5 for d in range(1, 6)]
    total = next(t for t in fig.data if t.name == "Total SOFA")
    assert list(total.y) == list(patient_daily()["sofa_total"])
    assert fig.layout.barmode == "stack"
    assert "Study day" in fig.layout.xaxis.title.text
    assert fig.layout.yaxis.title.text == "SOFA points"


def test_fig002_imputed_days_are_hatched_and_explained():
    fig = figures.sofa_timeline(patient_daily())
    liver = next(t for t in fig.data if t.name == "Liver")
    assert list(liver.marker.pattern.shape) == ["", "", "/", "", ""]
    assert list(liver.marker.opacity) == [1.0, 1.0, 0.45, 1.0, 1.0]
    assert liver.customdata[2][0] == "not measured: last observation carried forward"
    assert liver.customdata[0][0] == "measured"


def test_fig003_death_marks_days_scored_24():
    fig = figures.sofa_timeline(patient_daily(), death_study_day=5, endpoint_last_day=9)
    ghost = next(t for t in fig.data if t.name.startswith("Scored 24"))
    assert list(ghost.x) == [5, 6, 7, 8, 9]
    assert set(ghost.y) == {24}
    texts = [a.text for a in fig.layout.annotations]
    assert "Died (day 5)" in texts
    assert "Endpoint window: days 2–9" in texts


def test_fig004_sofa2_overlay_only_when_asked():
    assert "SOFA-2 total (display only)" not in figures.trace_names(
        figures.sofa_timeline(patient_daily())
    )
    fig = figures.sofa_timeline(patient_daily(), show_sofa2=True)
    assert "SOFA-2 total (display only)" in figures.trace_names(fig)


def test_fig005_support_segments_flag_short_infusions():
    anchor = pd.Timestamp("2022-01-01 08:00")
    inf = pd.DataFrame(
        {
            "drug": ["norepinephrine", "norepinephrine"],
            "start": [anchor + pd.Timedelta(hours=2), anchor + pd.Timedelta(hours=30)],
            "stop": [anchor + pd.Timedelta(hours=2, minutes=59), anchor + pd.Timedelta(hours=32)],
            "rate_mcg_kg_min": [0.05, 0.2],
        }
    )
    ep = pd.DataFrame(
        {
            "kind": ["invasive_ventilation"],
            "start": [anchor],
            "stop": [anchor + pd.Timedelta(hours=48)],
        }
    )
    doses = pd.DataFrame({"time": [anchor, anchor + pd.Timedelta(hours=8)], "route": ["IV", "IV"]})
    seg = figures.support_segments(inf, ep, doses, anchor_time=anchor)
    nor = seg[seg["lane"] == "Norepinephrine"].reset_index(drop=True)
    assert list(nor["qualifying"]) == [False, True]
    assert "not counted: >= 60 min rule" in nor.loc[0, "label"]
    # the lane follows the rule setting, not a literal 60: a 59-min run counts under a 30-min rule
    short = figures.support_segments(
        inf, ep, doses, anchor_time=anchor, rules=SofaRules(vasopressor_min_minutes=30)
    )
    assert short.loc[short["lane"] == "Norepinephrine", "qualifying"].tolist() == [True, True]
    # day 1 starts at x = 0.5: 2 h after the anchor is 0.5 + 2/24
    assert nor.loc[0, "start_x"] == pytest.approx(0.5 + 2 / 24)
    vent = seg[seg["lane"] == "Ventilation"].iloc[0]
    assert (vent["start_x"], vent["stop_x"]) == (pytest.approx(0.5), pytest.approx(2.5))
    drug = seg[seg["lane"] == "Study drug"]
    assert list(drug["label"]) == ["study drug (IV)", "study drug (IV)"]
    fig = figures.sofa_timeline(patient_daily(), lanes=seg)
    assert fig.layout.yaxis2.title.text == "Organ support"


def test_fig006_biomarker_thresholds_drawn():
    samples = pd.DataFrame(
        {
            "study_day": [0, 3],
            "ferritin_ng_ml": [6120.0, 3000.0],
            "hla_dr_ab_per_cell": [np.nan, 9000.0],
            "phenotype": ["MALS", "not_eligible"],
        }
    )
    fig = figures.biomarker_trajectory(samples)
    ys = sorted(s.y0 for s in fig.layout.shapes)
    assert ys == [4420.0, 5000.0, 8000.0]
    assert fig.layout.yaxis.type == "log"


def test_tab001_why_rows_explain_each_organ():
    prov = pd.DataFrame(
        {
            "study_day": [2, 2],
            "organ": ["renal", "cardiovascular"],
            "score": [3, 3],
            "variable": ["creatinine", "norepinephrine"],
            "value": [3.7, 0.08],
            "unit": ["mg/dL", "mcg/kg/min"],
            "time": [pd.Timestamp("2022-01-02 04:10"), pd.Timestamp("2022-01-02 06:00")],
            "rule": ["creatinine 3.7 mg/dL >= 3.5 -> 3", "norepinephrine 0.08 for 95 min"],
            "imputed": [False, False],
            "imputation": [None, None],
        }
    )
    rows = tables.why_rows(prov, 2).set_index("organ")
    assert rows.loc["renal", "Deciding value"] == "Creatinine 3.70 mg/dL"
    assert rows.loc["renal", "Time"] == "2022-01-02 04:10"
    assert rows.loc["renal", "Points"] == "3"
    assert rows.loc["liver", "Deciding value"] == "no data"


def test_tab002_labs_by_day_headers_carry_units():
    daily = patient_daily().assign(creatinine_mg_dl=1.3, respiratory_support=True)
    t = tables.labs_by_day(daily)
    assert list(t.columns) == ["Study day", "Respiratory support", "Creatinine (mg/dL)"]
    assert set(t["Respiratory support"]) == {"yes"}
