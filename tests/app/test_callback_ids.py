"""Every callback's Input / Output / State id and property exists in a rendered layout.

The app sets ``suppress_callback_exceptions=True`` (Dash Pages would otherwise send a
validation layout built for the first user to everyone, see app.py), which hides exactly
this class of error in the browser: a callback that listens to an id no layout renders
never fires, silently. This test is the replacement check, done on the server side:

- every layout a user can get is collected over HTTP, as the browser gets it: the app shell
  (``/_dash-layout``), every page registered in ``dash.page_registry`` rendered through the
  Pages router callback with its path parameters and query arguments, for every role
  (demo, clinician, monitor, DSMB, statistician), and the sub-layouts that callbacks render
  into ``children`` (each cohort tab rendered by the real tab callback);
- every callback of ``/_dash-dependencies`` must find each of its ids in one of them (a
  pattern-matching id matches a component id dict with the same keys and the same
  non-wildcard values), and the component type must have the property;
- no rendered document (shell + page, and shell + page with a callback's sub-layout patched
  in) may hold two components with the same id.

``test_cbid004`` proves the checker can fail: fake callback entries with a missing id, a
missing pattern and a misspelt property are reported, and a throwaway Dash app with a
dangling callback (the same ``suppress_callback_exceptions=True``) is caught end to end.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
import inspect
import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import dash
import pytest

from settings import Settings
from tests.app import test_blinding as blinding

ROUTER_OUTPUT_PREFIX = ".._pages_content.children"
#: login users of test_blinding's users file, by role
ROLE_USERS = {"clinician": "clin", "monitor": "mon", "dsmb": "dsmb", "statistician": "stat"}
WILDCARDS = ("ALL", "MATCH", "ALLSMALLER")
COMPONENT_MODULES = {
    "dash_html_components": "dash.html",
    "dash_core_components": "dash.dcc",
}


# ------------------------------------------------------------------------- layout trees ----


def walk(node: Any) -> Iterator[dict[str, Any]]:
    """Every component (as Dash JSON: type, namespace, props) in a layout tree."""
    if isinstance(node, dict):
        if "type" in node and "namespace" in node and isinstance(node.get("props"), dict):
            yield node
            for v in node["props"].values():
                if isinstance(v, dict | list):
                    yield from walk(v)
        else:
            for v in node.values():
                if isinstance(v, dict | list):
                    yield from walk(v)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item)


def id_str(component_id: Any) -> str:
    """Dash's string form of an id (dict ids: JSON with sorted keys, no spaces)."""
    if isinstance(component_id, dict):
        return json.dumps(component_id, sort_keys=True, separators=(",", ":"))
    return str(component_id)


def parse_id(raw: Any) -> Any:
    """A dependency id from ``/_dash-dependencies`` (pattern ids arrive as JSON strings)."""
    if isinstance(raw, str) and raw.startswith("{"):
        return json.loads(raw)
    return raw


def is_wildcard(value: Any) -> bool:
    if isinstance(value, list):
        return len(value) == 1 and value[0] in WILDCARDS
    return hasattr(value, "to_json") and str(value.to_json()).strip('"[]') in WILDCARDS


def pattern_matches(pattern: dict[str, Any], component_id: Any) -> bool:
    """Does a pattern-matching dependency id select this component id?"""
    if not isinstance(component_id, dict) or set(pattern) != set(component_id):
        return False
    return all(is_wildcard(v) or component_id[k] == v for k, v in pattern.items())


def matched_key(spec: dict[str, Any]) -> bool:
    """Is this dependency a MATCH pattern (one component per call)?"""
    pid = parse_id(spec["id"])
    return isinstance(pid, dict) and ["MATCH"] in pid.values()


#: what the browser's own clientside callbacks write into a store the server never fills at
#: first: the cohort page's showTab asks for a tab's slot with a filter generation
BROWSER_WRITTEN: dict[str, Any] = {"cohort-slot-ask": {"gen": 0}}


