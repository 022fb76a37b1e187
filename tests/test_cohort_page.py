"""Cohort panels on the synthetic cohort: numbers equal core's, blinding holds in every payload.

The app is built with ``app.create_app(settings)`` against the session demo database
(tests/app/conftest.py ``demo_db_url``); the cached functions run inside a request context.
"""

from __future__ import annotations

import importlib
import json
import re
from datetime import datetime

import pandas as pd
import plotly
import pytest

from components.blinding import load_groups
from components.cohort import BY_KEY, PANELS
from components.cohort.publication import publication_check
from components.data import cohort as cd
from components.data.keys import Context
from components.pages import cohort
from components.server.auth import ArmVisibility, Principal, Role
from components.server.context import dataset_info, engine
from settings import Settings
from tests.app import conftest as app_conftest

FULL = Principal("stat", Role.STATISTICIAN)
CODED = Principal("dsmb", Role.DSMB)
NONE = Principal("monitor", Role.MONITOR)
#: the shared session demo-database fixture of tests/app/conftest.py
demo_db_url = app_conftest.demo_db_url
ARM_WORDS = ("precision", "placebo", "anakinra", "interferon")


@pytest.fixture(scope="module")
def app(demo_db_url: str, tmp_path_factory: pytest.TempPathFactory):
    cache_dir = tmp_path_factory.mktemp("cohort-cache")
    with pytest.MonkeyPatch.context() as mp:
        # app.py builds a module-level app from the environment on import: point it at the
        # demo database too, so importing it never touches the project's data folder
        for k, v in {
            "DATABASE_URL": demo_db_url,
            "CACHE_DIR": str(cache_dir),
            "IMMUNOSEP_MODE": "demo",
            "SECRET_KEY": "test-secret-key",
        }.items():
            mp.setenv(k, v)
        mp.delenv("REDIS_URL", raising=False)
        app_module = importlib.import_module("app")
    settings = Settings(
        database_url=demo_db_url,
        cache_dir=str(cache_dir / "own"),
        secret_key="test-secret-key",
        mode="demo",
    )
    return app_module.create_app(settings)


@pytest.fixture
def request_ctx(app):
    with app.server.test_request_context():
        yield


def ctx(principal: Principal | None = None) -> Context:
    return Context.current(principal)


def compute(key: str, principal: Principal, f: cd.CohortFilters):
    return BY_KEY[key].compute(ctx(principal), f)


def view(key: str, principal: Principal, f: cd.CohortFilters):
    return BY_KEY[key].view(ctx(principal), f)


def render(key: str, principal: Principal, f: cd.CohortFilters):
    return cohort.cached_panel(key, ctx(principal), f)


TAB_KEYS = [p.key for p in PANELS]


def dump(component) -> str:
    tree = component if isinstance(component, dict) else component.to_plotly_json()
    return json.dumps(tree, cls=plotly.utils.PlotlyJSONEncoder)


def core_primary(last_day: int = 9) -> pd.DataFrame:
    """The primary analysis computed straight from core (no data-layer or panel code)."""
    from core.endpoints import sofa_response
    from core.repository import load_arms
    from core.stats import arm_summary

    p = cd.cohort_patients(ctx())
    resp = sofa_response(
        cd.cohort_daily(ctx()), p[["patient_id", "death_study_day"]], last_day=last_day
    )
    df = resp.merge(load_arms(engine()), on="patient_id").merge(
        p[["patient_id", "phenotype"]], on="patient_id"
    )
    return arm_summary(df, outcome_col="responder", stratum_col="phenotype")


def test_cohp001_primary_panel_equals_core(request_ctx):
    res = compute("primary", FULL, cd.CohortFilters.make())
    expected = core_primary()
    got = res["summary_d9"]
    pd.testing.assert_frame_equal(
        got.drop(columns="stratum").reset_index(drop=True),
        expected.drop(columns="stratum").reset_index(drop=True),
    )
    assert list(got["stratum"]) == ["overall", "MALS", "SIP"]
    overall = got.iloc[0]
    # the synthetic cohort reproduces the published split (clinical.md 1.8.3)
    assert (overall["events_treated"], overall["n_treated"]) == (46, 131)
    assert (overall["events_control"], overall["n_control"]) == (26, 145)
    d15 = compute("primary", FULL, cd.CohortFilters.make())["summary_d15"]
    pd.testing.assert_frame_equal(
        d15.drop(columns="stratum").reset_index(drop=True),
        core_primary(15).drop(columns="stratum").reset_index(drop=True),
    )


