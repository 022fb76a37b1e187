"""Subgroup forest (issue 18): interaction P against statsmodels, inverse-variance boxes, clean
log ticks, "favours" labels, pre-specified subgroups only, sites apart, none for blinded roles.
"""

from __future__ import annotations

import math
import warnings

import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats as sps

from components.cohort import charts as cf
from components.cohort import primary
from components.data import cohort as cd
from components.data.keys import Context
from core.stats import forest_rows, interaction_test
from core.stats.subgroups import inverse_variance_weight
from tests import test_cohort_page as page
from tests.test_cohort_page import CODED, FULL, NONE, view

#: the cohort-page app fixtures (session demo database, request context)
demo_db_url = page.demo_db_url
app = page.app
request_ctx = page.request_ctx


def _frame(cells: tuple[tuple[str, str, int, int], ...]) -> pd.DataFrame:
    rows = []
    for group, level, events, n in cells:
        rows += [{"group": group, "sub": level, "y": i < events} for i in range(n)]
    return pd.DataFrame(rows)


TWO_LEVELS = (
    ("A", "low", 6, 10),
    ("A", "high", 2, 10),
    ("B", "low", 2, 10),
    ("B", "high", 2, 10),
)
THREE_LEVELS = (
    ("A", "x", 9, 20),
    ("A", "y", 4, 15),
    ("A", "z", 7, 12),
    ("B", "x", 5, 18),
    ("B", "y", 6, 14),
    ("B", "z", 2, 11),
)


def _statsmodels_lr(df: pd.DataFrame):
    d = df.assign(t=(df["group"] == "A").astype(float), y=df["y"].astype(float))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = smf.logit("y ~ t * C(sub)", data=d).fit(disp=0)
        red = smf.logit("y ~ t + C(sub)", data=d).fit(disp=0)
    lr = 2 * (full.llf - red.llf)
    dof = int(full.df_model - red.df_model)
    return full, lr, dof, float(sps.chi2.sf(lr, dof))


@pytest.mark.parametrize("cells", [TWO_LEVELS, THREE_LEVELS], ids=["2 levels", "3 levels"])
def test_forest001_interaction_p_equals_statsmodels_logit_lr_test(cells):
    df = _frame(cells)
    res = interaction_test(
        df, outcome_col="y", subgroup_col="sub", arm_col="group", treated="A", control="B"
    )
    full, lr, dof, p = _statsmodels_lr(df)
    assert res.df == dof == len({c[1] for c in cells}) - 1
    assert res.lr_statistic == pytest.approx(lr, rel=1e-6)
    assert res.p_value == pytest.approx(p, rel=1e-6)
    if dof == 1:
        # reference level "high" (sorted first); the interaction term is t × low
        coef = full.params["t:C(sub)[T.low]"]
        assert res.interaction_odds_ratio == pytest.approx(math.exp(coef), rel=1e-6)
        # ratio of the level ORs: (6·8 / (4·2)) / (2·8 / (8·2)) = 6
        assert res.interaction_odds_ratio == pytest.approx(6.0, rel=1e-6)


def test_forest002_weights_are_inverse_woolf_variance():
    df = _frame(TWO_LEVELS)
    rows = forest_rows(
        df, outcome_col="y", subgroups={"S": "sub"}, arm_col="group", treated="A", control="B"
    ).set_index("level")
    # Woolf: var(log OR) = 1/a + 1/b + 1/c + 1/d
    assert rows.loc["low", "weight"] == pytest.approx(1 / (1 / 6 + 1 / 4 + 1 / 2 + 1 / 8))
    assert rows.loc["high", "weight"] == pytest.approx(1 / (1 / 2 + 1 / 8 + 1 / 2 + 1 / 8))
    assert rows.loc["all", "weight"] == pytest.approx(1 / (1 / 8 + 1 / 12 + 1 / 4 + 1 / 16))
    assert inverse_variance_weight(math.nan, 3.0) == 0.0
    assert inverse_variance_weight(0.0, math.inf) == 0.0
    se = 0.5
    lo, hi = math.exp(-1.959963984540054 * se), math.exp(1.959963984540054 * se)
    assert inverse_variance_weight(lo, hi) == pytest.approx(1 / se**2)


def _rows():
    return forest_rows(
        _frame(TWO_LEVELS),
        outcome_col="y",
        subgroups={"Severity": "sub"},
        arm_col="group",
        treated="A",
        control="B",
    )