def split_output(output: str) -> list[tuple[Any, str]]:
    """``a.children`` / ``..a.children...b.search..`` (and ``@hash`` of allow_duplicate)
    into ``[(id, property), ...]``."""
    parts = output[2:-2].split("...") if output.startswith("..") else [output]
    out = []
    for part in parts:
        cid, prop = part.rsplit(".", 1)
        out.append((parse_id(cid), prop.split("@", 1)[0]))
    return out


def dependency_refs(dep: dict[str, Any]) -> list[tuple[str, Any, str]]:
    """``(kind, id, property)`` of every Output, Input and State of one callback."""
    refs = [("Output", cid, prop) for cid, prop in split_output(dep["output"])]
    refs += [("Input", parse_id(i["id"]), i["property"]) for i in dep.get("inputs", [])]
    refs += [("State", parse_id(s["id"]), s["property"]) for s in dep.get("state", [])]
    return refs


def component_class(component: dict[str, Any]) -> type | None:
    module = COMPONENT_MODULES.get(component["namespace"], component["namespace"])
    try:
        return getattr(importlib.import_module(module), component["type"])
    except (ImportError, AttributeError):
        return None


def has_property(component: dict[str, Any], prop: str) -> bool:
    cls = component_class(component)
    if cls is None:  # unknown library: cannot say, do not guess
        return True
    if prop.startswith(("data-", "aria-")):
        return True
    params = inspect.signature(cls.__init__).parameters
    return prop in set(params) - {"self", "args", "kwargs"}