def test_cohp002_rendered_primary_table_shows_core_numbers(request_ctx):
    blob = dump(render("primary", FULL, cd.CohortFilters.make()))
    assert "46/131 (35.1 %)" in blob
    assert "26/145 (17.9 %)" in blob
    assert "17.2 (6.8 to 27.2)" in blob
    assert "2.48 (1.42\\u20134.32)" in blob or "2.48 (1.42–4.32)" in blob
    assert "12/25 (48.0 %)" in blob  # MALS stratum


def test_cohp003_filters_change_every_number_and_counts(request_ctx):
    f = cd.CohortFilters.make(phenotype="MALS")
    assert cd.counts(ctx(FULL), f) == (276, 48)
    s = compute("primary", FULL, f)["summary_d9"]
    assert (s.iloc[0]["events_treated"], s.iloc[0]["n_treated"]) == (12, 25)
    assert (s.iloc[0]["events_control"], s.iloc[0]["n_control"]) == (4, 23)
    km = compute("survival", FULL, f)[28]["km"]
    assert sum(int(r.at_risk["n_at_risk"].iloc[0]) for r in km.values()) == 48
    assert cohort.url_search("survival", f) == "?tab=survival&phenotype=MALS"
    assert cohort.filters_from_query({"phenotype": "MALS", "age": "bogus,65-79"}).age == ("65-79",)


def test_cohp004_km_panel_equals_core_kaplan_meier(request_ctx):
    from core.endpoints import time_to_death
    from core.repository import load_arms
    from core.stats import cox_hr, kaplan_meier

    p = cd.cohort_patients(ctx())
    t = time_to_death(p[["patient_id", "death_study_day"]], horizon_days=28).merge(
        load_arms(engine()), on="patient_id"
    )
    km = kaplan_meier(
        t["duration_days"], t["event"], t["arm"], horizon=28, at_risk_times=(0, 7, 14, 21, 28)
    )
    cox = cox_hr(t["duration_days"], t["event"], t["arm"], horizon=28)
    fig = view("survival", FULL, cd.CohortFilters.make()).figures()["km28"]
    at_risk = {tr.name: [int(x) for x in tr.text] for tr in fig.data if tr.mode == "text"}
    assert at_risk == {
        "Precision immunotherapy at risk": km["precision"].at_risk["n_at_risk"].tolist(),
        "Placebo at risk": km["placebo"].at_risk["n_at_risk"].tolist(),
    }
    res = compute("survival", FULL, cd.CohortFilters.make())[28]
    assert res["cox"].hazard_ratio == pytest.approx(cox.hazard_ratio)
    assert res["mortality"].events_treated + res["mortality"].events_control == int(
        t["event"].sum()
    )


def test_cohp005_table_one_equals_core_and_has_no_p_values(request_ctx):
    t1 = compute("baseline", FULL, cd.CohortFilters.make())["by_group"]
    age = t1[t1["variable"] == "age_years"].set_index("group")
    df = cd.analysis_frame(ctx(FULL), cd.CohortFilters.make())
    for label in ("Precision immunotherapy", "Placebo"):
        assert age.loc[label, "mean"] == pytest.approx(
            df.loc[df["group"] == label, "age_years"].mean()
        )
    frame = view("baseline", FULL, cd.CohortFilters.make()).tables()["table1_group"]
    assert "SMD" in frame.columns
    assert not [c for c in frame.columns if re.search(r"\bp\b|p-value", c, re.IGNORECASE)]


def test_cohp006_blinded_code_path_never_loads_the_arm(request_ctx, monkeypatch):
    from core import repository

    def refuse(*_a, **_k):
        raise AssertionError("load_arms called on a blinded code path")

    monkeypatch.setattr(repository, "load_arms", refuse)
    f = cd.CohortFilters.make(country="Greece")  # a fresh cache key
    for tab in TAB_KEYS:
        render(tab, NONE, f)
    assert "group" not in cd.analysis_frame(ctx(NONE), f).columns
    with pytest.raises(PermissionError):
        load_groups("v", ArmVisibility.NONE)


