"""Issue 18, cohort items: drill-down panel contents, trajectories under both death
conventions, faceted filter counts, small-n notes and the banner's count of what a role sees.

Pure parts on constructed data; data-layer parts on the session demo database through the
app of tests/test_cohort_page.py (its fixtures are reused).
"""

from __future__ import annotations

import json
import math

import pandas as pd
import plotly
import pytest

from components import shell
from components.cohort import trajectories as tr
from components.data import cohort as cd
from components.data.keys import Context
from components.pages import cohort
from components.server.auth import Principal, Role
from tests import test_cohort_page as tcp

demo_db_url = tcp.demo_db_url
app = tcp.app
request_ctx = tcp.request_ctx
FULL, CODED, NONE = tcp.FULL, tcp.CODED, tcp.NONE


def walk(node):
    """Every component dict of a Dash JSON tree."""
    if isinstance(node, dict):
        if "props" in node:
            yield node
            yield from walk(node["props"].get("children"))
    elif isinstance(node, list | tuple):
        for c in node:
            yield from walk(c)


def tree(component) -> dict:
    return json.loads(json.dumps(component, cls=plotly.utils.PlotlyJSONEncoder))


def text(node) -> str:
    if isinstance(node, str | int | float):
        return str(node)
    if isinstance(node, dict):
        return text(node.get("props", {}).get("children"))
    if isinstance(node, list):
        return "".join(text(c) for c in node)
    return ""


# ------------------------------------------------------------------- trajectories (pure) ----


def constructed() -> tuple[pd.DataFrame, pd.DataFrame]:
    """A: SOFA 6 on days 1-8, no value on day 9 (alive); B: 10, 12, dies on day 3;
    C: SOFA 2 every day; D: alive, never scored."""
    rows = [("A", d, 6.0) for d in range(1, 9)]
    rows += [("B", 1, 10.0), ("B", 2, 12.0)]
    rows += [("C", d, 2.0) for d in range(1, 16)]
    daily = pd.DataFrame(rows, columns=["patient_id", "study_day", "sofa_total"])
    patients = pd.DataFrame(
        {"patient_id": ["A", "B", "C", "D"], "death_study_day": [math.nan, 3.0, math.nan, math.nan]}
    )
    return daily, patients


def day(table: pd.DataFrame, d: int) -> pd.Series:
    return table[table["study_day"] == d].iloc[0]


def test_drill_traj001_endpoint_convention_scores_death_24_and_carries_forward():
    daily, patients = constructed()
    out = tr.endpoint_daily(daily, patients, death_score=24).set_index(["patient_id", "study_day"])
    assert out.loc[("B", 2), "sofa_total"] == 12.0  # the day before death: measured value
    assert out.loc[("B", 3), "sofa_total"] == 24.0  # the day of death, inclusive
    assert out.loc[("B", 15), "sofa_total"] == 24.0
    assert out.loc[("A", 9), "sofa_total"] == 6.0  # LOCF from day 8
    assert out.loc[("C", 9), "sofa_total"] == 2.0
    assert out["sofa_total"].loc["D"].isna().all()  # never scored: missing, not normal
    assert len(out) == 4 * 15


def test_drill_traj002_the_option_changes_the_day9_mean_as_the_sap_says():
    daily, patients = constructed()
    grp = patients[["patient_id"]].assign(group="Pooled")
    observed = tr.trajectory_table(daily, grp, patients, tr.OBSERVED)
    endpoint = tr.trajectory_table(daily, grp, patients, tr.ENDPOINT, death_score=24)
    # observed day 9: only C has a value
    assert day(observed, 9)["n_patients"] == 1
    assert day(observed, 9)["mean_sofa"] == pytest.approx(2.0)
    # SAP: A carried forward (6), B dead (24), C 2; D never scored stays out
    assert day(endpoint, 9)["n_patients"] == 3
    assert day(endpoint, 9)["mean_sofa"] == pytest.approx((6 + 24 + 2) / 3)
    # day 1 identical under both conventions: nobody has died yet
    assert day(observed, 1)["mean_sofa"] == day(endpoint, 1)["mean_sofa"] == pytest.approx(6.0)
    assert set(observed["convention"]) == {tr.OBSERVED}
    assert set(endpoint["convention"]) == {tr.ENDPOINT}
    with pytest.raises(ValueError, match="unknown death convention 'x'"):
        tr.trajectory_table(daily, grp, patients, "x")


