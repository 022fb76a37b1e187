"""The exit policy (docs/blinding.md 6.5), proven over every exit for each blinded role.

For the ICU clinician and the blinded monitor (``ArmVisibility.NONE``) and the DSMB's coded view,
the crawler of tests/app/test_blinding.py renders every page and drives every callback of the
app's callback map (forging the ones whose inputs no page of the role shows), fetches every GET
route of the API, then drives the cohort page over every tab with representative, small-cell
(down to one patient), empty and differencing filter settings (two settings that differ by one
patient), downloads every CSV of every tab and the HTML report, and clicks the AESI bars.

It finds:
- an arm value anywhere (arm labels, treatment names, "Group A/B" for blinded roles, the
  publication check's arm-level counts);
- a guarded section that follows the filters (its content differs from the unfiltered one: the
  differencing attack), on the page, in its CSV or in the report;
- a guarded cell pooled over fewer than ``MIN_CELL_SIZE`` patients;
- an AESI preferred term outside the guarded sections (the filtered adverse-event table).

It is proven able to fail: the same crawl of a deliberately leaking build (minimum cell size 1,
guarded items following the filters, patched into ``core.policy`` / the data layer) must find
each kind of leak, among them the one patient of site SYN-S26.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pytest
from plotly.utils import PlotlyJSONEncoder

from components.cohort import PANELS
from components.data.cohort import FILTER_FIELDS
from components.pages.cohort import CSV_ASK, DRILL_ASK, SLOT, SLOT_ASK, SLOT_GEN, csv_ask, drill_ask
from core import policy
from core.db import make_engine
from core.repository import load_adverse_events
from settings import Settings
from tests.app.test_blinding import (
    CODED_PATTERN,
    NONE_PATTERN,
    ROUTER_OUTPUT_PREFIX,
    Crawl,
    crawl_as,
    id_key,
    leaks,
    login,
    make_login_settings,
    walk,
)
from tests.app.test_callback_ids import parse_id

#: the real minimum (the leaking build patches the module; the checks keep the real one)
MIN_CELL = policy.MIN_CELL_SIZE
#: blinded roles and the pattern no byte they receive may match
ROLES = {"clin": NONE_PATTERN, "mon": NONE_PATTERN, "dsmb": CODED_PATTERN}
NONE_ROLES = ("clin", "mon")
#: the publication check (components/cohort/publication.py): its badge, tooltip, report line
PUBLICATION = re.compile(r"cohort-badge|reproduces? the publication|Publication check|\(printed ")
#: its arm-level counts (the published primary endpoint): no blinded role gets a per-arm count
#: (the DSMB's coded view does show them by code, without the badge that names the arms)
ARM_COUNTS = re.compile(r"46/131|26/145")
#: columns that say how many patients a guarded cell is pooled over
N_COLUMNS = ("Patients (n)", "n_patients")
GUARDED_TABS = ("immune", "safety")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.fixture(scope="module")
def exit_settings(demo_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return make_login_settings(demo_db_url, tmp_path_factory.mktemp("exits"))


@pytest.fixture(scope="module")
def exit_app(exit_settings: Settings):
    import app as app_module

    return app_module.create_app(exit_settings)


@pytest.fixture(scope="module")
def aesi_terms(demo_db_url: str) -> re.Pattern[str]:
    """The preferred terms of the adverse events of special interest in these data."""
    aes = load_adverse_events(make_engine(demo_db_url))
    terms = sorted(set(aes.loc[aes["aesi"].notna(), "pt"]))
    assert {"Anaemia", "Haemorrhage"} <= set(terms)
    return re.compile("|".join(re.escape(t) for t in terms))


# ------------------------------------------------------------------------- the cohort crawl --


@dataclass
class Cohort:
    """What the cohort crawl received, by (tab, filter setting)."""

    crawl: Crawl
    panels: dict[tuple[str, str], Any] = field(default_factory=dict)
    csvs: dict[tuple[str, str, str], str] = field(default_factory=dict)
    reports: dict[str, str] = field(default_factory=dict)
    drills: dict[tuple[str, str], Any] = field(default_factory=dict)
    counts: dict[str, str] = field(default_factory=dict)


def dep_for(deps: list[dict[str, Any]], output: str) -> dict[str, Any]:
    return next(d for d in deps if output in d["output"])


def filter_options(crawl: Crawl) -> dict[str, list[tuple[str, int | None]]]:
    """(value, patients) of every cohort filter as the role's page offers them."""
    page = crawl.render("/cohort")
    comps = {id_key(c["props"]["id"]): c for c in walk(page) if "id" in c["props"]}
    out = {}
    for name in FILTER_FIELDS:
        opts = comps[f"cohort-f-{name}"]["props"]["options"]
        out[name] = [
            (o["value"], int(m.group(1)) if (m := re.search(r"\((\d+)\)$", o["label"])) else None)
            for o in opts
        ]
    return out