@pytest.mark.parametrize("principal", [NONE, CODED, FULL], ids=["blinded", "coded", "full"])
def test_cohp007_layout_and_every_tab_respect_blinding(request_ctx, principal):

    f = cd.CohortFilters.make()
    parts = [dump(cohort.build_layout(principal, {}))]
    parts += [dump(render(tab, principal, f)) for tab in TAB_KEYS]
    csv = [
        t.to_csv() for tab in TAB_KEYS for t in cohort.all_tables(ctx(principal), f, tab).values()
    ]
    blob = "\n".join(parts + csv)
    low = blob.lower()
    vis = principal.arm_visibility
    if vis is ArmVisibility.NONE:
        assert [w for w in ARM_WORDS if w in low] == []
        assert "Group A" not in blob
        assert "Group B" not in blob
        assert "hidden: could reveal allocation" in blob
    elif vis is ArmVisibility.CODED:
        assert [w for w in ("precision", "placebo") if w in low] == []
        assert "Group A" in blob
        assert "Group B" in blob
    else:
        assert "Precision immunotherapy" in blob
        assert "Placebo" in blob
    # the URL and ids carry no group, whatever the role
    assert "Group" not in cohort.url_search("primary", f)
    assert not re.search(r'"id": "[^"]*(Group|recision|lacebo)', blob)


def test_cohp008_coded_view_orders_by_letter_and_differences_are_a_minus_b(request_ctx):
    res = compute("primary", CODED, cd.CohortFilters.make())
    props = res["proportions_d9"]
    assert list(props.loc[props["stratum"] == "overall", "group"]) == ["Group A", "Group B"]
    s = res["summary_d9"].iloc[0]
    a = props[(props["stratum"] == "overall") & (props["group"] == "Group A")].iloc[0]
    assert s["n_treated"] == a["n"]  # "treated" slot = Group A, whatever the arm behind it
    assert {int(s["n_treated"]), int(s["n_control"])} == {131, 145}


def test_cohp009_publication_badge_is_green_on_the_published_counts(request_ctx):
    check = publication_check()
    assert check["match"].all()
    primary = check.iloc[0]
    assert primary["computed_rd"] == "17.2 (6.8 to 27.2)"
    assert primary["computed_or"] == "2.48 (1.42–4.32)"
    assert primary["computed_p"] == ".002"
    shown = dump(cohort.publication_badge(ArmVisibility.FULL))
    assert "reproduces the publication" in shown
    assert "46/131 vs 26/145" in shown  # the tooltip: arm-level counts, unblinded roles only
    # blinded roles and the DSMB's coded view: no badge, no tooltip (docs/blinding.md 6.5)
    assert cohort.publication_badge(ArmVisibility.NONE) is None
    assert cohort.publication_badge(ArmVisibility.CODED) is None


def test_cohp010_drilldown_lists_the_patients_behind_a_number(request_ctx):
    f = cd.CohortFilters.make()
    title, frame = cd.drilldown(
        ctx(FULL), f, "responders", stratum="overall", group="Precision immunotherapy"
    )
    assert len(frame) == 46
    assert frame["responder_d9"].all()
    assert title.startswith("Responders (day 9)")
    _t, blinded = cd.drilldown(ctx(NONE), f, "responders", stratum="overall", group="Placebo")
    assert blinded.empty
    _t, pooled = cd.drilldown(ctx(NONE), f, "responders", stratum="overall")
    assert len(pooled) == 72
    assert "group" not in pooled.columns
    aesi_pt = "Anaemia"
    title, hidden = cd.drilldown(ctx(NONE), f, "ae", pt=aesi_pt)
    assert hidden.empty
    assert "could reveal allocation" in title


