"""The cache warm-up (components/warmup.py) covers the demo role's cohort page.

Issue 19 found the demo role's cohort panels missing from the warm-up: the warm-up computed the
panels' data for the login roles, but the page serves the *rendered* panel
(``components.pages.cohort._panel_json``), which nobody precomputed, so the first demo visitor
after a start or an import paid for every figure. These tests run the real warm-up on the real
demo database and the real (file) cache, then serve the demo role's cohort page and count what
the cache is asked to store: a memoized function stores exactly when it computes (a miss), so
"nothing stored" is "nothing computed". docs/performance.md, docs/architecture.md (the cache).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import app as app_module
from bench.bench_app import callback_body, cohort_inputs, cohort_slot_body
from components import warmup
from components.cohort import DEFAULT_PANEL, PANELS
from components.data.keys import Context
from components.pages import cohort
from components.server.auth import DEMO_PRINCIPAL
from components.server.cache import cache
from settings import Settings


@pytest.fixture(scope="module")
def demo_app(demo_db_url: str, tmp_path_factory: pytest.TempPathFactory):
    settings = Settings(
        database_url=demo_db_url,
        cache_dir=str(tmp_path_factory.mktemp("warmcache")),
        secret_key="k",
        mode="demo",
    )
    return app_module.create_app(settings, bootstrap=False).server


class StoreRecorder:
    """Records every key the cache backend is asked to store (set, set_many, add), passing each
    call on to the real backend unchanged."""

    def __init__(self, backend: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        self.keys: list[str] = []
        for name in ("set", "set_many", "add"):
            original = getattr(backend, name)
            monkeypatch.setattr(backend, name, self._wrap(name, original))

    def _wrap(self, name: str, original: Any) -> Any:
        def recorded(*args: Any, **kwargs: Any) -> Any:
            if name == "set_many":
                mapping = args[0] if args else kwargs["mapping"]
                self.keys.extend(mapping)
            else:
                self.keys.append(args[0] if args else kwargs["key"])
            return original(*args, **kwargs)

        return recorded

    def computed(self) -> list[str]:
        """The stored keys that are results (not flask-caching's memoize version stamps)."""
        return [k for k in self.keys if not k.endswith("_memver")]


@pytest.fixture
def request_ctx(demo_app) -> Iterator[None]:
    with demo_app.test_request_context("/cohort"):
        yield


def serve_demo_cohort_page() -> None:
    """What the demo role's first visit to the cohort page computes: the page (filter bar,
    counts, the default tab's rendered panel), then every other tab as the tab callback does."""
    page = cohort.layout()
    assert "cohort-panel" in str(page.to_plotly_json())
    context = Context.current(DEMO_PRINCIPAL)
    for panel in PANELS:
        tree = cohort.cached_panel(panel.key, context, cohort.CohortFilters())
        assert tree["props"]["className"].endswith(f"cohort-panel-{panel.key}")


def panel_cache_keys() -> list[str]:
    """The cache keys of the demo role's rendered panels (unfiltered), as memoize makes them."""
    context = Context.current(DEMO_PRINCIPAL)
    fn = cohort._panel_json
    return [fn.make_cache_key(fn.uncached, context, p.key, cohort.CohortFilters()) for p in PANELS]


def test_warmup001_without_warm_up_the_demo_cohort_page_computes(request_ctx, monkeypatch):
    """The control: on a cold cache the same visit computes (stores) the rendered panels, so
    the next test's empty list is a finding, not a recorder that sees nothing."""
    cache.clear()
    recorder = StoreRecorder(cache.cache, monkeypatch)
    serve_demo_cohort_page()
    stored = set(recorder.computed())
    assert set(panel_cache_keys()) <= stored
    assert len(stored) > len(PANELS)  # and the page's counts, filter options, ...


def test_warmup002_after_warm_up_the_demo_cohort_page_computes_nothing(request_ctx, monkeypatch):
    cache.clear()
    timings = warmup.warm_up()
    assert f"render:{DEFAULT_PANEL.key}:demo" in timings, sorted(timings)
    recorder = StoreRecorder(cache.cache, monkeypatch)
    serve_demo_cohort_page()
    assert recorder.computed() == []


def test_warmup003_warm_up_renders_every_panel_for_the_demo_role(request_ctx):
    cache.clear()
    timings = warmup.warm_up()
    rendered = sorted(k for k in timings if k.startswith("render:"))
    assert rendered == sorted(f"render:{p.key}:demo" for p in PANELS)
    assert all(timings[k] >= 0 for k in rendered)
    assert warmup.status()["done"] is True


def test_warmup004_a_second_warm_up_of_the_same_version_does_nothing(request_ctx):
    cache.clear()
    assert warmup.warm_up() != {}
    assert warmup.warm_up() == {}


def filter_change_stores(client, monkeypatch: pytest.MonkeyPatch, state: str) -> list[str]:
    """The cache keys stored while the page's own callbacks answer a change of the immune-state
    filter to ``state``: the count, the publication badge and every tab's slot (HTTP, as the
    browser sends them)."""
    deps = client.get("/_dash-dependencies").get_json()
    values = cohort_inputs("primary", phenotype=[state])
    recorder = StoreRecorder(cache.cache, monkeypatch)
    bodies = [
        callback_body(next(d for d in deps if d["output"].lstrip(".").startswith(output)), values)
        for output in ("cohort-count.children", f"{cohort.PUBLICATION_BOX}.children")
    ]
    bodies += [cohort_slot_body(deps, p.key, {"phenotype": [state]}) for p in PANELS]
    for body in bodies:
        resp = client.post("/_dash-update-component", json=body)
        assert resp.status_code == 200, resp.get_data(as_text=True)[:300]
    monkeypatch.undo()
    return recorder.computed()


def test_warmup005_after_warm_up_an_immune_state_filter_computes_nothing(
    demo_app, request_ctx, monkeypatch
):
    """The most common filter change, one immune state: the control computes on a cold cache;
    after the warm-up neither MALS nor SIP computes anything (at 10,000 patients the Primary
    tab alone took ~1 s cold, docs/performance.md)."""
    client = demo_app.test_client()
    cache.clear()
    assert len(filter_change_stores(client, monkeypatch, "MALS")) > len(PANELS)
    cache.clear()
    timings = warmup.warm_up()
    assert {"filter:MALS:demo", "filter:SIP:demo"} <= set(timings), sorted(timings)
    assert filter_change_stores(client, monkeypatch, "MALS") == []
    assert filter_change_stores(client, monkeypatch, "SIP") == []