def settings_to_try(
    options: dict[str, list[tuple[str, int | None]]],
) -> tuple[list[dict[str, list]], list[dict[str, list]], list[dict[str, list]]]:
    """(all, representative, for the report) filter settings. All: no filter; every single option
    of every filter (every site, down to one patient); differencing pairs (the smallest site,
    then it with the next smallest: one setting has the other's patients plus a few); site ×
    immune state; band combinations; settings that match no patient. Representative: no filter,
    the smallest site, the pairs and the combinations."""
    sites = sorted(options["site"], key=lambda o: (o[1] or 0, o[0]))
    smallest, largest = [sites[0][0]], [sites[-1][0]]
    combos: list[dict[str, list]] = [{"site": smallest}]
    if len(sites) >= 2:
        combos.append({"site": [sites[0][0], sites[1][0]]})
    if len(sites) >= 3:
        combos.append({"site": [sites[0][0], sites[1][0], sites[2][0]]})
    for ph, _n in options["phenotype"]:
        combos += [{"site": largest, "phenotype": [ph]}, {"site": smallest, "phenotype": [ph]}]
    combos += [
        {"age": ["ge80"], "sofa": ["ge14"]},
        {"site": smallest, "age": ["lt50"], "sofa": ["0-5"]},
    ]
    singles = [{name: [v]} for name, opts in options.items() for v, _n in opts]
    every = [{}, *singles, *(c for c in combos if c not in singles)]
    report = [{}, *combos[:2], combos[-1]]
    return every, [{}, *combos], report


def label(setting: dict[str, list]) -> str:
    return json.dumps(setting, sort_keys=True)


def filter_entries(ids: list[Any], setting: dict[str, list], tab: str) -> list[dict[str, Any]]:
    entries = []
    for spec in ids:
        name = spec["id"].removeprefix("cohort-f-")
        value = tab if spec["id"] == "cohort-tabs" else setting.get(name, [])
        if spec["id"] == "cohort-report-interactive":
            # the interactive report carries the figures' data as JSON (what a crawl can
            # compare); the static PNGs of the same figures: tests/test_report_formats.py
            value = True
        entries.append({"id": spec["id"], "property": spec["property"], "value": value})
    return entries


