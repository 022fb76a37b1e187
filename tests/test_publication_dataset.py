"""The publication check against this dataset (components/cohort/publication.py).

:func:`compare_with_published` is pure and tested on constructed rows; :func:`dataset_rows`
is checked against counts taken independently from the analysis frame; the badge and the
report line follow the filters and name the differing rows; blinded roles and the DSMB's coded
view never get either (docs/clinical.md §1.7 / §1.8.3, docs/blinding.md 6.5).
"""

from __future__ import annotations

import json
from datetime import datetime

import plotly
import pytest

from components.blinding import groups_for
from components.cohort import immune
from components.cohort.publication import (
    PUBLISHED,
    DatasetRow,
    compare_with_published,
    dataset_check,
    dataset_rows,
    differing,
)
from components.data import cohort as cd
from components.data.keys import Context
from components.format import comparison_texts
from components.pages import cohort
from components.server.auth import ArmVisibility
from core.stats import compare_proportions
from tests import test_cohort_page as cohort_tests
from tests.test_cohort_page import CODED, FULL, NONE

#: the cohort-page fixtures: the demo app on the shared session demo database, a request context
demo_db_url = cohort_tests.demo_db_url
app = cohort_tests.app
request_ctx = cohort_tests.request_ctx

ALL_ROWS = [p["outcome"] for p in PUBLISHED]
PUB = {p["outcome"]: p for p in PUBLISHED}


def dump(component) -> str:
    return json.dumps(component, cls=plotly.utils.PlotlyJSONEncoder)


def row_from_counts(counts: tuple[int, int, int, int]) -> DatasetRow:
    """What a tab shows for these counts: the comparison through core.stats and the formatter."""
    return DatasetRow(counts, comparison_texts(compare_proportions(*counts)))


def published_rows() -> dict[str, DatasetRow]:
    return {p["outcome"]: row_from_counts(p["counts"]) for p in PUBLISHED}


# --- the pure comparison ----------------------------------------------------------------------


def test_pub001_published_counts_match_every_row():
    check = compare_with_published(published_rows())
    assert list(check["outcome"]) == ALL_ROWS
    assert differing(check) == []
    assert list(check["why"]) == ["", "", "", ""]
    primary = check.iloc[0]
    assert (
        primary["published"]
        == "46/131 vs 26/145; RD 17.2 (6.8 to 27.2), OR 2.48 (1.42–4.32), P .002"
    )
    assert primary["dataset"] == primary["published"]
    # the 28-day P prints .33 from the counts, .34 in the paper: listed as not compared
    mortality = check.set_index("outcome").loc["28-day mortality"]
    assert mortality["dataset"].endswith("P .33")
    assert mortality["published"].endswith("P .34")
    assert mortality["match"]
    assert "rounding twice" in mortality["not_compared"]


def test_pub002_other_counts_differ_and_say_why():
    rows = published_rows()
    rows["Primary (day 9)"] = row_from_counts((45, 131, 26, 145))
    check = compare_with_published(rows).set_index("outcome")
    assert differing(check.reset_index()) == ["Primary (day 9)"]
    t = comparison_texts(compare_proportions(45, 131, 26, 145))
    assert check.loc["Primary (day 9)", "why"] == (
        "counts 45/131 vs 26/145 ≠ published 46/131 vs 26/145; "
        f"RD {t['rd']} ≠ printed 17.2 (6.8 to 27.2); OR {t['or']} ≠ printed 2.48 (1.42–4.32)"
    )  # P prints .002 from these counts too: a field is listed only when it differs
    assert t["p"] == ".002"
    assert check.loc["Primary (day 9)", "dataset"].startswith("45/131 vs 26/145; RD ")


def test_pub003_same_counts_other_text_differs_naming_the_field():
    rows = published_rows()
    good = rows["Immune reversal (SIDF)"]
    rows["Immune reversal (SIDF)"] = DatasetRow(good.counts, {**good.texts, "p": ".002"})
    check = compare_with_published(rows).set_index("outcome")
    assert not check.loc["Immune reversal (SIDF)", "match"]
    assert check.loc["Immune reversal (SIDF)", "why"] == "P .002 ≠ printed .001"
    # a field the paper printed inconsistently does not count (day-15 RD: rounded percentages)
    d15 = rows["Day-15 SOFA response"]
    rows["Day-15 SOFA response"] = DatasetRow(d15.counts, {**d15.texts, "rd": "99.9 (0 to 1)"})
    assert compare_with_published(rows).set_index("outcome").loc["Day-15 SOFA response", "match"]