def test_forest003_boxes_sized_by_weight_clean_ticks_and_favours_labels():
    rows = _rows()
    fig = cf.forest_figure(rows, difference_words="A − B", favours=("B", "A"))
    sizes = list(fig.data[0].marker.size)
    symbols = list(fig.data[0].marker.symbol)
    # rows: All patients, header, high, low; "low" has the larger weight → larger box
    assert symbols[0] == "diamond"
    assert symbols[2] == "square"
    assert sizes[0] == pytest.approx(cf.FOREST_BOX_PX[1])  # heaviest row: largest box
    w = rows.set_index("level")["weight"]
    expected_low = 6 + 12 * math.sqrt(w["low"] / w["all"])
    assert sizes[3] == pytest.approx(expected_low)
    assert sizes[2] < sizes[3]
    ax = fig.layout.xaxis
    assert ax.type == "log"
    assert list(ax.tickvals) == list(cf.FOREST_TICKS)
    assert list(ax.ticktext) == ["0.05", "0.1", "0.2", "0.5", "1", "2", "5", "10", "20"]
    texts = [a.text for a in fig.layout.annotations]
    assert "← favours B" in texts
    assert "favours A →" in texts
    left = next(a for a in fig.layout.annotations if a.text == "← favours B")
    assert left.x < 0  # left of OR = 1 (log10 units)
    headers = {"<b>n</b>", "<b>OR (95 % CI)</b>", "<b>Interaction P</b>"}
    assert headers <= set(texts)
    # the estimate column prints the Woolf CI text of each row
    low = rows.set_index("level").loc["low"]
    assert (
        cf.fmt_ratio(low["odds_ratio"], low["odds_ratio_ci_lower"], low["odds_ratio_ci_upper"])
        in texts
    )


def test_forest004_single_arm_levels_are_not_estimable_and_not_tested():
    # level "x" has group A only: no odds ratio, open box, "not estimable", and it is left
    # out of the interaction test (one testable level remains → no P, not a fake P = 1)
    df = _frame((("A", "x", 2, 5), ("A", "y", 3, 6), ("B", "y", 2, 6)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows = forest_rows(
            df, outcome_col="y", subgroups={"S": "sub"}, arm_col="group", treated="A", control="B"
        )
    x = rows.set_index("level").loc["x"]
    assert x["weight"] == 0
    assert math.isnan(x["odds_ratio"])
    assert rows["interaction_p"].isna().all()
    fig = cf.forest_figure(rows, favours=("B", "A"))
    assert list(fig.data[0].marker.symbol)[2] == "square-open"
    texts = [a.text for a in fig.layout.annotations]
    assert "not estimable" in texts
    assert "not tested" in texts
    # a third level with both arms makes two testable levels: P from those two only
    df3 = pd.concat([df, _frame((("A", "z", 4, 6), ("B", "z", 1, 6)))], ignore_index=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows3 = forest_rows(
            df3, outcome_col="y", subgroups={"S": "sub"}, arm_col="group", treated="A", control="B"
        )
        only = interaction_test(
            df3[df3["sub"] != "x"],
            outcome_col="y",
            subgroup_col="sub",
            arm_col="group",
            treated="A",
            control="B",
        )
    assert rows3["interaction_p"].iloc[1] == pytest.approx(only.p_value)


def test_forest005_blinded_views_get_no_forest_builder():
    with pytest.raises(ValueError, match="compared=False"):
        cf.forest_figure(_rows(), compared=False)
    with pytest.raises(ValueError, match="compared=False"):
        cf.forest_table(_rows(), compared=False)


def test_forest006_table_weight_shares_sum_to_100_per_subgroup():
    t = cf.forest_table(_rows())
    shares = t[t["Subgroup"] == "Severity"]["Weight, %"].astype(float)
    assert shares.sum() == pytest.approx(100, abs=0.11)
    assert t.loc[0, "Subgroup"] == "All patients"
    assert t.loc[0, "Weight, %"] == "100.0"


@pytest.mark.usefixtures("request_ctx")
def test_forest007_page_shows_prespecified_subgroups_and_a_separate_site_panel():
    v = view("primary", FULL, cd.CohortFilters.make())
    by = {s.figure_name: s for s in v.sections if s.figure_name}
    forest = by["forest"].table
    assert "Site" not in set(forest["Subgroup"])
    assert set(forest["Subgroup"]) - {"All patients"} <= set(primary.SUBGROUPS)
    assert {"Immune state", "APACHE II (points)", "Baseline SOFA (points)"} <= set(
        forest["Subgroup"]
    )
    assert set(forest[forest["Subgroup"] == "APACHE II (points)"]["Level"]) == {"≥ 25", "< 25"}
    sites = by["forest_sites"].table
    assert set(sites["Subgroup"]) == {"All patients", "Site"}
    df = cd.analysis_frame(Context.current(FULL), cd.CohortFilters.make())
    assert sites["n"].iloc[1:].sum() == len(df[df["group"].notna()])
    texts = [a.text for a in by["forest"].figure.layout.annotations]
    assert "← favours placebo" in texts
    assert "favours precision →" in texts
    assert any("APACHE II ≥ 25" in n for n in v.notes)


@pytest.mark.usefixtures("request_ctx")
def test_forest008_dsmb_sees_coded_favours_and_blinded_roles_no_forest():
    coded = view("primary", CODED, cd.CohortFilters.make())
    fig = next(s.figure for s in coded.sections if s.figure_name == "forest")
    texts = [a.text for a in fig.layout.annotations]
    assert "← favours Group B" in texts
    assert "favours Group A →" in texts
    assert not any(
        "placebo" in (t or "").lower() or "precision" in (t or "").lower() for t in texts
    )
    blind = view("primary", NONE, cd.CohortFilters.make())
    assert not [s for s in blind.sections if (s.figure_name or "").startswith("forest")]
    assert not [s for s in blind.sections if (s.table_name or "").startswith("forest")]