def crawl_cohort(client, tabs: tuple[str, ...] | None = None, *, exhaustive: bool = True) -> Cohort:
    """Every tab × filter setting through the cohort page's own callbacks: the panel, its CSVs,
    the AESI drill-downs; the report for the small and differencing settings.

    ``exhaustive``: every setting on the guarded tabs (their guarded CSVs for each; every CSV
    and the drill-downs for the representative ones); otherwise representative settings only
    (roles without guarded items: the DSMB's coded view)."""
    crawl = Crawl(client)
    deps = client.get("/_dash-dependencies").get_json()
    slot_dep = next(
        d
        for d in deps
        if any(parse_id(i["id"]) == {"type": SLOT_ASK, "tab": ["MATCH"]} for i in d["inputs"])
    )
    count_dep = dep_for(deps, "cohort-count.children")
    csv_dep = dep_for(deps, "cohort-csv-download.data")
    report_dep = dep_for(deps, "cohort-report-download.data")
    drill_dep = dep_for(deps, "cohort-drilldown.children")
    settings, representative, for_report = settings_to_try(filter_options(crawl))
    out = Cohort(crawl)
    # every setting on the guarded tabs; the small, differencing and empty ones on the others
    for tab in tabs or tuple(p.key for p in PANELS):
        for setting in settings if exhaustive and tab in GUARDED_TABS else representative:
            key = label(setting)
            every_exit = setting in representative
            # as a filter change: the count (its own callback), then the tab's slot drawn for
            # the filters (what the browser asks for after a filter change or a tab switch)
            counted = crawl.call(
                count_dep,
                filter_entries(count_dep["inputs"], setting, tab),
                [],
                "cohort-f-site.value",
            ).get_json()["response"]
            out.counts[key] = counted["cohort-count"]["children"]
            ask = {"type": SLOT_ASK, "tab": tab}
            resp = crawl.call(
                slot_dep,
                [{"id": ask, "property": "data", "value": {"gen": 1}}],
                filter_entries(slot_dep["state"], setting, tab),
                f"{id_key(ask)}.data",
                outputs=[
                    {"id": {"type": SLOT, "tab": tab}, "property": "children"},
                    {"id": {"type": SLOT_GEN, "tab": tab}, "property": "data"},
                ],
            ).get_json()["response"]
            panel = resp[id_key({"type": SLOT, "tab": tab})]["children"]
            assert resp[id_key({"type": SLOT_GEN, "tab": tab})]["data"] == 1
            out.panels[(tab, key)] = panel
            comps = list(walk(panel))
            csv_ids = [
                c["props"]["id"] for c in comps if c["type"] == "Button" and "id" in c["props"]
            ]
            csv_ids = [i for i in csv_ids if isinstance(i, dict) and i.get("type") == "cohort-csv"]
            in_guarded = {
                c["props"]["id"]["name"]
                for g in guarded(panel)
                for c in walk(g)
                if c["type"] == "Button" and isinstance(c["props"].get("id"), dict)
            }
            for target in [i for i in csv_ids if every_exit or i["name"] in in_guarded]:
                body = crawl.call(
                    csv_dep,
                    [{"id": CSV_ASK, "property": "data", "value": csv_ask(target["name"])}],
                    filter_entries(csv_dep["state"], setting, tab),
                    f"{CSV_ASK}.data",
                ).get_json()
                out.csvs[(tab, key, target["name"])] = body["response"]["cohort-csv-download"][
                    "data"
                ]["content"]
            graphs = [c["props"]["id"] for c in comps if c["type"] == "Graph"]
            if every_exit and tab == "safety" and {"type": "cohort-graph", "name": "ae"} in graphs:
                for pt in ("Anaemia", "Haemorrhage", "Gastrointestinal haemorrhage"):
                    click = {"points": [{"customdata": [pt, "All patients"]}]}
                    target = {"type": "cohort-graph", "name": "ae"}
                    resp = crawl.call(
                        drill_dep,
                        [{"id": DRILL_ASK, "property": "data", "value": drill_ask(target, click)}],
                        filter_entries(drill_dep["state"], setting, tab),
                        f"{DRILL_ASK}.data",
                    )
                    out.drills[(key, pt)] = resp.get_json()["response"]
    for setting in for_report:
        body = crawl.call(
            report_dep,
            [{"id": "cohort-report-btn", "property": "n_clicks", "value": 1}],
            filter_entries(report_dep["state"], setting, ""),
            "cohort-report-btn.n_clicks",
        ).get_json()
        out.reports[label(setting)] = body["response"]["cohort-report-download"]["data"]["content"]
    return out


# -------------------------------------------------------------------------------- checks ----