def test_cohp011_report_is_stamped_and_self_contained(request_ctx):
    f = cd.CohortFilters.make(phenotype="SIP")
    # interactive: plotly.js inlined once (the static-PNG default: tests/test_report_formats.py)
    text = cohort.report_html(NONE, f, now=datetime(2025, 1, 2, 3, 4, 5), interactive=True)
    assert dataset_info().version in text
    assert "phenotype: SIP" in text
    assert "Blinded: pooled and by immune state only" in text
    assert "Blinded monitor (monitor)" in text
    assert "2025-01-02 03:04:05 UTC" in text
    assert "228 of 276 analysed patients after filtering" in text
    assert not re.search(r"<script[^>]+src=", text)  # nothing fetched at view time
    # everything but the inlined plotly.js bundle is free of arm words
    head, _, rest = text.partition("plotly.js v")
    after_bundle = rest.split("</script>", 1)[1]
    assert [w for w in ARM_WORDS if w in (head + after_bundle).lower()] == []
    # the publication check is left out for blinded roles and the coded view (docs/blinding.md
    # 6.5); the guarded sections say they are computed on every visible patient, not the filter
    assert "Publication check" not in text
    assert "Publication check" not in cohort.report_html(
        CODED, f, now=datetime(2025, 1, 2), interactive=True
    )
    assert "Publication check: <b>reproduces" in cohort.report_html(
        FULL, f, now=datetime(2025, 1, 2), interactive=True
    )
    guarded = re.findall(r"<section class='guarded' data-guard='([a-z_]+)'>", text)
    assert set(guarded) == {"post_baseline_biomarkers", "aesi_by_arm"}
    assert "computed on all 276 patients you may see" in text


def test_cohp012_completeness_query_list_matches_core_endpoint(request_ctx):
    from core.endpoints import sofa_response

    res = compute("completeness", NONE, cd.CohortFilters.make())
    p = cd.cohort_patients(ctx())
    resp = sofa_response(cd.cohort_daily(ctx()), p[["patient_id", "death_study_day"]])
    locf = set(resp.loc[resp["n_locf_days"] > 0, "patient_id"])
    assert locf <= set(res["query"]["patient_id"])
    grid = res["grid"]
    assert grid["share_measured"].between(0, 1).all()
    assert int(grid["n_patient_days"].sum()) == int(
        cd.cohort_daily(ctx())["study_day"].between(1, 15).sum()
    )


def test_cohp013_warm_panel_is_served_from_the_cache(request_ctx, monkeypatch):
    f = cd.CohortFilters.make(age="65-79")
    first = render("primary", FULL, f)

    def fail(*_a, **_k):
        raise AssertionError("a warm panel must not be rendered again")

    monkeypatch.setattr(cohort, "render_view", fail)
    assert render("primary", FULL, f) == first
    with pytest.raises(AssertionError, match="rendered again"):  # another key is computed
        render("primary", FULL, cd.CohortFilters.make(age="ge80"))


def test_cohp014_pages_registry_keeps_the_cohort_page(app):
    import dash

    paths = {p["path"] for p in dash.page_registry.values()}
    assert "/cohort" in paths


@pytest.mark.parametrize("principal", [FULL, CODED, NONE], ids=["full", "coded", "blinded"])
def test_cohp015_a_filter_matching_nobody_renders_every_panel_and_the_report(
    request_ctx, principal
):
    f = cd.CohortFilters.make(site="SYN-S01", country="Netherlands")
    assert cd.counts(ctx(principal), f)[1] == 0
    for panel in PANELS:
        view = panel.view(ctx(principal), f)  # raised KeyError 'arm' on trajectories
        assert view.sections, panel.key
    text = cohort.report_html(principal, f, now=datetime(2025, 1, 2, 3, 4, 5), interactive=True)
    assert "0 of 276 analysed patients after filtering" in text


def components_of(tree) -> list[dict]:
    """Every component (Dash JSON) in a rendered tree."""
    out = []

    def visit(node):
        if isinstance(node, dict):
            if "type" in node and isinstance(node.get("props"), dict):
                out.append(node)
            for v in node.values():
                visit(v)
        elif isinstance(node, list):
            for v in node:
                visit(v)

    visit(tree)
    return out


