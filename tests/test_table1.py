"""Table 1 (issue 18): numbers checked against the ``tableone`` package on the demo cohort,
"(N = …)" headers, ferritin / HLA-DR / immune state / country / site rows, SMD only where two
groups are compared (no empty column in the pooled view)."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest
from tableone import TableOne

from components.blinding import POOLED_LABEL
from components.cohort import baseline as b1
from components.cohort import charts as cf
from components.data import cohort as cd
from components.data.keys import Context
from core.stats import table_one
from tests import test_cohort_page as page
from tests.test_cohort_page import FULL, NONE, compute, view

#: the cohort-page app fixtures (session demo database, request context)
demo_db_url = page.demo_db_url
app = page.app
request_ctx = page.request_ctx

LABELS = ("Precision immunotherapy", "Placebo")


def _tableone(df: pd.DataFrame, continuous, categorical, nonnormal) -> TableOne:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return TableOne(
            df,
            columns=[*continuous, *categorical],
            categorical=list(categorical),
            nonnormal=list(nonnormal),
            groupby="group",
            smd=True,
            pval=False,
            overall=False,
            decimals=6,
        )


@pytest.mark.usefixtures("request_ctx")
def test_table1_001_numbers_equal_tableone_on_the_demo_cohort():
    res = compute("baseline", FULL, cd.CohortFilters.make())
    t1 = res["by_group"]
    df = cd.analysis_frame(Context.current(FULL), cd.CohortFilters.make())
    df = df[df["group"].isin(LABELS)].assign(
        immune_state=lambda d: d["phenotype"].map(b1.IMMUNE_STATE_LEVELS).fillna(b1.NEITHER)
    )
    # tableone prints a signed SMD for continuous variables; ours is absolute (docstring)
    cont = b1.TABLE_ONE_CONTINUOUS
    cat = ("immune_state", "infection_type", "country")
    ref = _tableone(df, cont, cat, b1.TABLE_ONE_NONNORMAL)
    desc = ref.cont_describe
    smd_col = next(c for c in ref.smd_table.columns if c.startswith("SMD"))
    for var in cont:
        rows = t1[t1["variable"] == var].set_index("group")
        for g in LABELS:
            assert rows.loc[g, "median"] == pytest.approx(desc.loc[var, ("median", g)])
            assert rows.loc[g, "q1"] == pytest.approx(desc.loc[var, ("q25", g)])
            assert rows.loc[g, "q3"] == pytest.approx(desc.loc[var, ("q75", g)])
            assert rows.loc[g, "mean"] == pytest.approx(desc.loc[var, ("mean", g)])
            assert rows.loc[g, "n_nonmissing"] == desc.loc[var, ("count", g)]
        assert rows["smd"].iloc[0] == pytest.approx(
            abs(float(ref.smd_table.loc[var, smd_col])), abs=1e-6
        )
    freq = ref.cat_describe
    for var in cat:
        rows = t1[t1["variable"] == var]
        for (lv, g), r in rows.set_index(["level", "group"]).iterrows():
            assert r["count"] == freq.loc[(var, str(lv)), ("freq", g)]
        assert rows["smd"].iloc[0] == pytest.approx(
            abs(float(ref.smd_table.loc[var, smd_col])), abs=1e-6
        )
    # the biomarkers are really there, in their units, with plausible baseline values
    fer = t1[t1["variable"] == "ferritin_ng_ml"]
    assert (fer["n_nonmissing"] > 0).all()
    assert res["n_by_group"] == {g: int((df["group"] == g).sum()) for g in LABELS}


@pytest.mark.usefixtures("request_ctx")
def test_table1_002_headers_carry_n_and_the_rows_the_issue_asks_for():
    v = view("baseline", FULL, cd.CohortFilters.make())
    sec = v.sections[0]
    df = cd.analysis_frame(Context.current(FULL), cd.CohortFilters.make())
    for i, g in enumerate(LABELS):
        assert sec.headers[f"g{i}"] == f"{g} (N = {int((df['group'] == g).sum())})"
    table = sec.table
    variables = set(table["Variable"]) - {""}
    assert {
        "Baseline ferritin (ng/mL), median [IQR]",
        "Baseline monocyte HLA-DR (AB/C), median [IQR]",
        "Immune state at baseline, n (%)",
        "Country, n (%)",
        "Sites contributing patients, n",
    } <= variables
    start = table.index[table["Variable"] == "Immune state at baseline, n (%)"][0]
    levels = []
    for i in range(start, len(table)):
        if i > start and table.loc[i, "Variable"]:
            break
        levels.append(table.loc[i, "Level"])
    assert set(levels) <= {"MALS", "SIP", b1.NEITHER}
    assert {"MALS", "SIP"} <= set(levels)
    sites = table[table["Variable"] == "Sites contributing patients, n"].iloc[0]
    assert int(sites["g0"]) == df.loc[df["group"] == LABELS[0], "site_id"].nunique()
    assert "SMD" in table.columns
    assert table.loc[0, "SMD"] != ""


@pytest.mark.usefixtures("request_ctx")
def test_table1_003_pooled_view_has_no_empty_column_and_no_arm():
    v = view("baseline", NONE, cd.CohortFilters.make())
    sec = v.sections[0]
    table = sec.table
    assert "SMD" not in table.columns
    assert list(table.columns) == ["Variable", "Level", "g0"]
    for c in ("g0", "Variable"):
        assert (table[c] != "").any()
    n = len(cd.analysis_frame(Context.current(NONE), cd.CohortFilters.make()))
    assert sec.headers == {"g0": f"{POOLED_LABEL} (N = {n})"}
    # by immune state: headers with N per state
    state = v.sections[1]
    assert state.headers["g0"].startswith("MALS (N = ")


def test_table1_004_display_says_missing_and_counts_distinct_sites():
    base = pd.DataFrame(
        {
            "g": ["A"] * 4 + ["B"] * 4,
            "ferritin_ng_ml": [5000.0, 6000.0, None, 8000.0, 900.0, 1200.0, 1500.0, 2000.0],
            "site_id": ["s1", "s1", "s2", "s3", "s1", "s1", "s1", "s1"],
        }
    )
    t1 = table_one(
        base,
        group_col="g",
        continuous=["ferritin_ng_ml"],
        nonnormal=["ferritin_ng_ml"],
        distinct=["site_id"],
        groups=["A", "B"],
    )
    disp = cf.table_one_display(t1, ["A", "B"])
    assert disp.loc[0, "g0"] == "6000 [5500–7000]; 1 missing"
    assert disp.loc[0, "g1"] == "1350 [1125–1625]"
    assert disp.loc[1, "Variable"] == "Sites contributing patients, n"
    assert (disp.loc[1, "g0"], disp.loc[1, "g1"]) == ("3", "1")
    assert disp.loc[1, "SMD"] == ""
    pooled = cf.table_one_display(
        table_one(base.assign(g="All"), group_col="g", continuous=["ferritin_ng_ml"]), ["All"]
    )
    assert list(pooled.columns) == ["Variable", "Level", "g0"]