def guarded(panel: Any) -> list[dict[str, Any]]:
    return [c for c in walk(panel) if "cohort-guarded" in str(c["props"].get("className", ""))]


def guarded_grids(panel: Any) -> dict[str, list[dict[str, Any]]]:
    return {
        c["props"]["id"]["name"]: c["props"]["rowData"]
        for g in guarded(panel)
        for c in walk(g)
        if c["type"] == "AgGrid"
    }


def report_guarded(text: str) -> list[str]:
    found = re.findall(r"<section class='guarded'.*?</section>", text, flags=re.DOTALL)
    return [UUID.sub("<id>", s) for s in found]


def without_guarded(node: Any) -> Any:
    """The response with the guarded sections cut out (what follows the filters)."""
    if isinstance(node, dict):
        if "cohort-guarded" in str(node.get("props", {}).get("className", "")):
            return "<guarded>"
        return {k: without_guarded(v) for k, v in node.items()}
    if isinstance(node, list):
        return [without_guarded(v) for v in node]
    return node


def small_cells(rows: list[dict[str, Any]]) -> list[int]:
    return [int(r[c]) for r in rows for c in N_COLUMNS if c in r and int(r[c]) < MIN_CELL]


def csv_rows(text: str) -> list[dict[str, Any]]:
    return list(csv.DictReader(io.StringIO(text)))


def guard_findings(cohort: Cohort, aesi: re.Pattern[str]) -> Iterator[str]:
    """Every way a guarded item left for a blinded role (empty: none)."""
    base = label({})
    guarded_csvs = set()
    for (tab, key), panel in cohort.panels.items():
        if json.dumps(guarded(panel)) != json.dumps(guarded(cohort.panels[(tab, base)])):
            yield f"{tab} {key}: a guarded section follows the filters"
        for name, rows in guarded_grids(panel).items():
            guarded_csvs.add(name)
            if small := small_cells(rows):
                yield f"{tab} {key}: guarded table {name} has cells of {small} patients"
        if m := aesi.search(json.dumps(without_guarded(panel))):
            yield f"{tab} {key}: AESI term {m.group(0)!r} outside the guarded sections"
    for (tab, key, name), text in cohort.csvs.items():
        if name in guarded_csvs:
            if text != cohort.csvs.get((tab, base, name)):
                yield f"{tab} {key}: guarded CSV {name} follows the filters"
            if small := small_cells(csv_rows(text)):
                yield f"{tab} {key}: guarded CSV {name} has cells of {small} patients"
        elif m := aesi.search(text):
            yield f"{tab} {key}: AESI term {m.group(0)!r} in cohort-{name}.csv"
    for key, text in cohort.reports.items():
        if report_guarded(text) != report_guarded(cohort.reports[base]):
            yield f"report {key}: a guarded section follows the filters"
        rest = re.sub(r"<section class='guarded'.*?</section>", "", text, flags=re.DOTALL)
        if m := aesi.search(rest):
            yield f"report {key}: AESI term {m.group(0)!r} outside the guarded sections"
    for (key, pt), resp in cohort.drills.items():
        if re.search(r"/patient/", json.dumps(resp)):
            yield f"drill-down {pt} {key}: lists the patients of an AESI"


def coverage(crawls: list[Crawl], deps: list[dict[str, Any]]) -> set[str]:
    """Callbacks of the app's callback map that no crawl drove."""
    driven = {c for crawl in crawls for c in crawl.driven}
    return {
        d["output"]
        for d in deps
        if not d.get("clientside_function") and not d["output"].startswith(ROUTER_OUTPUT_PREFIX)
    } - driven


