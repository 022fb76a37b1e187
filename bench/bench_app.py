"""Benchmark of the dashboard's server side (issues 6, 7 and 9).

``python -m bench.bench_app [--smoke] [--sizes 276 10000]`` prints a table and writes
``bench/results/app.json``. For each cohort size (synthetic demo database built once into
``bench/data/``):

* cohort aggregation (every cohort panel, unfiltered, for the three visibilities): cold
  (empty cache) and warm;
* server time of each page's main callbacks, measured in-process with the Flask test client
  (request in, JSON out; no browser), cold and warm, p50 / p95 over repeated calls:
  ward board (site switch), patient switch (the page render of another patient), patient day
  switch, cohort filter change (the active panel recomputed), cohort tab switch;
* start-up: from starting gunicorn to the first page served (existing database);
* resident memory per gunicorn worker after warm-up and a round of requests.

All figures come from one run; targets are printed beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"
RESULTS = Path(__file__).parent / "results" / "app.json"
#: randomised patients giving about this many analysed patients (276/281 ratio)
RANDOMISED_FOR = {276: 281, 2000: 2036, 10000: 10180, 100000: 101800}
#: from this size on, the generator charts each variable once a day (dense needs ~7 GB)
SPARSE_FROM = 50_000


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def database(n_analysed: int) -> tuple[str, float]:
    """The synthetic database of this size (built once); returns (url, build seconds)."""
    from core.db import ensure_schema, make_engine
    from core.io import build_demo_database

    DATA.mkdir(exist_ok=True)
    path = DATA / f"cohort-{n_analysed}.sqlite"
    url = f"sqlite:///{path}"
    if path.exists():
        return url, float("nan")
    started = time.perf_counter()
    engine = make_engine(url)
    ensure_schema(engine)
    build_demo_database(
        engine,
        n_randomised=RANDOMISED_FOR.get(n_analysed, n_analysed),
        charting="sparse" if n_analysed >= SPARSE_FROM else "dense",
    )
    engine.dispose()
    return url, time.perf_counter() - started


def callback_body(
    dep: dict[str, Any],
    inputs: dict[str, Any],
    state: dict[str, Any] | None = None,
    changed: str | None = None,
) -> dict[str, Any]:
    """The POST body the Dash renderer sends for one dependency of ``/_dash-dependencies``;
    ``inputs`` / ``state`` map "id.property" to values (absent = None)."""
    outputs = [
        {"id": o.split(".")[0], "property": o.split(".", 1)[1].split("@")[0]}
        for o in dep["output"].strip(".").split("...")
    ]

    def items(specs: list[dict[str, Any]], values: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            {
                "id": x["id"],
                "property": x["property"],
                "value": values.get(f"{x['id']}.{x['property']}"),
            }
            for x in specs
        ]

    first = dep["inputs"][0]
    return {
        "output": dep["output"],
        "outputs": outputs if dep["output"].startswith("..") else outputs[0],
        "inputs": items(dep["inputs"], inputs),
        "state": items(dep.get("state", []), state or {}),
        "changedPropIds": [changed or f"{first['id']}.{first['property']}"],
    }


#: the cohort callback that draws a tab's panel into its slot (components/pages/cohort.py
#: render_slot: one MATCH callback for every tab; a fragment of its output)
COHORT_SLOT = '"type":"cohort-slot"}.children'


def cohort_slot_body(
    deps: list[dict[str, Any]], tab: str, filters: dict[str, list[str]] | None = None
) -> dict[str, Any]:
    """The POST body with which the browser asks for ``tab``'s panel for ``filters`` (the
    slot's ask store written by the page's showTab, generation 1)."""
    dep = next(d for d in deps if COHORT_SLOT in d["output"])
    ask = {"type": "cohort-slot-ask", "tab": tab}
    values = cohort_inputs(tab, **(filters or {}))
    return {
        "output": dep["output"],
        "outputs": [
            {"id": {"type": "cohort-slot", "tab": tab}, "property": "children"},
            {"id": {"type": "cohort-slot-gen", "tab": tab}, "property": "data"},
        ],
        "inputs": [{"id": ask, "property": "data", "value": {"gen": 1}}],
        "state": [
            {"id": x["id"], "property": x["property"], "value": values[f"{x['id']}.value"]}
            for x in dep["state"]
        ],
        "changedPropIds": [json.dumps(ask, sort_keys=True, separators=(",", ":")) + ".data"],
    }


class Driver:
    """Drives Dash callbacks in-process, as the browser would (POST _dash-update-component)."""

    def __init__(self, app):
        self.client = app.server.test_client()
        self.deps = self.client.get("/_dash-dependencies").get_json()

    def dep(self, output_fragment: str) -> dict[str, Any]:
        return next(d for d in self.deps if output_fragment in d["output"])

    def call(
        self,
        output_fragment: str,
        inputs: dict[str, Any],
        state: dict[str, Any] | None = None,
        changed: str | None = None,
    ) -> tuple[float, Any]:
        dep = self.dep(output_fragment)
        body = callback_body(dep, inputs, state, changed)
        started = time.perf_counter()
        resp = self.client.post("/_dash-update-component", json=body)
        elapsed = time.perf_counter() - started
        if resp.status_code not in (200, 204):
            raise RuntimeError(
                f"{output_fragment}: HTTP {resp.status_code} {resp.get_data(as_text=True)[:300]}"
            )
        return elapsed, resp

    def post(self, what: str, body: dict[str, Any]) -> float:
        started = time.perf_counter()
        resp = self.client.post("/_dash-update-component", json=body)
        elapsed = time.perf_counter() - started
        if resp.status_code != 200:
            raise RuntimeError(
                f"{what}: HTTP {resp.status_code} {resp.get_data(as_text=True)[:300]}"
            )
        return elapsed

    def cohort_panel(self, tab: str, **filters: list[str]) -> float:
        """The browser asking for a tab's panel (a tab's first opening, or after a filter
        change)."""
        return self.post(f"cohort {tab}", cohort_slot_body(self.deps, tab, filters))

    def cohort_filter(self, tab: str, **filters: list[str]) -> float:
        """A filter change: the count, note and filter options, then the tab's panel."""
        counted, _ = self.call("cohort-count.children", cohort_inputs(tab, **filters))
        return counted + self.cohort_panel(tab, **filters)

    def render(self, path: str) -> float:
        pathname, _, search = path.partition("?")
        elapsed, _ = self.call(
            "_pages_content.children",
            {
                "_pages_location.pathname": pathname,
                "_pages_location.search": f"?{search}" if search else "",
            },
            changed="_pages_location.pathname",
        )
        return elapsed