def test_pub004_no_comparison_and_missing_rows():
    rows: dict[str, DatasetRow | None] = dict(published_rows())
    rows["28-day mortality"] = None
    rows["Day-15 SOFA response"] = DatasetRow((3, 3, 0, 0), None)
    check = compare_with_published(rows).set_index("outcome")
    assert check.loc["28-day mortality", "dataset"] == "–"
    assert "no comparison on the Survival tab" in check.loc["28-day mortality", "why"]
    assert check.loc["Day-15 SOFA response", "why"] == (
        "counts 3/3 vs 0/0 ≠ published 52/131 vs 34/145; no comparison (a group is empty)"
    )
    del rows["Immune reversal (SIDF)"]
    with pytest.raises(KeyError, match="Immune reversal \\(SIDF\\)"):
        compare_with_published(rows)


# --- this dataset -----------------------------------------------------------------------------


def frame_counts(ctx: Context, f: cd.CohortFilters, col: str) -> tuple[int, int, int, int]:
    """Counts straight from the analysis frame (not through the tabs' arm_summary)."""
    g = groups_for(ctx.visibility)
    df = cd.frame(ctx, f)
    t, c = df[df["group"] == g.treated], df[df["group"] == g.control]
    return int(t[col].sum()), len(t), int(c[col].sum()), len(c)


def reversal_counts(ctx: Context, f: cd.CohortFilters) -> tuple[int, int, int, int]:
    """Immune reversal counts from the Immune tab's proportion table (not its arm_summary)."""
    g = groups_for(ctx.visibility)
    props = immune.compute(ctx, f)["reversal_props"]
    overall = props[props["stratum"] == "overall"].set_index("group")
    return tuple(  # type: ignore[return-value]
        int(overall.loc[lab, k]) for lab in (g.treated, g.control) for k in ("events", "n")
    )


def expected_counts(ctx: Context, f: cd.CohortFilters) -> dict[str, tuple[int, int, int, int]]:
    return {
        "Primary (day 9)": frame_counts(ctx, f, "responder_d9"),
        "Day-15 SOFA response": frame_counts(ctx, f, "responder_d15"),
        "28-day mortality": frame_counts(ctx, f, "died_28"),
        "Immune reversal (SIDF)": reversal_counts(ctx, f),
    }


def test_pub005_full_demo_values_are_the_tabs_values(request_ctx):
    ctx, f = Context.current(FULL), cd.CohortFilters.make()
    rows = dataset_rows(ctx, f)
    assert {k: v.counts for k, v in rows.items()} == expected_counts(ctx, f)
    check = dataset_check(ctx, f).set_index("outcome")
    # the designed outcomes of the synthetic trial (core/synth/__init__.py) reproduce exactly,
    # counts and every printed text: day 9, day 15 (a designed outcome too), 28-day mortality
    # and immune reversal counted in the blood-sampling subset (clinical.md §1.6)
    for name in ALL_ROWS:
        assert rows[name].counts == PUB[name]["counts"], name
        assert check.loc[name, "match"], check.loc[name, "why"]
    assert rows["Primary (day 9)"].texts == {
        "rd": "17.2 (6.8 to 27.2)",
        "or": "2.48 (1.42–4.32)",
        "p": ".002",
    }
    # day 15: 52/131 − 34/145 = 16.2; the paper prints 16.3 (rounded percentages, not compared)
    assert rows["Day-15 SOFA response"].texts == {
        "rd": "16.2 (5.3 to 26.8)",
        "or": "2.15 (1.28–3.61)",
        "p": ".004",
    }
    assert rows["Immune reversal (SIDF)"].texts == {
        "rd": "29.5 (12.6 to 44.0)",
        "or": "3.76 (1.72–8.22)",
        "p": ".001",
    }


def test_pub006_full_demo_reproduces_every_published_row(request_ctx):
    check = dataset_check(Context.current(FULL), cd.CohortFilters.make())
    assert differing(check) == []