def forge_the_rest(crawl: Crawl, deps: list[dict[str, Any]]) -> None:
    """A forged request for every callback the pages of this role never offered (a client can
    send any callback id): inputs clicked / empty, states empty."""
    for dep in deps:
        if dep.get("clientside_function") or dep["output"] in crawl.driven:
            continue
        if dep["output"].startswith(ROUTER_OUTPUT_PREFIX):
            continue

        def entry(spec: dict[str, Any], value: Any) -> Any:
            if str(spec["id"]).startswith("{"):  # a pattern-matching (ALL) id: no component
                return []
            return {"id": spec["id"], "property": spec["property"], "value": value}

        inputs = [entry(i, 1 if i["property"] == "n_clicks" else None) for i in dep["inputs"]]
        states = [entry(s, None) for s in dep.get("state", [])]
        first = dep["inputs"][0]
        crawl.call(dep, inputs, states, f"{id_key(first['id'])}.{first['property']}", forged=True)


def api_paths(app) -> list[str]:
    """Every GET route of the JSON API, with a patient of site SYN-S01 for the path argument."""
    rules = [
        r.rule
        for r in app.server.url_map.iter_rules()
        if r.rule.startswith("/api/") and "GET" in (r.methods or ())
    ]
    assert len(rules) >= 5
    return [r.replace("<patient_id>", "SYN-01-0001") for r in sorted(rules)] + [
        "/api/v1/patients/SYN-26-0001/sofa",
        "/api/v1/ward?at=2022-06-01T08:00:00",
    ]


# --------------------------------------------------------------------------------- tests ----


@pytest.mark.parametrize("user", ["clin", "mon", "dsmb"])
def test_exit001_no_arm_value_and_no_guarded_item_leaves(exit_app, aesi_terms, user):
    client = exit_app.server.test_client()
    login(client, user)
    deps = client.get("/_dash-dependencies").get_json()
    crawl = crawl_as(client)
    by_pages = set(crawl.driven)  # driven from the rendered pages (before any forged request)
    forge_the_rest(crawl, deps)
    for path in api_paths(exit_app):
        crawl.get(path)
    cohort = crawl_cohort(client, exhaustive=user in NONE_ROLES)
    assert coverage([crawl, cohort.crawl], deps) == set()
    assert crawl.calls + cohort.crawl.calls >= 200, "too few exits driven to mean anything"
    # small cells were reached: settings below the minimum, down to one patient and to none
    filtered = {int(t.split(" ", 1)[0]) for t in cohort.counts.values()}
    assert {0, 1} <= filtered
    assert len(filtered & set(range(MIN_CELL))) >= 3
    assert len(cohort.reports) >= 4
    assert len(cohort.csvs) >= 40
    bodies = [*crawl.bodies, *cohort.crawl.bodies]
    assert_review_crawled(client, user, deps, by_pages, crawl.bodies)
    assert leaks(Crawl(client, bodies=bodies), ROLES[user]) == []
    assert [label for label, text in bodies if PUBLICATION.search(text)] == []
    if user in NONE_ROLES:
        assert [label for label, text in bodies if ARM_COUNTS.search(text)] == []
    if user in NONE_ROLES:
        # guarded sections exist (so the checks below are not vacuous) and none leaks
        base = label({})
        assert guarded(cohort.panels[("immune", base)])
        assert guarded(cohort.panels[("safety", base)])
        assert list(guard_findings(cohort, aesi_terms)) == []
        # the AESI bars never list patients (the drill-down refuses)
        assert cohort.drills
        assert all(
            "hidden: could reveal allocation" in json.dumps(r) for r in cohort.drills.values()
        )


#: the review workspace's callbacks (docs/review.md): every output id starts with "review-"
REVIEW_ID = "review-"