def test_drill_traj003_chart_switches_convention_and_the_note_gives_n_per_day():
    daily, patients = constructed()
    grp = patients[["patient_id"]].assign(group="Pooled")
    traj = pd.concat(
        [tr.trajectory_table(daily, grp, patients, c) for c in tr.CONVENTIONS], ignore_index=True
    )
    fig = tr.convention_figure(traj, title="t")
    (menu,) = fig.layout.updatemenus
    labels = [b.label for b in menu.buttons]
    assert labels == ["Observed (survivors)", "Death scored 24 (SAP)"]
    n = len(fig.data)
    assert n == 4  # CI band + line per convention
    assert menu.buttons[0].args[0]["visible"] == [True, True, False, False]
    assert menu.buttons[1].args[0]["visible"] == [False, False, True, True]
    assert [t.visible for t in fig.data] == [None, None, False, False]
    note = tr.n_per_day_note(traj)
    # observed n per day: 3 (A, B, C) on day 1, 2 on day 3 (B dead), 1 from day 9
    assert "Observed (survivors): Pooled 3, 3, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1" in note
    assert "Death scored 24 (SAP): Pooled 3 every day." in note


def test_drill_traj004_panel_on_the_demo_counts_every_patient_under_the_sap(request_ctx):
    f = cd.CohortFilters.make()
    res = tr.compute(Context.current(FULL), f)
    t = res["trajectories"]
    frame = cd.frame(Context.current(FULL), f)
    for lab, n_group in frame["group"].value_counts().items():
        sub = t[(t["arm"] == lab) & (t["study_day"] == 9)]
        obs = sub[sub["convention"] == tr.OBSERVED].iloc[0]
        ep = sub[sub["convention"] == tr.ENDPOINT].iloc[0]
        assert obs["n_patients"] < n_group  # deaths drop out of the observed mean
        assert ep["n_patients"] == n_group  # every patient counts under the SAP
        assert ep["mean_sofa"] > obs["mean_sofa"]  # deaths weigh 24
    view = tr.PANEL.render(res, Context.current(FULL))
    assert "survivors" in view.sections[0].note
    assert "Patients per day" in view.sections[0].note


# ----------------------------------------------------------------------- drill-down view ----


def drill_frame(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "patient_id": [f"SYN-01-{i:04d}" for i in range(n)],
            "site_id": ["SYN-S01"] * n,
            "phenotype": ["not_eligible"] * n,
            "baseline_sofa": [9.0] * n,
            "sofa_decrease_d9": [1.5] * n,
            "responder_d9": [True] * n,
            "death_study_day": [math.nan] * n,
        }
    )


def test_drill_view001_readable_headers_singular_and_patient_links():
    t = tree(cohort.drilldown_view("Responders (day 9), overall", drill_frame(1)))
    (h2,) = [c for c in walk(t) if c["type"] == "H2"]
    assert h2["props"]["children"] == "Responders (day 9), overall: 1 patient"
    headers = [text(c) for c in walk(t) if c["type"] == "Th"]
    assert headers == [
        "Patient",
        "Site",
        "Immune state",
        "Baseline SOFA (points)",
        "Day-9 SOFA decrease (points)",
        "Day-9 responder",
        "Death (study day)",
    ]
    (link,) = [c for c in walk(t) if c["type"] == "A"]
    assert link["props"]["href"] == "/patient/SYN-01-0000"
    cells = [text(c) for c in walk(t) if c["type"] == "Td"]
    assert cells[1:] == ["SYN-S01", "Not eligible", "9", "1.50", "yes", "–"]


def test_drill_view002_plural_and_empty():
    t = tree(cohort.drilldown_view("X", drill_frame(2)))
    assert [c["props"]["children"] for c in walk(t) if c["type"] == "H2"] == ["X: 2 patients"]
    t0 = tree(cohort.drilldown_view("X", drill_frame(0)))
    assert [c["props"]["children"] for c in walk(t0) if c["type"] == "H2"] == ["X: 0 patients"]
    assert "No patients." in text(t0)


