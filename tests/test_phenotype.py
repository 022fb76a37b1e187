"""Tests for core.phenotype: MALS / SIP boundaries, reasons, near-threshold, over time, reversal.

Rules: clinical.md §1.3 (SRC-JAMA-ABS, SRC-CTGOV: MALS if ferritin > 4420, wins if both; SIP if
ferritin ≤ 4420 and HLA-DR < 5000; pending when HLA-DR is missing) and §1.6 (SRC-AUDIT:
SIP reversal HLA-DR > 8000 with ferritin < 4420; MALS reversal ferritin fall ≥ 15 %).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.phenotype import (
    classify,
    classify_frame,
    immune_reversal,
    phenotype_over_time,
    reversal_subset,
    shift_summary,
)
from core.rules import PhenotypeThresholds
from core.stats import compare_proportions
from core.vocab import Phenotype

NAN = float("nan")


@pytest.mark.parametrize(
    ("ferritin", "hla_dr", "expected"),
    [
        (4420.0, 3000.0, Phenotype.SIP),  # 4420 is not > 4420
        (4420.1, 3000.0, Phenotype.MALS),
        (4420.1, 9000.0, Phenotype.MALS),  # HLA-DR irrelevant for MALS
        (4420.1, None, Phenotype.MALS),
        (6120.0, 3000.0, Phenotype.MALS),  # both states → MALS (SRC-CTGOV)
        (1000.0, 4999.0, Phenotype.SIP),
        (1000.0, 5000.0, Phenotype.NOT_ELIGIBLE),  # 5000 is not < 5000
        (1000.0, 5000.1, Phenotype.NOT_ELIGIBLE),
        (4420.0, 5000.0, Phenotype.NOT_ELIGIBLE),
        (4420.0, None, Phenotype.PENDING),
        (4420.0, NAN, Phenotype.PENDING),  # NaN must not fall through to not eligible
        (1000.0, pd.NA, Phenotype.PENDING),
        (None, 3000.0, Phenotype.UNKNOWN),
        (NAN, NAN, Phenotype.UNKNOWN),
        (0.0, 0.0, Phenotype.SIP),
    ],
)
def test_boundaries(ferritin, hla_dr, expected):
    assert classify(ferritin, hla_dr).phenotype is expected


def test_reasons_in_words():
    assert classify(6120, 9000).reason == "ferritin 6120 ng/mL > 4420"
    assert classify(6120, 3000).reason.startswith("ferritin 6120 ng/mL > 4420 (HLA-DR 3000")
    assert classify(1200, 3100).reason == "ferritin 1200 ng/mL ≤ 4420 and HLA-DR 3100 AB/C < 5000"
    assert classify(1200, 6500).reason == "ferritin 1200 ng/mL ≤ 4420 and HLA-DR 6500 AB/C ≥ 5000"
    assert classify(4420.1, None).reason == "ferritin 4420.1 ng/mL > 4420"
    assert classify(1200, None).reason == "ferritin 1200 ng/mL ≤ 4420; HLA-DR missing"
    assert classify(None, 3000).reason == "ferritin missing"


def test_classification_keeps_inputs_and_thresholds_are_configurable():
    c = classify(3000, 4000)
    assert (c.ferritin_ng_ml, c.hla_dr_ab_per_cell) == (3000.0, 4000.0)
    strict = PhenotypeThresholds(
        ferritin_mals_above_ng_ml=2500.0, hla_dr_sip_below_ab_per_cell=3000.0
    )
    assert classify(3000, 4000, thresholds=strict).phenotype is Phenotype.MALS
    assert classify(2000, 4000, thresholds=strict).phenotype is Phenotype.NOT_ELIGIBLE
    assert classify(2000, 4000, thresholds=strict).reason.endswith("AB/C ≥ 3000")


@pytest.mark.parametrize(
    ("ferritin", "hla_dr", "near"),
    [
        # ferritin band 4420 ± 10 % = [3978, 4862], closed
        (3978.0, 20000.0, True),
        (3977.9, 20000.0, False),
        (4862.0, 20000.0, True),
        (4862.1, 20000.0, False),
        (4420.0, None, True),
        # HLA-DR band 5000 ± 15 % = [4250, 5750], closed, only while ferritin ≤ 4420
        (1000.0, 4250.0, True),
        (1000.0, 4249.9, False),
        (1000.0, 5750.0, True),
        (1000.0, 5750.1, False),
        (9000.0, 5000.0, False),  # MALS by a wide margin: HLA-DR decides nothing
        (None, 5000.0, False),
    ],
)
def test_near_threshold_band_edges(ferritin, hla_dr, near):
    assert classify(ferritin, hla_dr).near_threshold is near


def test_near_band_fractions_are_configurable():
    t = PhenotypeThresholds(ferritin_near_fraction=0.05, hla_dr_near_fraction=0.25)
    assert classify(4199.0, 20000.0, thresholds=t).near_threshold is True  # 4420·0.95 = 4199
    assert classify(4198.0, 20000.0, thresholds=t).near_threshold is False
    assert classify(1000.0, 3750.0, thresholds=t).near_threshold is True


@pytest.mark.parametrize("bad", [-1.0, math.inf])
def test_invalid_values_raise(bad):
    with pytest.raises(ValueError):
        classify(bad, 1000.0)
    with pytest.raises(ValueError):
        classify(1000.0, bad)


GRID_F = [None, NAN, 0.0, 3977.9, 3978.0, 4420.0, 4420.1, 4862.0, 6120.0]
GRID_H = [None, NAN, 0.0, 4249.9, 4250.0, 4999.0, 5000.0, 5750.0, 9000.0]


def test_classify_frame_matches_scalar_on_boundary_grid():
    rows = [(f, h) for f in GRID_F for h in GRID_H]
    df = pd.DataFrame(
        rows, columns=["ferritin_ng_ml", "hla_dr_ab_per_cell"], index=range(100, 100 + len(rows))
    )
    out = classify_frame(df)
    assert list(out.index) == list(df.index)
    for (f, h), (_, r) in zip(rows, out.iterrows(), strict=True):
        c = classify(f, h)
        assert r["phenotype"] == c.phenotype.value
        assert r["phenotype_reason"] == c.reason
        assert bool(r["near_threshold"]) is c.near_threshold


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(st.none(), st.floats(0, 20000, allow_nan=False)),
    st.one_of(st.none(), st.floats(0, 20000, allow_nan=False)),
)
def test_classify_frame_matches_scalar_property(f, h):
    df = pd.DataFrame({"ferritin_ng_ml": [f], "hla_dr_ab_per_cell": [h]}, dtype=float)
    out = classify_frame(df).iloc[0]
    c = classify(f, h)
    assert out["phenotype"] == c.phenotype.value
    assert out["phenotype_reason"] == c.reason
    assert bool(out["near_threshold"]) is c.near_threshold


def test_classify_frame_custom_columns():
    df = pd.DataFrame({"fer": [5000.0, 100.0], "hla": [1.0, 100.0]})
    out = classify_frame(df, ferritin_col="fer", hla_dr_col="hla")
    assert out["phenotype"].tolist() == ["MALS", "SIP"]


# --- over time -------------------------------------------------------------------------------


def _bio():
    return pd.DataFrame(
        {
            "patient_id": ["m1", "m1", "m1", "s1", "s1", "s1", "s2", "n1"],
            "study_day": [1, 3, 7, 1, 4, 7, 1, 1],
            "ferritin_ng_ml": [10000.0, 8600.0, 3000.0, 1000.0, 1200.0, 4420.0, 900.0, 1000.0],
            "hla_dr_ab_per_cell": [3000.0, 3500.0, 4000.0, 2000.0, 8000.0, 8001.0, 2500.0, 6000.0],
        }
    ).sample(frac=1.0, random_state=0)  # unsorted input on purpose


def test_phenotype_over_time_shifts_and_reversal_flags():
    ot = phenotype_over_time(_bio()).set_index(["patient_id", "study_day"])
    # m1: MALS → MALS → SIP; ferritin fall 14 % (not reversal) then 70 % (reversal)
    assert ot.loc[("m1", 1), "sample_index"] == 0
    assert ot.loc[("m1", 3), "phenotype"] == "MALS"
    assert ot.loc[("m1", 3), "ferritin_change_fraction"] == pytest.approx(-0.14)
    assert not ot.loc[("m1", 3), "mals_reversal"]
    assert ot.loc[("m1", 7), "mals_reversal"]
    assert ot.loc[("m1", 7), "phenotype_shift"] == "MALS→SIP"
    assert ot.loc[("m1", 7), "reversal"]
    assert ot.loc[("m1", 3), "phenotype_shift"] is None
    # s1: HLA-DR 8000 is not > 8000; 8001 with ferritin 4420 is not < 4420 → no SIP reversal
    assert not ot.loc[("s1", 4), "sip_reversal"]
    assert not ot.loc[("s1", 7), "sip_reversal"]
    assert ot.loc[("s1", 4), "phenotype_shift"] == "SIP→not_eligible"
    assert (ot["baseline_phenotype"].loc["s1"] == "SIP").all()
    assert not ot.loc[("s1", 1), "reversal"]  # never on the baseline sample
    assert ot.loc[("n1", 1), "phenotype"] == "not_eligible"


def test_sip_reversal_strict_edges():
    bio = pd.DataFrame(
        {
            "patient_id": ["a", "a", "b", "b"],
            "study_day": [1, 5, 1, 5],
            "ferritin_ng_ml": [1000.0, 4419.9, 1000.0, 1000.0],
            "hla_dr_ab_per_cell": [2000.0, 8000.1, 2000.0, 8000.0],
        }
    )
    ot = phenotype_over_time(bio).set_index(["patient_id", "study_day"])
    assert ot.loc[("a", 5), "sip_reversal"]
    assert not ot.loc[("b", 5), "sip_reversal"]


def test_mals_reversal_exactly_15_percent():
    bio = pd.DataFrame(
        {
            "patient_id": ["a", "a", "b", "b"],
            "study_day": [1, 3, 1, 3],
            "ferritin_ng_ml": [10000.0, 8500.0, 10000.0, 8501.0],
            "hla_dr_ab_per_cell": [NAN] * 4,
        }
    )
    ot = phenotype_over_time(bio).set_index(["patient_id", "study_day"])
    assert ot.loc[("a", 3), "mals_reversal"]  # fall 15.00 %
    assert not ot.loc[("b", 3), "mals_reversal"]  # fall 14.99 %


def test_phenotype_over_time_accepts_time_column():
    bio = _bio().drop(columns="study_day")
    bio["time"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(len(bio)), unit="h")
    ot = phenotype_over_time(bio)
    assert len(ot) == 8
    assert ot.groupby("patient_id")["sample_index"].max().to_dict() == {
        "m1": 2,
        "n1": 0,
        "s1": 2,
        "s2": 0,
    }


def test_shift_summary_per_arm():
    ot = phenotype_over_time(_bio())
    arms = pd.DataFrame(
        {
            "patient_id": ["m1", "s1", "s2", "n1"],
            "arm": ["Group A", "Group A", "Group B", "Group B"],
        }
    )
    s = shift_summary(ot, arms).set_index(["arm", "baseline_phenotype"])
    assert s.loc[("Group A", "MALS"), "n_mals_to_sip"] == 1
    assert s.loc[("Group A", "MALS"), "n_reversal"] == 1
    assert s.loc[("Group A", "SIP"), "n_any_shift"] == 1
    assert s.loc[("Group A", "SIP"), "n_reversal"] == 0
    assert s.loc[("Group B", "SIP"), "n_patients"] == 1


# --- reversal endpoint -----------------------------------------------------------------------


def test_immune_reversal_per_patient():
    bio = pd.DataFrame(
        {
            "patient_id": ["m1", "m1", "m1", "s1", "s1", "s1", "s2", "m2", "m2"],
            "study_day": [1, 4, 8, 1, 8, 15, 1, 1, 30],
            "ferritin_ng_ml": [9000.0, 8000.0, 7000.0, 800.0, 900.0, 700.0, 900.0, 9000.0, 1000.0],
            "hla_dr_ab_per_cell": [NAN, NAN, NAN, 3000.0, 7000.0, 9000.0, 3000.0, NAN, NAN],
        }
    )
    base = pd.Series({"m1": "MALS", "s1": "SIP", "s2": "SIP", "m2": "MALS", "x9": "SIP"})
    r = immune_reversal(bio, base, by_day=28).set_index("patient_id")
    assert r.loc["m1", "reversed"]  # 7000 / 9000 = 22 % fall on day 8 (day 4: 11 %)
    assert r.loc["m1", "reversal_study_day"] == 8
    assert r.loc["s1", "reversed"]
    assert r.loc["s1", "reversal_study_day"] == 15
    assert not r.loc["s2", "evaluable"]  # one draw
    assert not r.loc["s2", "reversed"]
    assert r.loc["m2", "n_samples"] == 1  # day 30 is after day 28
    assert not r.loc["m2", "reversed"]
    assert r.loc["x9", "n_samples"] == 0
    assert not r.loc["x9", "reversed"]
    assert math.isnan(r.loc["x9", "reversal_study_day"])
    assert r.loc["s1", "followup_study_day"] == 15
    # SAP day-15 wording: s1 reverses on day 15 (inclusive); with by_day 8 it does not
    assert not immune_reversal(bio, base, by_day=8).set_index("patient_id").loc["s1", "reversed"]


def test_reversal_row_reproduces_published_sidf():
    # clinical.md §1.8.3 (SRC-AUDIT Table 2): SIDF reversal 46/59 vs 32/66 → RD 29.5
    # (12.6 to 44.0), OR 3.76 (1.72–8.22), P .001. Build a sampled subset with those counts;
    # 3 placebo patients of the subset have no second draw by day 28 (their follow-up sample
    # is on day 30): counted as non-reversal in the denominator (clinical.md §1.6), so the
    # evaluable patients alone would give 32/63. 20 patients with a baseline sample only are
    # not in the subset.
    rows, base, arm = [], {}, {}
    for a, n, k in (("precision", 59, 46), ("placebo", 66, 32)):
        for i in range(n):
            pid = f"{a}-{i}"
            arm[pid] = a
            mals = i % 4 == 0
            base[pid] = "MALS" if mals else "SIP"
            day = 30 if a == "placebo" and i >= n - 3 else 8
            if mals:
                later = (6000.0, NAN) if i < k else (9000.0, NAN)  # 33 % fall vs 10 %
                rows += [(pid, 0, 10000.0, NAN), (pid, day, *later)]
            else:
                later = (1000.0, 9000.0) if i < k else (1000.0, 6000.0)
                rows += [(pid, -1, 1000.0, 3000.0), (pid, day, *later)]
        for i in range(10):
            pid = f"{a}-baseline-only-{i}"
            arm[pid] = a
            base[pid] = "SIP"
            rows.append((pid, 0, 1000.0, 3000.0))
    bio = pd.DataFrame(
        rows, columns=["patient_id", "study_day", "ferritin_ng_ml", "hla_dr_ab_per_cell"]
    )
    everyone = immune_reversal(bio, pd.Series(base))
    assert len(everyone) == 59 + 66 + 20
    r = reversal_subset(everyone).copy()
    r["arm"] = r["patient_id"].map(arm)
    e = r.groupby("arm")["reversed"].sum()
    n = r.groupby("arm").size()
    assert r.groupby("arm")["evaluable"].sum().to_dict() == {"precision": 59, "placebo": 63}
    c = compare_proportions(
        int(e["precision"]), int(n["precision"]), int(e["placebo"]), int(n["placebo"])
    )
    assert (c.events_treated, c.n_treated, c.events_control, c.n_control) == (46, 59, 32, 66)
    assert round(100 * c.risk_difference, 1) == 29.5
    assert round(100 * c.risk_difference_ci[0], 1) == 12.6
    assert round(100 * c.risk_difference_ci[1], 1) == 44.0
    assert round(c.odds_ratio, 2) == 3.76
    assert round(c.p_value, 3) == 0.001


def test_sampling_subset_and_non_evaluable_patients():
    """clinical.md §1.6: the denominator is the blood-sampling subset (a MALS / SIP baseline
    and a sample after it, on any day); a subset patient without ≥ 2 draws by the horizon is
    a non-reversal, not dropped. The baseline is the first sample, before the first dose."""
    bio = pd.DataFrame(
        [
            ("a", 0, 900.0, 3000.0),
            ("a", 3, 900.0, 8001.0),
            ("b", 0, 900.0, 3000.0),
            ("c", -1, 900.0, 3000.0),
            ("c", 20, 900.0, 9000.0),
            ("m1", 0, 10000.0, NAN),
            ("m1", 5, 8500.0, NAN),
            ("m2", 0, 10000.0, NAN),
            ("m2", 5, 8501.0, NAN),
            ("x", -1, 900.0, 6000.0),
            ("x", 3, 900.0, 9000.0),
            ("n", 0, 900.0, 3000.0),
            ("n", NAN, 900.0, 9000.0),
        ],
        columns=["patient_id", "study_day", "ferritin_ng_ml", "hla_dr_ab_per_cell"],
    )
    base = pd.Series({"a": "SIP", "b": "SIP", "c": "SIP", "m1": "MALS", "m2": "MALS", "n": "SIP"})
    base["x"] = "not eligible"
    r = immune_reversal(bio, base, by_day=15).set_index("patient_id")
    # a: baseline on day 0 + day 3 with HLA-DR 8001 > 8000 → reversed on day 3
    assert r.loc["a", ["in_sampling_subset", "evaluable", "reversed"]].tolist() == [True] * 3
    assert r.loc["a", "reversal_study_day"] == 3
    # b: the screening sample only → outside the subset
    assert not r.loc["b", "in_sampling_subset"]
    # c: serial sampling, but the second draw is after day 15 → in the subset, not evaluable,
    # not reversed (its day-20 HLA-DR of 9000 does not count by day 15)
    assert r.loc["c", ["in_sampling_subset", "evaluable", "reversed"]].tolist() == [
        True,
        False,
        False,
    ]
    assert r.loc["c", "n_samples"] == 1
    # MALS: a fall of exactly 15 % from the pre-dose baseline reverses, 14.99 % does not
    assert r.loc["m1", "reversed"]
    assert not r.loc["m2", "reversed"]
    assert r.loc["m2", "in_sampling_subset"]
    # not eligible at baseline: never in the subset; a row without a study day is ignored
    assert not r.loc["x", "in_sampling_subset"]
    assert not r.loc["n", "in_sampling_subset"]
    assert r.loc["n", "n_samples"] == 1
    subset = reversal_subset(r.reset_index())
    assert sorted(subset["patient_id"]) == ["a", "c", "m1", "m2"]
    assert int(subset["reversed"].sum()) == 2  # 2/4, not 2/3 of the evaluable ones
    # by day 28 c becomes evaluable and reversed (day 20: HLA-DR 9000, ferritin 900)
    r28 = immune_reversal(bio, base, by_day=28).set_index("patient_id")
    assert r28.loc["c", ["in_sampling_subset", "evaluable", "reversed"]].tolist() == [True] * 3


def test_immune_reversal_of_an_empty_cohort_and_of_patients_without_samples():
    """No patients: an empty table; patients without any sample: not evaluable, not
    reversed (an empty merge once kept an index named like the column and crashed)."""
    import pandas as pd

    from core.phenotype import immune_reversal

    none = pd.DataFrame(
        {
            "patient_id": pd.Series([], dtype=object),
            "study_day": pd.Series([], dtype=int),
            "ferritin_ng_ml": pd.Series([], dtype=float),
            "hla_dr_ab_per_cell": pd.Series([], dtype=float),
        }
    )
    nobody = pd.DataFrame(
        {"patient_id": pd.Series([], dtype=object), "phenotype": pd.Series([], dtype=object)}
    )
    empty = immune_reversal(none, nobody, by_day=28)
    assert len(empty) == 0
    one = immune_reversal(
        none, pd.DataFrame({"patient_id": ["A"], "phenotype": ["MALS"]}), by_day=28
    )
    assert one["patient_id"].tolist() == ["A"]
    assert not one["evaluable"].iloc[0]
    assert not one["in_sampling_subset"].iloc[0]
    assert not one["reversed"].iloc[0]
    assert reversal_subset(one).empty