def assert_review_crawled(
    client, user: str, deps: list[dict[str, Any]], by_pages: set[str], bodies: list
) -> None:
    """/review was part of the crawl (tests/app/test_blinding.py PAGES): for the monitor and
    the DSMB every review callback was driven from the rendered page (filters, selections, the
    mark / raise / answer / close buttons), for the clinician the page is refused and the
    forged review callbacks answer no patient or site. No review answer carries an arm, a coded group (the
    review never shows groups, not even the DSMB's codes) or a publication count."""
    review_deps = {d["output"] for d in deps if REVIEW_ID in d["output"]}
    assert len(review_deps) >= 5, review_deps
    page = json.dumps(Crawl(client).render("/review"))
    answers = [text for label, text in bodies if REVIEW_ID in label]
    assert answers, "no review callback answered"
    if user == "clin":
        assert "has no access" in page
        assert review_deps.isdisjoint(by_pages)
        # forged: nothing about any patient or site comes back
        assert [text[:200] for text in answers if "SYN-" in text] == []
    else:
        assert "Per-site summary" in page
        assert review_deps <= by_pages, review_deps - by_pages
        assert len(answers) >= 15, len(answers)
    for text in [page, *answers]:
        assert not NONE_PATTERN.search(text), NONE_PATTERN.search(text)
        assert not ARM_COUNTS.search(text)
        assert not PUBLICATION.search(text)


def test_exit002_clinician_guarded_items_pooled_over_the_own_site_only(exit_app):
    """The clinician's whole visible cohort is the own site: guarded cells from it, and the
    pooled AESI numbers are the site's (not the trial's)."""
    client = exit_app.server.test_client()
    login(client, "clin")
    cohort = crawl_cohort(client, tabs=("safety",))
    grids = guarded_grids(cohort.panels[("safety", label({}))])
    rows = grids.get("aesi_pooled", [])
    n_site = len(client.get("/api/v1/patients").get_json()["patients"])
    assert rows
    assert rows[0]["Patients (n)"] == n_site >= MIN_CELL
    assert {r["Stratum"] for r in rows} <= {"All patients", "MALS", "SIP"}


def test_exit003_statistician_control_sees_what_blinded_roles_do_not(exit_app):
    """Control: the same checks find the arm, the publication badge and filtered guarded items
    for the unblinded statistician (the checks can see them when they are there)."""
    client = exit_app.server.test_client()
    login(client, "stat")
    cohort = crawl_cohort(client, tabs=GUARDED_TABS)
    bodies = cohort.crawl.bodies
    assert leaks(Crawl(client, bodies=bodies), NONE_PATTERN)
    page = json.dumps(Crawl(client).render("/cohort"))
    assert PUBLICATION.search(page)
    assert ARM_COUNTS.search(page)
    assert any(PUBLICATION.search(t) for t in cohort.reports.values())


def test_exit004_the_crawl_catches_a_leaking_build(demo_db_url, tmp_path, monkeypatch, aesi_terms):
    """The same crawl against a deliberately leaking build: minimum cell size 1 and guarded
    items following the filters. It must find small cells, differencing, AESI terms in the
    filtered tables, and the one patient of SYN-S26."""
    import app as app_module
    from components.data import cohort as data_cohort

    monkeypatch.setattr(policy, "MIN_CELL_SIZE", 1)
    monkeypatch.setattr(data_cohort, "guards_follow_filters", lambda visibility: True)
    leaky = app_module.create_app(make_login_settings(demo_db_url, tmp_path))
    client = leaky.server.test_client()
    login(client, "mon")
    cohort = crawl_cohort(client, tabs=GUARDED_TABS)
    found = list(guard_findings(cohort, aesi_terms))
    assert any("follows the filters" in f for f in found)
    assert any("has cells of [1]" in f for f in found)
    assert any("AESI term" in f for f in found)
    one = label({"site": ["SYN-S26"]})
    assert any(one in f for f in found), "the one patient of SYN-S26 was not caught"
    # the leak is real: at SYN-S26 the immune tab shows one patient's reversal
    panel = cohort.panels[("immune", one)]
    assert re.search(r"[01]/1 \(", json.dumps(panel))