@pytest.mark.parametrize("principal", [FULL, NONE], ids=["full", "blinded"])
def test_cohp016_charts_below_the_fold_arrive_as_placeholders_with_title_and_text(
    request_ctx, principal
):
    """Issue 19: a tab draws its first chart at once; every other chart is a placeholder that
    keeps the chart's title and its text alternative, with the chart itself in a store of the
    same rendered panel (the browser moves it into the slot when the slot is seen)."""
    f = cd.CohortFilters.make()
    view = BY_KEY["primary"].view(ctx(principal), f)
    figures = view.figures()
    assert len(figures) >= 2, list(figures)  # the tab draws several charts
    assert any(fig.layout.title.text for fig in list(figures.values())[1:])  # titled ones too
    tree = render("primary", principal, f)
    top = tree["props"]["children"]
    comps = components_of(tree)

    def named(kind: str) -> list[str]:
        """The charts' lazy parts of this kind (the grids' are named apart: test_cohp020)."""
        return [
            c["props"]["id"]["name"]
            for c in comps
            if isinstance(c["props"].get("id"), dict)
            and c["props"]["id"].get("type") == kind
            and not c["props"]["id"]["name"].startswith(cohort.LAZY_GRID_PREFIX)
        ]

    first, *rest = list(figures)
    # drawn at once: the first chart only (the others are in stores, not in the page's tree)
    drawn = [
        c["props"]["id"]["name"] for c in components_of(strip_stores(top)) if c["type"] == "Graph"
    ]
    assert drawn == [first]
    assert named(cohort.LAZY_SLOT) == rest
    assert named(cohort.LAZY_SEEN) == rest
    assert named(cohort.LAZY_PART) == rest
    captions = [c for c in comps if c["type"] == "Figcaption"]
    assert len(captions) == len(figures)  # every chart has its text alternative, drawn or not
    slots = {
        c["props"]["id"]["name"]: c
        for c in comps
        if isinstance(c["props"].get("id"), dict)
        and c["props"]["id"].get("type") in (cohort.LAZY_SLOT, cohort.LAZY_PART)
        and c["type"] == "Div"
    }
    stores = {
        c["props"]["id"]["name"]: c["props"]["data"]
        for c in comps
        if c["type"] == "Store" and c["props"]["id"].get("type") == cohort.LAZY_PART
    }
    for name in rest:
        text = json.dumps(slots[name], ensure_ascii=False)
        title = figures[name].layout.title.text or ""
        assert title in text  # the placeholder keeps the chart's title (if it has one)
        assert "Chart drawn when scrolled into view." in text
        assert "Graph" not in text
        height = figures[name].layout.height or 450
        assert slots[name]["props"]["style"]["minHeight"] == f"{height}px"
        chart = stores[name]
        assert chart["type"] == "Graph"
        assert chart["props"]["id"] == {"type": "cohort-graph", "name": name}
        assert chart["props"]["figure"]["data"] == json.loads(
            json.dumps(figures[name].to_plotly_json()["data"], cls=plotly.utils.PlotlyJSONEncoder)
        )
        assert chart["props"]["config"]["modeBarButtons"] == [["toImage", "resetScale2d"]]


@pytest.mark.parametrize("tab", ["primary", "baseline", "safety"])
def test_cohp020_grids_after_the_first_section_arrive_as_placeholders(request_ctx, tab):
    """Issue 19: ag-grid measures every row of a grid whose cells wrap, the largest cost of a
    tab's first drawing. A first section's grid with no chart above it is drawn at once;
    every other grid (below a chart or in a later section) is a placeholder of the grid's
    reserved height, with the grid itself (same id, same rows) in a store of the same rendered
    panel."""
    f = cd.CohortFilters.make()
    view = BY_KEY[tab].view(ctx(FULL), f)
    tables = [(i, s) for i, s in enumerate(view.sections) if s.table_name and s.table is not None]
    assert len(tables) >= 2, tab
    tree = render(tab, FULL, f)
    drawn = [
        c["props"]["id"]["name"]
        for c in components_of(strip_stores(tree["props"]["children"]))
        if c["type"] == "AgGrid"
    ]
    eager = [s.table_name for i, s in tables if i == 0 and s.figure is None]
    assert drawn == eager
    assert eager == (["table1_group"] if tab == "baseline" else [])
    later = [s for i, s in tables if s.table_name not in eager]
    comps = components_of(tree)
    for s in later:
        lazy = cohort.LAZY_GRID_PREFIX + s.table_name
        (slot,) = [
            c for c in comps if c["props"].get("id") == {"type": cohort.LAZY_SLOT, "name": lazy}
        ]
        assert "Table drawn when scrolled into view." in json.dumps(slot)
        assert slot["props"]["style"]["minHeight"] == f"{cohort.grid_min_height(len(s.table))}px"
        (store,) = [
            c for c in comps if c["props"].get("id") == {"type": cohort.LAZY_PART, "name": lazy}
        ]
        part = store["props"]["data"]
        assert part["type"] == "AgGrid"
        assert part["props"]["id"] == {"type": "cohort-grid", "name": s.table_name}
        assert len(part["props"]["rowData"]) == len(s.table)
        assert [
            c for c in comps if c["props"].get("id") == {"type": cohort.LAZY_SEEN, "name": lazy}
        ]