def cohort_inputs(tab: str, **filters: list[str]) -> dict[str, Any]:
    values = {"cohort-tabs.active_tab": tab}
    for name in ("site", "country", "phenotype", "infection", "age", "sofa"):
        values[f"cohort-f-{name}.value"] = filters.get(name, [])
    return values


def measure_size(n: int, *, repeats: int) -> dict[str, Any]:
    import app as app_module
    from components import warmup
    from components.cohort import PANELS
    from components.data import cohort as cohort_data
    from components.data.keys import Context
    from components.server.auth import Principal, Role
    from components.server.cache import cache
    from settings import Settings

    url, build_s = database(n)
    cache_dir = Path(tempfile.mkdtemp(prefix="bench-cache-"))
    settings = Settings(database_url=url, cache_dir=str(cache_dir), secret_key="bench", mode="demo")
    app = app_module.create_app(settings)
    out: dict[str, Any] = {"patients": n, "database_build_s": build_s}
    drv = Driver(app)

    with app.server.test_request_context():
        patients = cohort_data.cohort_patients(Context.current())
    ids = patients["patient_id"].tolist()
    site_sizes = patients.groupby("site_id").size().sort_values(ascending=False)
    big_site = site_sizes.index[0]
    out["largest_site_patients"] = int(site_sizes.iloc[0])

    # --- cohort aggregation, cold then warm -----------------------------------------------
    def aggregate() -> float:
        started = time.perf_counter()
        with app.server.test_request_context():
            for role in (Role.MONITOR, Role.DSMB, Role.STATISTICIAN):
                ctx = Context.current(Principal(user="bench", role=role))
                for panel in PANELS:
                    panel.compute(ctx, cohort_data.CohortFilters())
        return time.perf_counter() - started

    def clear_cache() -> None:
        with app.server.app_context():
            cache.clear()

    clear_cache()
    out["aggregation_cold_s"] = aggregate()
    out["aggregation_warm_s"] = statistics.median(aggregate() for _ in range(3))

    # --- callbacks: cold (empty cache, first call) and warm (repeats) ---------------------
    tabs = (
        "primary",
        "flow",
        "baseline",
        "trajectories",
        "survival",
        "immune",
        "safety",
        "completeness",
    )
    phenos = (["MALS"], ["SIP"], [])
    cases = {
        "ward board: site switch (largest site)": lambda i: drv.call(
            "ward-grid.rowData",
            {"ward-site.value": big_site, "ward-day.value": "latest" if i % 2 else "3"},
        )[0],
        "patient switch (page render)": lambda i: drv.render(f"/patient/{ids[(i * 7) % len(ids)]}"),
        "patient day switch": lambda i: drv.call(
            "patient-timeline.figure",
            {"patient-day.value": 1 + i % 9, "patient-layers.value": ["support"]},
            {"patient-id.data": ids[i % 20]},
        )[0],
        "cohort filter change (primary)": lambda i: drv.cohort_filter(
            "primary", phenotype=phenos[i % 3]
        ),
        "cohort tab switch": lambda i: drv.cohort_panel(
            tabs[i % len(tabs)], **({"sofa": ["10-13"]} if i == 0 else {})
        ),
    }

    def warm_up() -> float:
        """What the server does after start or import (background thread): shared
        per-patient tables and the unfiltered cohort panels of the three roles."""
        clear_cache()
        started = time.perf_counter()
        with app.server.test_request_context():
            warmup.warm_up()
        return time.perf_counter() - started

    callbacks: dict[str, Any] = {}
    for name, fn in cases.items():
        clear_cache()
        cold = fn(0)
        warm_up()
        first = fn(0)  # a variant the warm-up did not precompute (a filter, a patient, a site)
        warm = [fn(i) for i in range(1, repeats + 1)]
        warm = [fn(i) for i in range(1, repeats + 1)]  # second round: every variant is cached
        callbacks[name] = {
            "cold_s": cold,
            "after_warm_up_s": first,
            "warm_p50_s": pct(warm, 0.5),
            "warm_p95_s": pct(warm, 0.95),
            "n_warm": len(warm),
        }
    out["warm_up_s"] = warm_up()
    out["callbacks"] = callbacks
    shutil.rmtree(cache_dir, ignore_errors=True)
    return out


