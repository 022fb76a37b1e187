"""The Immune tab's reversal counts (components/cohort/immune.py) follow clinical.md §1.6: the
denominator is the blood-sampling subset, a subset patient without ≥ 2 samples by day 28 is
a non-reversal and their number is shown next to each proportion; the page, the report and
the CSV print the same counts (the publication check reads them too,
tests/test_publication_dataset.py).
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from components.blinding import groups_for
from components.cohort import immune
from components.data import cohort as cd
from components.data.keys import Context
from components.pages import cohort
from components.server.context import engine
from core.repository import load_biomarkers
from tests import test_cohort_page as cohort_tests
from tests.test_cohort_page import FULL, NONE

demo_db_url = cohort_tests.demo_db_url
app = cohort_tests.app
request_ctx = cohort_tests.request_ctx

NE = immune.NOT_EVALUABLE_HEADER


# --- pure pieces --------------------------------------------------------------------------------


def subset_rows() -> pd.DataFrame:
    """Sampling-subset rows: A has 3 patients (1 without ≥ 2 samples), B 2 (both evaluable)."""
    return pd.DataFrame(
        {
            "patient_id": ["a1", "a2", "a3", "b1", "b2"],
            "group": ["A", "A", "A", "B", "B"],
            "baseline_phenotype": ["MALS", "SIP", "SIP", "SIP", "MALS"],
            "evaluable": [True, True, False, True, True],
            "reversed": [True, False, False, True, False],
        }
    )


def test_imm001_rows_count_non_evaluable_in_the_denominator():
    rows = immune._reversal_rows(subset_rows().assign(stratum="overall"), ["stratum", "group"])
    got = rows.set_index("group")[["n", "events", "not_evaluable"]].to_dict("index")
    assert got == {
        "A": {"n": 3, "events": 1, "not_evaluable": 1},
        "B": {"n": 2, "events": 1, "not_evaluable": 0},
    }
    sub = subset_rows()
    by_state = immune._reversal_rows(sub.assign(stratum=sub["baseline_phenotype"]), ["stratum"])
    assert by_state.set_index("stratum")["not_evaluable"].to_dict() == {"MALS": 0, "SIP": 1}
    assert by_state.set_index("stratum")["n"].to_dict() == {"MALS": 2, "SIP": 3}
    empty = immune._reversal_rows(sub.iloc[0:0].assign(stratum=[]), ["stratum"])
    assert empty.empty
    assert "not_evaluable" in empty.columns


def test_imm002_table_puts_the_non_evaluable_count_next_to_the_proportions():
    sub = subset_rows()
    props = pd.concat(
        [
            immune._reversal_rows(sub.assign(stratum="overall"), ["stratum", "group"]),
            immune._reversal_rows(
                sub.assign(stratum=sub["baseline_phenotype"]), ["stratum", "group"]
            ),
        ],
        ignore_index=True,
    )
    table = immune.reversal_table(props, pd.DataFrame(), ("A", "B"))
    assert list(table.columns) == ["stratum_key", "Stratum", "g0", "g1", "ne0", "ne1"]
    overall = table.set_index("stratum_key").loc["overall"]
    assert overall["g0"].startswith("1/3 ")
    assert overall["g1"].startswith("1/2 ")
    assert (overall["ne0"], overall["ne1"]) == (1, 0)
    mals = table.set_index("stratum_key").loc["MALS"]
    assert (mals["ne0"], mals["ne1"]) == (0, 0)
    pooled = immune.pooled_reversal_table(
        immune._reversal_rows(sub.assign(stratum="overall"), ["stratum"])
    )
    assert pooled.to_dict("records") == [
        {
            "Stratum": "All strata",
            "Patients in the blood-sampling subset (n)": 5,
            "Reversed by day 28": pooled["Reversed by day 28"].iloc[0],
            f"Of them {NE}": 1,
        }
    ]
    assert pooled["Reversed by day 28"].iloc[0].startswith("2/5 ")


# --- the demo -----------------------------------------------------------------------------------


def independent_reversal(ctx: Context) -> pd.DataFrame:
    """clinical.md §1.6 recomputed here from the stored samples (not through core.phenotype):
    baseline = first sample; subset = a later sample on any day; by day 28 (rolling study
    days from the first dose) MALS reverses on a ferritin ≤ 85 % of baseline, SIP on HLA-DR
    > 8000 with ferritin < 4420."""
    df = cd.frame(ctx, cd.CohortFilters.make())
    bio = load_biomarkers(engine())
    bio = bio[bio["patient_id"].isin(df["patient_id"])].sort_values(["patient_id", "time"])
    anchor = bio["patient_id"].map(df.set_index("patient_id")["anchor_time"])
    bio["day"] = (bio["time"] - anchor) // pd.Timedelta(hours=24) + 1
    first = bio.groupby("patient_id").head(1).set_index("patient_id")
    later = bio[~bio.index.isin(bio.groupby("patient_id").head(1).index)]
    pheno = df.set_index("patient_id")["phenotype"]
    base_f = later["patient_id"].map(first["ferritin_ng_ml"])
    ph = later["patient_id"].map(pheno)
    hit = (later["day"] <= 28) & (
        ((ph == "MALS") & (later["ferritin_ng_ml"] <= 0.85 * base_f))
        | ((ph == "SIP") & (later["hla_dr_ab_per_cell"] > 8000) & (later["ferritin_ng_ml"] < 4420))
    )
    out = df[["patient_id", "group", "phenotype"]].set_index("patient_id")
    out["subset"] = out.index.isin(later["patient_id"])
    out["reversed"] = out.index.isin(later.loc[hit, "patient_id"])
    out["two_by_28"] = out.index.isin(later.loc[later["day"] <= 28, "patient_id"])
    return out


def test_imm003_full_demo_counts_the_sampling_subset(request_ctx):
    ctx = Context.current(FULL)
    g = groups_for(ctx.visibility)
    res = immune.compute(ctx, cd.CohortFilters.make())
    ind = independent_reversal(ctx)
    sub = ind[ind["subset"]]
    props = res["reversal_props"]
    overall = props[props["stratum"] == "overall"].set_index("group")
    for lab in g.labels:
        mine = sub[sub["group"] == lab]
        assert int(overall.loc[lab, "n"]) == len(mine)
        assert int(overall.loc[lab, "events"]) == int(mine["reversed"].sum())
        assert int(overall.loc[lab, "not_evaluable"]) == int((~mine["two_by_28"]).sum())
    # the published row (clinical.md §1.8.3) on the designed demo, treated group first
    assert [(int(overall.loc[lab, "events"]), int(overall.loc[lab, "n"])) for lab in g.labels] == [
        (46, 59),
        (32, 66),
    ]
    assert res["n_subset"] == len(sub) == 125
    assert res["n_not_evaluable"] == int((~sub["two_by_28"]).sum())
    # what the tab shows: the denominator in the title, the count next to each group
    view = immune.render(res, ctx)
    section = view.sections[0]
    assert section.figure.layout.title.text == (
        f"Reversal by day 28 (blood-sampling subset, n = 125; {res['n_not_evaluable']} with < 2 "
        "samples, counted not reversed)"
    )
    csv = section.csv_frame()
    assert list(csv.columns[1:5]) == [
        f"{g.labels[0]}: reversed [95 % CI]",
        f"{g.labels[1]}: reversed [95 % CI]",
        f"{g.labels[0]}: {NE}",
        f"{g.labels[1]}: {NE}",
    ]
    first = csv.iloc[0]
    assert first.iloc[1].startswith("46/59 (78.0 %)")
    assert first.iloc[2].startswith("32/66 (48.5 %)")


def test_imm004_blinded_pooled_counts_the_same_subset(request_ctx):
    ctx = Context.current(NONE)
    res = immune.compute(ctx, cd.CohortFilters.make())
    overall = res["reversal_props"].set_index("stratum").loc["overall"]
    assert (int(overall["events"]), int(overall["n"])) == (46 + 32, 59 + 66)
    table = immune.render(res, ctx).sections[0].csv_frame()
    assert table.iloc[0]["Patients in the blood-sampling subset (n)"] == 125
    assert table.iloc[0]["Reversed by day 28"].startswith("78/125 ")


def test_imm005_report_prints_the_tab_counts(request_ctx):
    text = cohort.report_html(FULL, cd.CohortFilters.make(), now=datetime(2025, 1, 2))
    assert "46/59 (78.0 %)" in text
    assert "32/66 (48.5 %)" in text
    # the column beside the proportions, per group (the figure title is inside the PNG)
    assert text.count(f"Precision immunotherapy: {NE.replace('<', '&lt;')}") == 1
    assert text.count(f"Placebo: {NE.replace('<', '&lt;')}") == 1