def test_exit005_policy_predicates_at_their_boundaries():
    from core.policy import ArmVisibility as V

    assert policy.cell_shown(V.NONE, MIN_CELL)
    assert not policy.cell_shown(V.NONE, MIN_CELL - 1)
    assert policy.cell_shown(V.CODED, 1)
    assert policy.cell_shown(V.FULL, 0)
    assert policy.partition_shown(V.NONE, [MIN_CELL, MIN_CELL + 5])
    assert not policy.partition_shown(V.NONE, [MIN_CELL, MIN_CELL - 1])
    assert not policy.partition_shown(V.NONE, [])
    assert policy.partition_shown(V.CODED, [1, 2])
    assert [policy.guards_follow_filters(v) for v in V] == [False, True, True]
    assert [policy.may_see_publication_check(v, "synthetic") for v in V] == [False, False, True]
    assert not policy.may_see_publication_check(V.FULL, None)
    assert not policy.may_see_publication_check(V.FULL, "clif-demo")
    assert f"suppressed: fewer than {MIN_CELL} patients" == policy.SUPPRESSED


def test_exit006_strata_sizes_count_every_level_missing_included():
    from components.data.cohort import strata_sizes

    sizes = strata_sizes(pd.Series(["MALS", "SIP", None, "SIP", None, None]))
    assert sorted(sizes) == [1, 2, 3]


def sites_summing_to(sizes: dict[str, int], target: int) -> tuple[str, ...]:
    """Sites whose trial patients add up to exactly ``target`` (subset sum, smallest first)."""
    reach: dict[int, tuple[str, ...]] = {0: ()}
    for site, n in sorted(sizes.items(), key=lambda kv: (kv[1], kv[0])):
        for total, chosen in list(reach.items()):
            reach.setdefault(total + n, (*chosen, site))
    return reach[target]


def test_exit007_a_clinician_cohort_at_the_minimum_cell_size_boundary(exit_app):
    """A clinician whose sites hold exactly MIN_CELL_SIZE trial patients sees the pooled AESI
    counts and the pooled immune reversal when enough are evaluable; one patient fewer and
    both are suppressed, with the chip's words."""
    from components.cohort import immune, safety
    from components.data import cohort as cd
    from components.data.keys import Context
    from components.pages.cohort import render_view
    from components.server.auth import Principal, Role

    with exit_app.server.test_request_context():
        everyone = cd.base(Context.current(Principal("m", Role.MONITOR)))
        sizes = everyone["site_id"].value_counts().to_dict()
        f = cd.CohortFilters.make()
        res = {}
        for n in (MIN_CELL, MIN_CELL - 1):
            sites = sites_summing_to(sizes, n)
            ctx = Context.current(Principal("c", Role.CLINICIAN, sites=sites))
            assert len(cd.base(ctx)) == n
            res[n] = safety.compute(ctx, f), immune.compute(ctx, f)
            if n < MIN_CELL:  # the page shows the chip with its reason
                tree = render_view(safety.PANEL, safety.PANEL.view(ctx, f))
                chips = [
                    c["props"]["children"]
                    for c in walk(json.loads(json.dumps(tree, cls=PlotlyJSONEncoder)))
                    if "suppressed-chip" in str(c["props"].get("className"))
                ]
                assert chips == [policy.SUPPRESSED]
    shown, hidden = res[MIN_CELL][0], res[MIN_CELL - 1][0]
    overall = [r for r in shown["aesi_pooled"] if r["Stratum"] == "All patients"]
    assert [r["Patients (n)"] for r in overall] == [MIN_CELL, MIN_CELL]
    assert hidden["aesi_pooled"] == ()
    assert hidden["suppressed"] == (
        f"Adverse events of special interest ({MIN_CELL - 1} patients): {policy.SUPPRESSED}.",
    )
    # immune reversal: evaluable patients are fewer than the cohort, so both are suppressed
    for n in (MIN_CELL, MIN_CELL - 1):
        rev = res[n][1]
        assert rev["n_evaluable"] < MIN_CELL
        assert rev["reversal_props"].empty
        assert any(policy.SUPPRESSED in t for t in rev["suppressed"])