def measure_server(n: int) -> dict[str, Any]:
    """Start-up to first page, and resident memory per worker after warm-up and requests."""
    import socket

    url, _ = database(n)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cache_dir = tempfile.mkdtemp(prefix="bench-srv-cache-")
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "PORT": str(port),
        "CACHE_DIR": cache_dir,
        "WEB_CONCURRENCY": "2",
        "SECRET_KEY": "bench",
        "IMMUNOSEP_MODE": "demo",
        "LOG_LEVEL": "WARNING",
    }
    env.pop("REDIS_URL", None)
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "app:server", "--config", "gunicorn.conf.py"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        first = None
        while time.perf_counter() - started < 120:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
                    if r.status == 200:
                        first = time.perf_counter() - started
                        break
            except OSError:
                time.sleep(0.05)
        warm_up: dict[str, Any] = {"done": False}
        while not warm_up.get("done") and time.perf_counter() - started < 1800:
            time.sleep(1.0)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=60) as r:
                warm_up = json.loads(r.read())["warm_up"]
        warm_done = time.perf_counter() - started
        for path in ("/", "/cohort", "/api/v1/cohort/summary", "/api/v1/patients"):
            for _ in range(2):  # both workers, most likely
                urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=600).read()
        time.sleep(2.0)
        children = subprocess.run(
            ["pgrep", "-P", str(proc.pid)], check=False, capture_output=True, text=True
        ).stdout.split()

        def status_mb(pid: str, field: str) -> float:
            lines = Path(f"/proc/{pid}/status").read_text().splitlines()
            return int(next(x.split()[1] for x in lines if x.startswith(field))) / 1024

        rss = [status_mb(pid, "VmRSS") for pid in children]
        peak = [status_mb(pid, "VmHWM") for pid in children]
        return {
            "patients": n,
            "startup_to_first_page_s": first,
            "startup_to_warm_up_done_s": warm_done,
            "warm_up": warm_up,
            "worker_rss_mb": rss,
            "worker_peak_rss_mb": peak,
        }
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(cache_dir, ignore_errors=True)


