"""SOFA-2 scorer (core.sofa2): upper-inclusive boundary tables and properties.

Cut-offs: SRC-SOFA2 (Ranzani et al., JAMA 2025) as transcribed in clinical.md section 3 [S];
boundaries are "<=" (the opposite of classic SOFA's "<").
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.exceptions import DataValidationError
from core.rules import SofaRules
from core.sofa2 import SOFA2_COLUMNS, SOFA2_TOTAL, score_sofa2
from core.vocab import SOFA_INPUT_COLUMNS

NUMERIC = tuple(c for c in SOFA_INPUT_COLUMNS if c != "respiratory_support")


def day(**values: object) -> dict[str, object]:
    row: dict[str, object] = dict.fromkeys(NUMERIC, np.nan)
    row["respiratory_support"] = False
    row.update(values)
    return row


def s2(component: str, **values: object) -> object:
    return score_sofa2(pd.DataFrame([day(**values)]))[component].iloc[0]


# SRC-SOFA2 brain: GCS 15 / 13-14 / 9-12 / 6-8 / 3-5; delirium drugs -> >= 1 (footnote e)
@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"gcs_total": 15}, 0),
        ({"gcs_total": 14}, 1),
        ({"gcs_total": 13}, 1),
        ({"gcs_total": 12}, 2),
        ({"gcs_total": 9}, 2),
        ({"gcs_total": 8}, 3),
        ({"gcs_total": 6}, 3),
        ({"gcs_total": 5}, 4),
        ({"gcs_total": 3}, 4),
        ({"gcs_total": 15, "delirium_drugs": True}, 1),
        ({"gcs_total": 7, "delirium_drugs": True}, 3),
    ],
)
def test_sofa2001_brain(values: dict, expected: int) -> None:
    assert s2("sofa2_brain", **values) == expected


# SRC-SOFA2 respiratory: <= 300/225/150/75; 3-4 need advanced support (footnotes g, h); ECMO 4
@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"pao2_fio2_mmhg": 300.1}, 0),
        ({"pao2_fio2_mmhg": 300.0}, 1),
        ({"pao2_fio2_mmhg": 225.1}, 1),
        ({"pao2_fio2_mmhg": 225.0}, 2),
        ({"pao2_fio2_mmhg": 150.0}, 2),
        ({"pao2_fio2_mmhg": 150.1, "respiratory_support": True}, 2),
        ({"pao2_fio2_mmhg": 150.0, "respiratory_support": True}, 3),
        ({"pao2_fio2_mmhg": 75.1, "respiratory_support": True}, 3),
        ({"pao2_fio2_mmhg": 75.0, "respiratory_support": True}, 4),
        ({"pao2_fio2_mmhg": 60.0}, 2),
        (
            {
                "pao2_fio2_mmhg": 70.0,
                "respiratory_support": True,
                "advanced_respiratory_support": False,
            },
            2,
        ),
        ({"pao2_fio2_mmhg": 350.0, "ecmo_respiratory": True}, 4),
    ],
)
def test_sofa2002_respiratory(values: dict, expected: int) -> None:
    assert s2("sofa2_respiratory", **values) == expected


# SRC-SOFA2 cardiovascular: NE+epi sums <= 0.2 / <= 0.4 / > 0.4, "other" = dopamine or
# dobutamine, dopamine alone <= 20 / <= 40 / > 40 (footnote l); zero doses never score
@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"map_mmhg": 70.0}, 0),
        ({"map_mmhg": 69.9}, 1),
        ({"map_mmhg": 80.0, "norepinephrine_mcg_kg_min": 0.0}, 0),
        ({"norepinephrine_mcg_kg_min": 0.2}, 2),
        ({"norepinephrine_mcg_kg_min": 0.2001}, 3),
        ({"norepinephrine_mcg_kg_min": 0.1, "epinephrine_mcg_kg_min": 0.1}, 2),
        ({"norepinephrine_mcg_kg_min": 0.1, "epinephrine_mcg_kg_min": 0.15}, 3),
        ({"epinephrine_mcg_kg_min": 0.4}, 3),
        ({"epinephrine_mcg_kg_min": 0.41}, 4),
        ({"norepinephrine_mcg_kg_min": 0.1, "dobutamine_mcg_kg_min": 5.0}, 3),
        ({"norepinephrine_mcg_kg_min": 0.3, "dopamine_mcg_kg_min": 5.0}, 4),
        ({"dobutamine_mcg_kg_min": 2.5}, 2),
        ({"dopamine_mcg_kg_min": 20.0}, 2),
        ({"dopamine_mcg_kg_min": 20.1}, 3),
        ({"dopamine_mcg_kg_min": 40.0}, 3),
        ({"dopamine_mcg_kg_min": 40.1}, 4),
        # footnote l as a floor: adding norepinephrine to high-dose dopamine never lowers it
        ({"dopamine_mcg_kg_min": 45.0, "norepinephrine_mcg_kg_min": 0.05}, 4),
    ],
)
def test_sofa2003_cardiovascular(values: dict, expected: int) -> None:
    assert s2("sofa2_cardiovascular", **values) == expected


# SRC-SOFA2 liver: bilirubin <= 1.2 / <= 3.0 / <= 6.0 / <= 12.0 / > 12 mg/dL
@pytest.mark.parametrize(
    ("bili", "expected"),
    [(1.2, 0), (1.21, 1), (3.0, 1), (3.01, 2), (6.0, 2), (6.01, 3), (12.0, 3), (12.01, 4)],
)
def test_sofa2004_liver(bili: float, expected: int) -> None:
    assert s2("sofa2_liver", bilirubin_mg_dl=bili) == expected


# SRC-SOFA2 kidney: creatinine <= 1.2 / <= 2.0 / <= 3.5 / > 3.5; RRT -> 4; urine (mean rate)
@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"creatinine_mg_dl": 1.2}, 0),
        ({"creatinine_mg_dl": 1.21}, 1),
        ({"creatinine_mg_dl": 2.0}, 1),
        ({"creatinine_mg_dl": 2.01}, 2),
        ({"creatinine_mg_dl": 3.5}, 2),
        ({"creatinine_mg_dl": 3.51}, 3),
        ({"creatinine_mg_dl": 0.8, "rrt": True}, 4),
        ({"rrt": True}, 4),
        ({"creatinine_mg_dl": 0.8, "urine_output_ml_kg_h": 0.4}, 2),
        ({"creatinine_mg_dl": 0.8, "urine_output_ml_kg_h": 0.2}, 3),
        ({"creatinine_mg_dl": 0.8, "urine_output_ml_kg_h": 0.5}, 0),
    ],
)
def test_sofa2005_kidney(values: dict, expected: int) -> None:
    assert s2("sofa2_kidney", **values) == expected


# SRC-SOFA2 hemostasis: platelets <= 150 / <= 100 / <= 80 / <= 50
@pytest.mark.parametrize(
    ("plt", "expected"),
    [(151, 0), (150, 1), (101, 1), (100, 2), (81, 2), (80, 3), (51, 3), (50, 4), (5, 4)],
)
def test_sofa2006_hemostasis(plt: float, expected: int) -> None:
    assert s2("sofa2_hemostasis", platelets_10e3_per_ul=plt) == expected


def test_sofa2007_missing_and_totals() -> None:
    out = score_sofa2(pd.DataFrame([day(), day(rrt=False)])).iloc[0]
    assert all(out[c] is pd.NA for c in SOFA2_COLUMNS)
    assert out[SOFA2_TOTAL] == 0
    strict = SofaRules(missing_total="nan_if_any_missing")
    assert score_sofa2(pd.DataFrame([day(gcs_total=3)]), rules=strict)[SOFA2_TOTAL].iloc[0] is pd.NA


def test_sofa2008_worked_example_same_day_both_scores_differ() -> None:
    """P/F 210 ventilated, platelets 90, bilirubin 2.5, NE 0.15, GCS 10, creatinine 1.8.

    SOFA-2: respiratory 2, hemostasis 2, liver 1, cardiovascular 2, brain 2, kidney 1 = 10.
    """
    out = score_sofa2(
        pd.DataFrame(
            [
                day(
                    pao2_fio2_mmhg=210.0,
                    respiratory_support=True,
                    platelets_10e3_per_ul=90.0,
                    bilirubin_mg_dl=2.5,
                    norepinephrine_mcg_kg_min=0.15,
                    gcs_total=10,
                    creatinine_mg_dl=1.8,
                )
            ]
        )
    ).iloc[0]
    assert [out[c] for c in SOFA2_COLUMNS] == [2, 2, 2, 1, 1, 2]
    assert out[SOFA2_TOTAL] == 10


def test_sofa2009_missing_column_error() -> None:
    with pytest.raises(DataValidationError, match="gcs_total"):
        score_sofa2(pd.DataFrame([day()]).drop(columns="gcs_total"))


value = st.one_of(st.just(float("nan")), st.just(0.0), st.floats(0.0, 500.0))
row = st.fixed_dictionaries(
    {
        **{c: value for c in NUMERIC},
        "respiratory_support": st.booleans(),
        "rrt": st.booleans(),
    }
)


@settings(max_examples=150, deadline=None)
@given(st.lists(row, min_size=1, max_size=15))
def test_sofa2010_property_ranges_and_no_mutation(rows: list[dict]) -> None:
    days = pd.DataFrame(rows)
    before = days.copy(deep=True)
    out = score_sofa2(days)
    pd.testing.assert_frame_equal(days, before)
    for c in SOFA2_COLUMNS:
        vals = out[c].dropna()
        assert ((vals >= 0) & (vals <= 4)).all()
    assert out[SOFA2_TOTAL].between(0, 24).all()
    summed = out[list(SOFA2_COLUMNS)].astype("float64").fillna(0).sum(axis=1).astype(int)
    assert (summed == out[SOFA2_TOTAL].astype(int)).all()


WORSE = {
    "gcs_total": (-1, "sofa2_brain"),
    "pao2_fio2_mmhg": (-1, "sofa2_respiratory"),
    "norepinephrine_mcg_kg_min": (1, "sofa2_cardiovascular"),
    "epinephrine_mcg_kg_min": (1, "sofa2_cardiovascular"),
    "dobutamine_mcg_kg_min": (1, "sofa2_cardiovascular"),
    "dopamine_mcg_kg_min": (1, "sofa2_cardiovascular"),
    "map_mmhg": (-1, "sofa2_cardiovascular"),
    "bilirubin_mg_dl": (1, "sofa2_liver"),
    "creatinine_mg_dl": (1, "sofa2_kidney"),
    "platelets_10e3_per_ul": (-1, "sofa2_hemostasis"),
}


@settings(max_examples=150, deadline=None)
@given(row, st.sampled_from(sorted(WORSE)), st.floats(0.0, 200.0), st.floats(0.0, 500.0))
def test_sofa2011_property_monotone(r: dict, column: str, step: float, base: float) -> None:
    direction, comp = WORSE[column]
    worse = max(base + direction * step, 0.0)
    a = score_sofa2(pd.DataFrame([{**r, column: base}]))[comp].iloc[0]
    b = score_sofa2(pd.DataFrame([{**r, column: worse}]))[comp].iloc[0]
    assert b >= a


def test_sofa2012_cardiovascular_monotone_on_a_dose_grid() -> None:
    """Exhaustive grid over the dose cut-offs: more of any agent never lowers the score."""
    ne = [0.0, 0.1, 0.2, 0.25, 0.4, 0.5]
    dopa = [0.0, 5.0, 20.0, 30.0, 40.0, 45.0]
    dobu = [0.0, 5.0]
    grid = pd.MultiIndex.from_product([ne, dopa, dobu], names=["ne", "dopa", "dobu"])
    days = pd.DataFrame(
        [
            day(norepinephrine_mcg_kg_min=a, dopamine_mcg_kg_min=b, dobutamine_mcg_kg_min=c)
            for a, b, c in grid
        ]
    )
    pts = pd.Series(score_sofa2(days)["sofa2_cardiovascular"].astype(int).to_numpy(), index=grid)
    cube = pts.to_numpy().reshape(len(ne), len(dopa), len(dobu))
    for axis in range(3):
        assert (np.diff(cube, axis=axis) >= 0).all()
