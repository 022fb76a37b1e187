"""Pure cohort builders on hand-built frames: real values, coded labels, no arm when pooled."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from components import format as fmt
from components.cohort import charts as cf
from components.format import safe_csv_frame
from components.theme import GROUP_COLOURS, POOLED_COLOUR
from core.stats import compare_proportions, consort_counts, forest_rows, kaplan_meier, table_one


def test_coh001_comparison_texts_reproduce_the_printed_primary_row():
    t = fmt.comparison_texts(compare_proportions(46, 131, 26, 145))
    assert t == {"rd": "17.2 (6.8 to 27.2)", "or": "2.48 (1.42–4.32)", "p": ".002"}
    t28 = fmt.comparison_texts(compare_proportions(57, 131, 72, 145))
    assert t28["rd"] == "−6.1 (−17.6 to 5.6)"
    assert t28["or"] == "0.78 (0.49–1.26)"


@pytest.mark.parametrize(
    ("p", "text"),
    [
        (0.0015, ".002"),
        (0.0008, ".001"),
        (0.0004, "<.001"),
        (0.897, ".90"),
        (0.04, ".04"),
        (0.9999, ">.99"),
        (math.nan, "–"),
    ],
)
def test_coh002_p_values_in_jama_style(p, text):
    assert fmt.fmt_p(p) == text


def _km():
    durations = [1, 2, 3, 28, 28, 5, 10, 28, 28, 28]
    events = [True, True, False, False, False, True, True, False, False, False]
    groups = ["Group A"] * 5 + ["Group B"] * 5
    return kaplan_meier(durations, events, groups, horizon=28, at_risk_times=(0, 7, 14, 21, 28))


def test_coh003_km_figure_has_an_at_risk_row_with_the_numbers_at_risk():
    km = _km()
    fig = cf.km_figure(km, horizon=28, annotation="Log-rank P = .50")
    text_traces = {t.name: list(t.text) for t in fig.data if t.mode == "text"}
    # duration >= t: A = [1, 2, 3, 28, 28] -> 5, 2, 2, 2, 2; B = [5, 10, 28, 28, 28] -> 5, 4, 3, 3, 3
    assert text_traces == {
        "Group A at risk": ["5", "2", "2", "2", "2"],
        "Group B at risk": ["5", "4", "3", "3", "3"],
    }
    assert all(t.yaxis == "y2" for t in fig.data if t.mode == "text")
    censor = {t.name: list(t.x) for t in fig.data if t.name and t.name.endswith("censored")}
    assert censor == {"Group A censored": [3.0, 28.0], "Group B censored": [28.0]}
    assert any("Log-rank P = .50" in (a.text or "") for a in fig.layout.annotations)
    assert any("Number at risk" in (a.text or "") for a in fig.layout.annotations)
    assert fig.layout.xaxis2.title.text == "Days from the first study-drug dose"
    table = cf.km_table(km)
    assert table.loc[0, "Day 7"] == 2
    assert table.loc[1, "Day 28"] == 3


def _forest_frame() -> pd.DataFrame:
    rows = []
    # treated: 6/10 responders in "low", 2/10 in "high"; control 2/10 and 2/10
    for group, level, events, n in (
        ("Group A", "low", 6, 10),
        ("Group A", "high", 2, 10),
        ("Group B", "low", 2, 10),
        ("Group B", "high", 2, 10),
    ):
        rows += [{"group": group, "sub": level, "y": i < events} for i in range(n)]
    return pd.DataFrame(rows)


def test_coh004_forest_rows_become_plot_rows_with_interaction_p():
    df = _forest_frame()
    rows = forest_rows(
        df,
        outcome_col="y",
        subgroups={"Severity": "sub"},
        arm_col="group",
        treated="Group A",
        control="Group B",
    )
    fig = cf.forest_figure(rows, compared=True, difference_words="Group A − Group B")
    labels = list(fig.layout.yaxis.ticktext)
    p = fmt.fmt_p(float(rows["interaction_p"].iloc[1]))
    assert labels == ["<b>All patients</b>", "<b>Severity</b>", "   high", "   low"]
    # n, estimate and interaction P are text columns (annotations) on the rows' y positions
    texts = {(a.y, a.text) for a in fig.layout.annotations if a.yref == "y"}
    assert {(0, "40"), (2, "20"), (3, "20"), (1, p)} <= texts
    x = list(fig.data[0].x)
    assert math.isnan(x[1])
    assert x[3] == pytest.approx((6 / 4) / (2 / 8))  # OR in "low"
    assert fig.layout.xaxis.type == "log"
    table = cf.forest_table(rows, compared=True)
    assert table.loc[2, "g0"] == "6/10 (60.0 %)"


def test_coh005_coded_groups_use_neutral_colours_and_no_arm_words():
    props = pd.DataFrame(
        {
            "stratum": ["overall", "overall"],
            "group": ["Group A", "Group B"],
            "n": [10, 10],
            "events": [6, 2],
            "proportion": [0.6, 0.2],
            "ci_lower": [0.3, 0.05],
            "ci_upper": [0.85, 0.5],
        }
    )
    fig = cf.responders_figure(props, ["Group A", "Group B"], title="t")
    assert [t.name for t in fig.data] == ["Group A", "Group B"]
    colours = {t.marker.color for t in fig.data}
    assert colours == {cf.CODED_COLOURS["Group A"], cf.CODED_COLOURS["Group B"]}
    assert not colours & set(GROUP_COLOURS)
    blob = fig.to_json().lower()
    assert "precision" not in blob
    assert "placebo" not in blob
    assert list(fig.data[0].y) == [60.0]
    assert [list(c) for c in fig.data[0].customdata] == [["overall", "Group A"]]


def test_coh006_pooled_view_has_one_pooled_trace_only():
    props = pd.DataFrame(
        {
            "stratum": ["overall", "MALS", "SIP"],
            "group": "All patients",
            "n": [20, 8, 12],
            "events": [5, 3, 2],
            "proportion": [0.25, 0.375, 2 / 12],
            "ci_lower": [0.1, 0.1, 0.05],
            "ci_upper": [0.5, 0.7, 0.45],
        }
    )
    fig = cf.responders_figure(props, ["All patients"], title="t")
    assert [t.name for t in fig.data] == ["All patients"]
    assert fig.data[0].marker.color == POOLED_COLOUR
    assert list(fig.data[0].x) == ["All strata", "MALS", "SIP"]
    assert list(fig.data[0].text) == ["5/20", "3/8", "2/12"]


def test_coh007_decrease_histogram_draws_the_threshold_line():
    hist = pd.DataFrame(
        {
            "group": "All patients",
            "bin_lower": [0.0, 0.5, 1.0, 1.5],
            "bin_upper": [0.5, 1.0, 1.5, 2.0],
            "n_patients": [3, 1, 4, 2],
        }
    )
    fig = cf.decrease_histogram(hist, threshold=1.4)
    assert [s.x0 for s in fig.layout.shapes] == [1.4]
    assert list(fig.data[0].x) == [0.25, 0.75, 1.25, 1.75]
    assert list(fig.data[0].y) == [3, 1, 4, 2]
    assert "points" in fig.layout.xaxis.title.text


def test_coh008_consort_figure_shows_the_counts_in_group_order():
    disp = pd.DataFrame(
        {
            "screening_id": [f"S{i}" for i in range(7)],
            "patient_id": [None, None, "P1", "P2", "P3", "P4", "P5"],
            "excluded_reason": ["not eligible", "consent refused", None, None, None, None, None],
            "phenotype_at_screening": ["not_eligible", "SIP", "SIP", "MALS", "SIP", "SIP", "SIP"],
            "withdrawn_with_data_removal": [False, False, False, False, False, True, False],
        }
    )
    arms = pd.DataFrame(
        {
            "patient_id": ["P1", "P2", "P3", "P4", "P5"],
            "arm": ["Group B", "Group A", "Group A", "Group B", "Group A"],
        }
    )
    counts = consort_counts(disp, arms)
    fig = cf.consort_figure(counts, order=["Group A", "Group B"])
    texts = [a.text for a in fig.layout.annotations if a.text]
    assert "<b>Screened</b><br>n = 7" in texts
    assert any(t.startswith("<b>Excluded</b> n = 2") for t in texts)
    assert "<b>Group A</b><br>randomised n = 3" in texts
    assert "<b>Analysed</b> n = 1<br>SIP 1" in texts  # Group B: P1 analysed, P4 withdrawn
    group_boxes = [a for a in fig.layout.annotations if a.text and "randomised n =" in a.text]
    assert group_boxes[0].x < group_boxes[1].x  # A left of B


def test_coh009_table_one_display_has_smd_and_no_p_values():
    base = pd.DataFrame(
        {
            "g": ["A"] * 4 + ["B"] * 4,
            "age_years": [60, 70, 80, 70, 50, 60, 70, 60],
            "sex": ["female", "male", "male", "male", "female", "female", "male", "male"],
        }
    )
    t1 = table_one(base, group_col="g", continuous=["age_years"], categorical=["sex"])
    disp = cf.table_one_display(t1, ["A", "B"])
    assert list(disp.columns) == ["Variable", "Level", "g0", "g1", "SMD"]
    assert disp.loc[0, "g0"] == "70.0 (8.2)"
    assert disp.loc[0, "g1"] == "60.0 (8.2)"
    assert disp.loc[0, "SMD"] == "1.22"
    assert disp.loc[1, "g0"] == "1 (25.0 %)"
    assert disp.loc[1, "g1"] == "2 (50.0 %)"
    assert not any(c.lower() == "p" or "p-value" in c.lower() for c in disp.columns)


def test_coh010_safe_csv_frame_neutralises_formulas():
    frame = pd.DataFrame(
        {"a": ["=HYPERLINK(1)", "+1", "-2", "@x", "\tx", "\rx", "ok"], "n": [1, 2, 3, 4, 5, 6, -7]}
    )
    out = safe_csv_frame(frame)
    assert list(out["a"]) == ["'=HYPERLINK(1)", "'+1", "'-2", "'@x", "'\tx", "'\rx", "ok"]
    assert list(out["n"]) == [1, 2, 3, 4, 5, 6, -7]
    assert frame.loc[0, "a"] == "=HYPERLINK(1)"  # the input is not modified


def test_coh011_completeness_heatmap_is_percent_measured():
    grid = pd.DataFrame(
        {
            "site_id": ["S1", "S1", "S2"],
            "study_day": [1, 2, 1],
            "n_patient_days": [4, 4, 2],
            "n_imputed": [0, 6, 3],
            "share_measured": [1.0, 0.75, 0.75],
        }
    )
    fig = cf.completeness_heatmap(grid)
    z = fig.data[0].z
    assert list(z[0]) == [100.0, 75.0]
    assert z[1][0] == 75.0
    assert math.isnan(z[1][1])
    assert fig.layout.xaxis.title.text == "Study day"