def components_by_id(trees: Iterable[Any]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for tree in trees:
        for comp in walk(tree):
            if "id" in comp["props"]:
                found.setdefault(id_str(comp["props"]["id"]), []).append(comp)
    return found


def check_callbacks(deps: Iterable[dict[str, Any]], layouts: Iterable[Any]) -> list[str]:
    """Problems of the callbacks ``deps`` (``/_dash-dependencies`` entries) against every
    layout in ``layouts``: ids found in no layout, properties the component does not have."""
    known = components_by_id(layouts)
    dict_ids = [json.loads(k) for k in known if k.startswith("{")]
    problems = []
    for dep in deps:
        for kind, cid, prop in dependency_refs(dep):
            where = f"callback {dep['output']!r}: {kind}({id_str(cid)!r}, {prop!r})"
            if isinstance(cid, dict):
                hits = [d for d in dict_ids if pattern_matches(cid, d)]
                comps = [c for h in hits for c in known[id_str(h)]]
                if not hits:
                    problems.append(f"{where}: no component id matches this pattern in any layout")
                    continue
            else:
                comps = known.get(id_str(cid), [])
                if not comps:
                    problems.append(f"{where}: no component with this id in any layout")
                    continue
            bad = sorted({c["type"] for c in comps if not has_property(c, prop)})
            if bad:
                problems.append(f"{where}: {'/'.join(bad)} has no property {prop!r}")
    return problems


def duplicate_ids(tree: Any) -> list[str]:
    counts = Counter(id_str(c["props"]["id"]) for c in walk(tree) if "id" in c["props"])
    return sorted(f"{k} ({n}x)" for k, n in counts.items() if n > 1)


def patch(tree: Any, component_id: str, prop: str, value: Any) -> bool:
    """Set ``prop`` of the component with this id (string form) in ``tree``, in place."""
    for comp in walk(tree):
        if "id" in comp["props"] and id_str(comp["props"]["id"]) == component_id:
            comp["props"][prop] = value
            return True
    return False


# -------------------------------------------------------------------------- the crawler ----


@dataclass
class Document:
    """One rendered document: the shell with a page (and maybe a sub-layout) in it."""

    label: str
    tree: Any


@dataclass
class Collector:
    client: Any
    role: str
    deps: list[dict[str, Any]] = field(default_factory=list)
    shell: Any = None
    documents: list[Document] = field(default_factory=list)
    driven: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        resp = self.client.get("/_dash-layout")
        assert resp.status_code == 200, resp.get_data(as_text=True)[:300]
        self.shell = resp.get_json()
        self.deps = self.client.get("/_dash-dependencies").get_json()
        self.documents.append(Document(f"{self.role} shell", copy.deepcopy(self.shell)))

    @property
    def router(self) -> dict[str, Any]:
        return next(d for d in self.deps if d["output"].startswith(ROUTER_OUTPUT_PREFIX))

    def post(
        self,
        dep: dict[str, Any],
        inputs: list,
        state: list,
        changed: list[str],
        outputs: list[dict[str, Any]] | None = None,
    ):
        outputs = outputs or [
            {"id": cid, "property": prop} for cid, prop in split_output(dep["output"])
        ]
        body = {
            "output": dep["output"],
            "outputs": outputs if dep["output"].startswith("..") else outputs[0],
            "inputs": inputs,
            "state": state,
            "changedPropIds": changed,
        }
        resp = self.client.post("/_dash-update-component", json=body)
        assert resp.status_code in (200, 204), (
            f"{self.role}: callback {dep['output']!r} <- {changed}: HTTP {resp.status_code} "
            f"{resp.get_data(as_text=True)[:300]}"
        )
        return resp.get_json() if resp.status_code == 200 else None

    def render(self, path: str) -> Any:
        """The page at ``path`` (with its query) through the Pages router, as the browser does."""
        pathname, _, search = path.partition("?")
        router = self.router
        inputs = [
            {
                "id": i["id"],
                "property": i["property"],
                "value": pathname
                if i["property"] == "pathname"
                else (f"?{search}" if search else ""),
            }
            for i in router["inputs"]
        ]
        payload = self.post(router, inputs, [], [f"{router['inputs'][0]['id']}.pathname"])
        page = payload["response"]["_pages_content"]["children"]
        tree = copy.deepcopy(self.shell)
        assert patch(tree, "_pages_content", "children", page), "no _pages_content in the shell"
        self.documents.append(Document(f"{self.role} {path}", tree))
        self.drive_sub_layouts(path, tree)
        return page

    def drive_sub_layouts(self, path: str, tree: Any) -> None:
        """Callbacks rendering ``children`` whose inputs are on this document: called with the
        values the layout holds (a tab control with each of its tabs), the returned
        sub-layout patched into a copy of the document."""
        comps = components_by_id([tree])
        for dep in self.deps:
            if dep["output"].startswith(ROUTER_OUTPUT_PREFIX) or dep.get("clientside_function"):
                continue
            outs = split_output(dep["output"])
            if not any(prop == "children" for _, prop in outs):
                continue
            if any(matched_key(i) for i in dep["inputs"]):
                self.drive_match(path, tree, dep, comps)
                continue
            resolved = [self.resolve(i, comps) for i in dep["inputs"]]
            if any(r is None for r in resolved):
                continue
            states = [self.item(s, self.resolve(s, comps) or []) for s in dep.get("state", [])]
            variants: list[tuple[list, list[str]]] = [
                ([self.item(i, r) for i, r in zip(dep["inputs"], resolved, strict=True)], [])
            ]
            for k, (spec, found) in enumerate(zip(dep["inputs"], resolved, strict=True)):
                if spec["property"] != "active_tab" or isinstance(parse_id(spec["id"]), dict):
                    continue
                for tab in (c["props"].get("tab_id") for c in walk(found[0]["props"]["children"])):
                    if tab is None:
                        continue
                    inputs = [self.item(i, r) for i, r in zip(dep["inputs"], resolved, strict=True)]
                    inputs[k] = {**inputs[k], "value": tab}
                    variants.append((inputs, [f"{spec['id']}.active_tab"]))
            for inputs, changed in variants:
                if not changed:
                    first = dep["inputs"][0]
                    changed = [f"{first['id']}.{first['property']}"]
                self.drive_once(path, tree, dep, (inputs, states, changed))

    def drive_match(self, path: str, tree: Any, dep: dict[str, Any], comps) -> None:
        """A MATCH callback rendering ``children`` (the cohort tab slots): once per component of
        its MATCH input on this document, the outputs and inputs named by that component's
        MATCH values, an empty input given the value the browser writes into it
        (:data:`BROWSER_WRITTEN`); the answer patched into a copy of the document."""
        spec = next(i for i in dep["inputs"] if matched_key(i))
        pattern = parse_id(spec["id"])
        for comp in self.resolve(spec, comps):
            cid = comp["props"]["id"]
            values = {k: cid[k] for k, v in pattern.items() if v == ["MATCH"]}

            def concrete(raw: Any, values: dict[str, Any] = values) -> Any:
                pid = parse_id(raw)
                if not isinstance(pid, dict):
                    return pid
                return {k: values.get(k, v) if v == ["MATCH"] else v for k, v in pid.items()}

            inputs = []
            for i in dep["inputs"]:
                ident = concrete(i["id"])
                found = comps.get(id_str(ident), [])
                value = found[0]["props"].get(i["property"]) if found else None
                if value is None and isinstance(ident, dict):
                    value = BROWSER_WRITTEN.get(ident.get("type"))
                inputs.append({"id": ident, "property": i["property"], "value": value})
            states = [self.item(s, self.resolve(s, comps) or []) for s in dep.get("state", [])]
            outputs = [{"id": concrete(o), "property": p} for o, p in split_output(dep["output"])]
            changed = [f"{id_str(inputs[0]['id'])}.{inputs[0]['property']}"]
            self.drive_once(path, tree, dep, (inputs, states, changed), outputs)

    def drive_once(
        self,
        path: str,
        tree: Any,
        dep: dict[str, Any],
        call: tuple[list, list, list[str]],
        outputs: list[dict[str, Any]] | None = None,
    ) -> None:
        """One call ``(inputs, states, changed)`` of ``dep`` (skipped when an earlier document
        made the same one), its answer patched into a copy of the document."""
        inputs, states, changed = call
        key = json.dumps([dep["output"], inputs, states], sort_keys=True, default=str)
        if key in self.driven:  # the same call from an earlier document
            return
        self.driven.add(key)
        payload = self.post(dep, inputs, states, changed, outputs=outputs)
        if not payload:
            return
        patched = copy.deepcopy(tree)
        for out_id, props in payload["response"].items():
            for prop, value in props.items():
                assert patch(patched, out_id, prop, value), f"{out_id} not in {path}"
        label = f"{self.role} {path} + {dep['output'][:50]} <- {changed[0]}"
        self.documents.append(Document(label, patched))

    @staticmethod
    def resolve(spec: dict[str, Any], comps: dict[str, list[dict[str, Any]]]):
        cid = parse_id(spec["id"])
        if isinstance(cid, dict):
            return [
                c
                for k, cs in comps.items()
                if k.startswith("{") and pattern_matches(cid, json.loads(k))
                for c in cs
            ]
        return comps.get(id_str(cid))

    @staticmethod
    def item(spec: dict[str, Any], found: list[dict[str, Any]]):
        entries = [
            {
                "id": c["props"]["id"],
                "property": spec["property"],
                "value": c["props"].get(spec["property"]),
            }
            for c in found
        ]
        if isinstance(parse_id(spec["id"]), dict):
            return entries
        return (
            entries[0]
            if entries
            else {"id": spec["id"], "property": spec["property"], "value": None}
        )


def page_paths(collector: Collector, patient_id: str | None, site: str | None) -> list[str]:
    """Every registered page, with its path parameters and the query arguments it reads."""
    paths = []
    for page in dash.page_registry.values():
        template = page.get("path_template")
        if template:
            for value in ([patient_id] if patient_id else []) + ["NOT-A-PATIENT"]:
                concrete = re.sub(r"<[^>]+>", value, template)
                paths += [concrete, f"{concrete}?day=3&layers=support,sofa2"]
        paths.append(page["path"])
    if site:
        paths.append(f"/?site={site}&day=3")
    paths.append("/no-such-page")  # unknown path: the 404 page
    return paths


def collect_role(client, role: str) -> Collector:
    coll = Collector(client, role)
    patients = client.get("/api/v1/patients?limit=1").get_json()["patients"]
    patient_id = patients[0]["patient_id"] if patients else None
    site = patients[0]["site_id"] if patients else None
    for path in page_paths(coll, patient_id, site):
        page = coll.render(path)
        if path == "/cohort":
            # every tab and a filtered view, through the URL as well as through the tab callback
            tabs = [c["props"]["tab_id"] for c in walk(page) if c["props"].get("tab_id")]
            assert len(tabs) >= 8, tabs
            for tab in tabs:
                coll.render(f"/cohort?tab={tab}")
    return coll


# ----------------------------------------------------------------------------- fixtures ----

#: test_blinding's login-mode app on a copy of the demo database, one user per role
#: (clin, mon, dsmb, stat); module-scoped fixtures, reused here
login_settings = blinding.login_settings
login_app = blinding.login_app


@pytest.fixture(scope="module")
def demo_app(login_settings: Settings):
    """The same (synthetic) database and cache as the login app, in demo mode."""
    import app as app_module

    return app_module.create_app(
        dataclasses.replace(login_settings, mode="demo", users_file=None), bootstrap=False
    )


@pytest.fixture(scope="module")
def collected(login_app, demo_app) -> dict[str, Collector]:
    """Every rendered document of every role (demo mode and the four login roles)."""
    out = {"demo": collect_role(demo_app.server.test_client(), "demo")}
    for role, user in ROLE_USERS.items():
        client = login_app.server.test_client()
        blinding.login(client, user)
        out[role] = collect_role(client, role)
    # the unmasked DSMB's shell (its navbar holds the re-mask control instead)
    client = login_app.server.test_client()
    blinding.login(client, "dsmb")
    deps = client.get("/_dash-dependencies").get_json()
    dep = next(d for d in deps if "unmask-feedback" in d["output"])
    resp = client.post(
        "/_dash-update-component",
        json={
            "output": dep["output"],
            "outputs": [
                {"id": "unmask-feedback", "property": "children"},
                {"id": "unmask-done", "property": "data"},
            ],
            "inputs": [{"id": "unmask-confirm", "property": "n_clicks", "value": 1}],
            "state": [{"id": "unmask-reason", "property": "value", "value": "x" * 20}],
            "changedPropIds": ["unmask-confirm.n_clicks"],
        },
    )
    assert resp.status_code == 200
    unmasked = Collector(client, "dsmb-unmasked")
    unmasked.render("/")
    out["dsmb-unmasked"] = unmasked
    return out


# -------------------------------------------------------------------------------- tests ----


def test_cbid001_every_callback_id_and_property_is_in_a_rendered_layout(collected):
    layouts = [doc.tree for coll in collected.values() for doc in coll.documents]
    deps = collected["statistician"].deps
    assert len(deps) >= 15, "too few callbacks to mean anything"
    assert len(layouts) >= 100, f"only {len(layouts)} documents rendered"
    # the crawl reached the dynamic content: each cohort tab's panel, the patient timeline
    seen = components_by_id(layouts)
    for expected in (
        '{"name":"responders_d15","type":"cohort-graph"}',
        '{"name":"completeness","type":"cohort-graph"}',
        '{"name":"deaths","type":"cohort-grid"}',
        '{"name":"query","type":"cohort-csv"}',
        "patient-timeline",
        "ward-grid",
        "unmask-confirm",
        "remask-button",
        "audit-grid",
        "data-upload",
    ):
        assert expected in seen, f"the crawl never rendered {expected}"
    problems = check_callbacks(deps, layouts)
    assert problems == [], "callbacks refer to ids no layout renders:\n" + "\n".join(problems)


def test_cbid002_every_page_of_the_registry_was_rendered(collected):
    rendered = {
        doc.label.split(" ", 1)[1].split("?")[0].split(" + ")[0]
        for coll in collected.values()
        for doc in coll.documents
    }
    for page in dash.page_registry.values():
        template = page.get("path_template")
        if template:
            prefix = template.split("<", 1)[0]
            assert any(p.startswith(prefix) and p != page["path"] for p in rendered), template
        assert page["path"] in rendered, page["path"]
    assert set(collected) == {
        "demo",
        "clinician",
        "monitor",
        "dsmb",
        "dsmb-unmasked",
        "statistician",
    }


def test_cbid003_no_rendered_document_holds_an_id_twice(collected):
    problems = []
    for coll in collected.values():
        for doc in coll.documents:
            dups = duplicate_ids(doc.tree)
            if dups:
                problems.append(f"{doc.label}: {', '.join(dups)}")
    assert problems == [], "duplicate component ids:\n" + "\n".join(problems)


def test_cbid004_the_checker_reports_missing_ids_and_properties(collected):
    """The check can fail: fake callbacks with a dangling id, pattern and property."""
    layouts = [doc.tree for coll in collected.values() for doc in coll.documents]
    fake = [
        {
            "output": "cohort-drilldown.children",
            "inputs": [
                {"id": "cohort-tabs", "property": "active_tab"},
                {"id": "cohort-no-such-button", "property": "n_clicks"},
                {"id": '{"name":["ALL"],"type":"cohort-no-such-graph"}', "property": "clickData"},
            ],
            "state": [{"id": "cohort-tabs", "property": "activeTab"}],
        },
        {
            "output": "..cohort-gone.children...shell-url.href@0123abcd..",
            "inputs": [{"id": '{"name":["MATCH"],"type":"cohort-graph"}', "property": "clickData"}],
            "state": [],
        },
    ]
    problems = check_callbacks(fake, layouts)
    assert len(problems) == 4, problems
    assert "Input('cohort-no-such-button', 'n_clicks'): no component with this id" in problems[0]
    assert "cohort-no-such-graph" in problems[1]
    assert "matches this pattern" in problems[1]
    assert "State('cohort-tabs', 'activeTab'): Tabs has no property 'activeTab'" in problems[2]
    assert "Output('cohort-gone', 'children')" in problems[3]
    # the real callbacks pass, so it is the fakes that were caught
    assert check_callbacks(collected["statistician"].deps, layouts) == []


def test_cbid005_a_throwaway_app_with_a_dangling_callback_is_caught(monkeypatch):
    """End to end on a separate Dash app with suppress_callback_exceptions=True: Dash itself
    says nothing, the checker names the callback and the id."""
    from dash import Dash, Input, Output, html

    # keep the project's callbacks (Dash's global registry) out of this app and vice versa
    monkeypatch.setattr(dash._callback, "GLOBAL_CALLBACK_LIST", [])
    monkeypatch.setattr(dash._callback, "GLOBAL_CALLBACK_MAP", {})
    throwaway = Dash(__name__, suppress_callback_exceptions=True)
    throwaway.layout = html.Div([html.Button(id="btn"), html.Div(id="out")])

    @throwaway.callback(Output("out", "children"), Input("btn", "n_clicks"), Input("gone", "value"))
    def _cb(_n, _v):  # pragma: no cover - never called
        return ""

    client = throwaway.server.test_client()
    deps = client.get("/_dash-dependencies").get_json()
    layout = client.get("/_dash-layout").get_json()
    assert check_callbacks(deps, [layout]) == [
        "callback 'out.children': Input('gone', 'value'): no component with this id in any layout"
    ]
    assert duplicate_ids(layout) == []
    assert duplicate_ids([layout, layout]) == ["btn (2x)", "out (2x)"]


def test_cbid006_pattern_matching_rules():
    pattern = {"type": "cohort-graph", "name": ["ALL"]}
    assert pattern_matches(pattern, {"type": "cohort-graph", "name": "ae"})
    assert not pattern_matches(pattern, {"type": "cohort-grid", "name": "ae"})
    assert not pattern_matches(pattern, {"type": "cohort-graph", "name": "ae", "extra": 1})
    assert not pattern_matches(pattern, "cohort-graph")
    assert pattern_matches(
        {"type": "cohort-graph", "name": dash.ALL}, {"type": "cohort-graph", "name": 1}
    )
    assert split_output("..a.children...b.href@abc..") == [("a", "children"), ("b", "href")]
    assert split_output('{"name":["ALL"],"type":"g"}.figure') == [
        ({"name": ["ALL"], "type": "g"}, "figure")
    ]