def test_drill_view003_drill_panel_is_a_fixed_side_panel_hidden_until_a_click():
    p = tree(cohort.drill_panel())
    assert p["type"] == "Aside"
    style = p["props"]["style"]
    assert style["display"] == "none"
    # from the navbar's bottom edge on screen (assets/30_navbar_offset.js), never over it
    assert (style["position"], style["right"], style["top"]) == (
        "fixed",
        0,
        "var(--navbar-bottom, 0px)",
    )
    shown = cohort.DRILL_PANEL_STYLE
    assert "display" not in shown
    assert shown["position"] == "fixed"
    assert [c["props"]["id"] for c in walk(p) if c["type"] == "Button"] == [cohort.DRILL_CLOSE]


# ---------------------------------------------------------- filter counts and small n ----


@pytest.mark.parametrize(
    "query",
    [{"phenotype": "MALS"}, {"phenotype": "MALS", "age": "ge80"}, {"site": "SYN-S01"}, {}],
)
@pytest.mark.parametrize("principal", [FULL, NONE], ids=["full", "none"])
def test_drill_filter001_counts_equal_patients_matching_the_other_filters(
    request_ctx, principal, query
):
    context = Context.current(principal)
    f = cd.CohortFilters.make(**query)
    counted = cd.filter_counts(context, f)
    assert set(counted) == {"site", "country", "phenotype", "infection"}
    checked = 0
    for name, values in counted.items():
        for value, n in values:
            narrowed = cd.CohortFilters.make(**{**f.query(), name: value})
            assert n == len(cd.frame(context, narrowed)), (name, value, query)
            checked += 1
    assert checked > 10
    # a filter's own counts ignore it (pick another site), the others narrow (MALS was 48)
    unfiltered = cd.filter_counts(context, cd.CohortFilters())
    for name in ("site", "phenotype"):
        total = sum(n for _v, n in counted[name])
        others = {k for k in query if k != name}
        if others:
            assert total < sum(n for _v, n in unfiltered[name]), (name, query)
        else:
            assert counted[name] == unfiltered[name], (name, query)


def test_drill_filter002_dropdown_labels_carry_the_faceted_counts(request_ctx):
    context = Context.current(FULL)
    f = cd.CohortFilters.make(site="SYN-S01")
    opts = cohort.filter_options(context, f)
    mals = next(o for o in opts["phenotype"] if o["value"] == "MALS")
    n = len(cd.frame(context, cd.CohortFilters.make(site="SYN-S01", phenotype="MALS")))
    assert mals["label"] == f"MALS ({n})"
    assert n < 48


def test_drill_small001_threshold_boundary():
    assert cd.SMALL_N_PER_GROUP == 10
    assert cd.is_small({"a": 9, "b": 50})
    assert not cd.is_small({"a": 10, "b": 10})
    assert cd.is_small({"a": 0, "b": 10})


def test_drill_small002_note_on_a_small_filtered_comparison(request_ctx):
    f = cd.CohortFilters.make(site="SYN-S01")
    context = Context.current(FULL)
    frame = cd.frame(context, f)
    small = cd.small_comparisons(context, f)
    overall = dict(small)["all patients"]
    assert overall == frame["group"].value_counts().to_dict()
    assert cd.is_small(overall)
    note = text(tree(cohort.small_n_note(context, f)))
    assert "fewer than 10 patients per group" in note
    # the unfiltered comparison has groups of 131 and 145: no note for it
    assert "all patients" not in dict(cd.small_comparisons(context, cd.CohortFilters()))


def test_drill_small003_blinded_note_names_immune_states_never_groups(request_ctx):
    f = cd.CohortFilters.make(site="SYN-S01")
    small = cd.small_comparisons(Context.current(NONE), f)
    for _what, sizes in small:
        assert set(sizes) <= {"MALS", "SIP"}
    note = json.dumps(tree(cohort.small_n_note(Context.current(NONE), f)))
    for word in (*tcp.ARM_WORDS, "Group A", "Group B"):
        assert word.lower() not in note.lower()


# ----------------------------------------------------------------------------- banner ----


def test_drill_banner001_counts_the_patients_of_the_roles_sites(request_ctx):
    total = tcp.dataset_info().n_patients
    clinician = Principal("clin", Role.CLINICIAN, sites=("SYN-S01", "SYN-S02"))
    seen = cd.visible_patients(Context.current(clinician))
    assert 0 < len(seen) < total
    assert shell.patients_visible(clinician, total) == len(seen)
    assert shell.patients_visible(FULL, total) == total
    banner = text(
        tree(shell.build_shell(principal=clinician, synthetic=True, n_patients=total, version="v1"))
    )
    assert f"{len(seen)} patients at your sites" in banner
    assert f"{total} patients" not in banner