def strip_stores(node):
    """The tree without dcc.Store components (what the browser draws)."""
    if isinstance(node, dict):
        if node.get("type") == "Store":
            return None
        return {k: strip_stores(v) for k, v in node.items()}
    if isinstance(node, list):
        return [strip_stores(v) for v in node]
    return node


def test_cohp017_render_view_without_lazy_draws_every_chart(request_ctx):
    f = cd.CohortFilters.make()
    view = BY_KEY["primary"].view(ctx(FULL), f)
    tree = cohort.render_view(BY_KEY["primary"], view, lazy=False).to_plotly_json()
    comps = components_of(json.loads(json.dumps(tree, cls=plotly.utils.PlotlyJSONEncoder)))
    names = [c["props"]["id"]["name"] for c in comps if c["type"] == "Graph"]
    assert names == list(view.figures())


def component_ids(tree) -> list[str]:
    """Every component id in a rendered tree, those of the charts a lazy slot holds included
    (they join the page when drawn)."""
    return [
        json.dumps(i, sort_keys=True) if isinstance(i, dict) else i
        for c in components_of(tree)
        if (i := c["props"].get("id")) is not None
    ]


@pytest.mark.parametrize("principal", [FULL, CODED, NONE], ids=["stat", "dsmb", "monitor"])
def test_cohp018_kept_panels_never_share_a_component_id(request_ctx, principal):
    """Issue 19: every opened tab stays on the page (hidden), so the components of all the
    panels are on one page at once: no id may repeat (Dash would refuse the page), and each
    chart, grid, CSV button and lazy slot is named once across the tabs."""
    every = [
        i
        for key in TAB_KEYS
        for i in component_ids(render(key, principal, cd.CohortFilters.make()))
    ]
    assert len(every) > 20
    repeated = sorted({i for i in every if every.count(i) > 1})
    assert repeated == []


def test_cohp019_the_page_has_a_slot_per_tab_and_draws_only_the_active_one(request_ctx):
    """A served page holds one slot per tab; only the requested tab's slot has its panel and
    shows; the bookkeeping says generation 0, that tab drawn and asked for."""
    page = cohort.build_layout(FULL, {"tab": "survival"}).to_plotly_json()
    blob = json.loads(dump(page))
    slots = {}

    def walk(node) -> None:
        if isinstance(node, list):
            for n in node:
                walk(n)
        elif isinstance(node, dict) and "props" in node:
            i = node["props"].get("id")
            if isinstance(i, dict) and i.get("type") in (
                cohort.SLOT,
                cohort.SLOT_BOX,
                cohort.SLOT_GEN,
            ):
                slots[(i["type"], i["tab"])] = node["props"]
            if i == cohort.SLOT_STATE:
                slots["state"] = node["props"]["data"]
            walk(node["props"].get("children"))

    walk(blob)
    state = slots.pop("state")
    assert {t for kind, t in slots if kind == cohort.SLOT} == set(TAB_KEYS)
    shown = [t for (kind, t), p in slots.items() if kind == cohort.SLOT_BOX and not p["hidden"]]
    assert shown == ["survival"]
    drawn = [t for (kind, t), p in slots.items() if kind == cohort.SLOT and p.get("children")]
    assert drawn == ["survival"]
    assert {t: p["data"] for (kind, t), p in slots.items() if kind == cohort.SLOT_GEN} == {
        t: (0 if t == "survival" else None) for t in TAB_KEYS
    }
    assert state == {"gen": 0, "keep": "survival", "asked": {"survival": 0}}