def test_pub007_full_demo_differing_rows_are_named_with_counts(request_ctx):
    ctx, f = Context.current(FULL), cd.CohortFilters.make()
    check = dataset_check(ctx, f).set_index("outcome")
    expected = expected_counts(ctx, f)
    for name in differing(check.reset_index()):
        got = "{}/{} vs {}/{}".format(*expected[name])
        assert check.loc[name, "dataset"].startswith(got + "; RD ")
        if expected[name] != PUB[name]["counts"]:
            assert check.loc[name, "why"].startswith(f"counts {got} ≠ published ")


def one_site(ctx: Context) -> str:
    """The largest site: a real filter that leaves both groups populated."""
    return max(cd.filter_counts(ctx)["site"], key=lambda vn: vn[1])[0]


def test_pub008_one_site_lists_every_differing_row(request_ctx):
    ctx = Context.current(FULL)
    f = cd.CohortFilters.make(site=one_site(ctx))
    expected = expected_counts(ctx, f)
    assert sum(expected["Primary (day 9)"][1::2]) < 131 + 145
    check = dataset_check(ctx, f)
    assert {r["outcome"]: r for r in check.to_dict("records")}.keys() == set(ALL_ROWS)
    differ = differing(check)
    # a row differs exactly when its counts differ (a site never has the published counts)
    assert differ == [n for n in ALL_ROWS if expected[n] != PUB[n]["counts"]]
    assert differ == ALL_ROWS
    for r in check.to_dict("records"):
        assert r["dataset"].startswith("{}/{} vs {}/{}".format(*expected[r["outcome"]]))
        assert r["why"].startswith("counts ")
    # the badge names them; the statistics-code line stays green (it uses the printed counts)
    shown = dump(cohort.publication_badge(ArmVisibility.FULL, ctx, f))
    assert f"differs from the published table in 4 of 4 rows: {', '.join(ALL_ROWS)}" in shown
    assert "statistics code reproduces the publication" in shown
    assert "this dataset reproduces" not in shown
    # the tooltip: per row this dataset's and the published counts and what differs
    mortality = "{}/{} vs {}/{}".format(*expected["28-day mortality"])
    assert (
        f"28-day mortality: this dataset {mortality}, published 57/131 vs 72/145: differs: counts"
        in shown
    )


def test_pub009_badge_on_the_full_demo_matches_the_check(request_ctx):
    ctx, f = Context.current(FULL), cd.CohortFilters.make()
    differ = differing(dataset_check(ctx, f))
    shown = dump(cohort.publication_badge(ArmVisibility.FULL, ctx, f))
    if differ:
        assert f"in {len(differ)} of 4 rows: {', '.join(differ)}" in shown
    else:
        assert "this dataset reproduces the published table" in shown
    # without a context: all sites, no filter (the same result)
    assert dump(cohort.publication_badge(ArmVisibility.FULL)) == shown


def test_pub010_report_line_follows_the_filters(request_ctx):
    ctx = Context.current(FULL)
    site = one_site(ctx)
    f = cd.CohortFilters.make(site=site)
    text = cohort.report_html(FULL, f, now=datetime(2025, 1, 2))
    assert "Publication check: <b>reproduces</b> the published statistics from the printed" in text
    assert (
        "Publication check, this dataset (filters above): <b>differs from the published table"
        f"</b> in 4 of 4 rows: {', '.join(ALL_ROWS)}." in text
    )
    mortality = "{}/{} vs {}/{}".format(*expected_counts(ctx, f)["28-day mortality"])
    assert f"<td>{mortality}; RD " in text
    full = cohort.report_html(FULL, cd.CohortFilters.make(), now=datetime(2025, 1, 2))
    differ = differing(dataset_check(ctx, cd.CohortFilters.make()))
    assert (
        f"in {len(differ)} of 4 rows: {', '.join(differ)}." in full
        if differ
        else "<b>reproduces the published table</b> (every row matches)" in full
    )


@pytest.mark.parametrize("principal", [NONE, CODED], ids=["blinded", "dsmb-coded"])
def test_pub011_blinded_and_coded_views_never_get_the_check(request_ctx, principal):
    ctx = Context.current(principal)
    f = cd.CohortFilters.make(site=one_site(Context.current(FULL)))
    assert cohort.publication_badge(principal.arm_visibility, ctx, f) is None
    assert cohort.publication_badge(principal.arm_visibility) is None
    text = cohort.report_html(principal, f, now=datetime(2025, 1, 2))
    for marker in ("Publication check", "published table", "46/131", "26/145", "This dataset"):
        assert marker not in text