TARGETS = {
    "patient switch (page render)": ("warm_p95_s", 0.100, 10000),
    "cohort filter change (primary)": ("warm_p95_s", 0.300, 10000),
    "cohort tab switch": ("warm_p95_s", 0.300, 10000),
    "ward board: site switch (largest site)": ("warm_p95_s", 1.0, 10000),
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="276 patients, few repeats (CI)")
    parser.add_argument("--sizes", nargs="*", type=int, default=[276, 10000, 100000])
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args(argv)
    sizes = [276] if args.smoke else args.sizes
    repeats = 3 if args.smoke else args.repeats
    res: dict[str, Any] = {"machine": platform.platform(), "cpus": os.cpu_count(), "sizes": {}}
    for n in sizes:
        res["sizes"][str(n)] = measure_size(n, repeats=repeats)
        if not args.smoke:
            res["sizes"][str(n)]["server"] = measure_server(n)
    print(
        f"{'measure':<44}{'patients':>9}{'cold':>9}{'1st/warm':>10}{'warm p50':>10}"
        f"{'warm p95':>10}  target"
    )
    for n, r in res["sizes"].items():
        print(
            f"{'cohort aggregation (all panels, 3 roles)':<44}{n:>9}{r['aggregation_cold_s']:>8.3f}s"
            f"{r['aggregation_warm_s']:>9.3f}s{'':>20}  (background warm-up)"
        )
        print(f"{'warm-up after start/import (in-process)':<44}{n:>9}{r['warm_up_s']:>8.3f}s")
        for name, c in r["callbacks"].items():
            target = TARGETS.get(name)
            tgt = f"p95 <= {target[1] * 1000:.0f} ms at {target[2]:,}" if target else ""
            print(
                f"{name:<44}{n:>9}{c['cold_s']:>8.3f}s{c['after_warm_up_s']:>9.3f}s"
                f"{c['warm_p50_s']:>9.3f}s{c['warm_p95_s']:>9.3f}s  {tgt}"
            )
        if "server" in r:
            srv = r["server"]
            print(
                f"{'start-up to first page (gunicorn)':<44}{n:>9}{srv['startup_to_first_page_s']:>8.2f}s"
                f"{'':>29}  <= 5 s at 10,000"
            )
            print(
                f"{'start-up to warm-up done (gunicorn)':<44}{n:>9}"
                f"{srv['startup_to_warm_up_done_s']:>8.2f}s"
            )
            print(
                f"{'resident memory per worker (MB)':<44}{n:>9}  "
                f"{', '.join(f'{m:.0f}' for m in srv['worker_rss_mb'])}"
                f" (peak {', '.join(f'{m:.0f}' for m in srv['worker_peak_rss_mb'])})"
                "  <= 400 MB at 100,000"
            )
    print("cold: empty cache; 1st: first call of a variant the background warm-up did not compute")
    out = RESULTS.with_suffix(".smoke.json") if args.smoke else RESULTS
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
