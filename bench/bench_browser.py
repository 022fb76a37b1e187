"""Browser benchmark (issue 19): what a ward PC sees, measured in headless Chromium.

``python -m bench.bench_browser [--smoke] [--patients 276 10000] [--repeats 3]`` prints a table
and writes ``bench/results/browser.json``. For the ward, a patient page and each cohort tab:

- **drawn**: milliseconds from the start of the navigation (``performance.timeOrigin``) to the
  main content drawn (the page heading, the page's own element, every plotly graph with its
  ``.main-svg``, every grid with its rows, no Dash callback pending), checked in the page on
  every animation frame;
- **bytes**: bytes on the wire (Resource Timing ``transferSize`` of the document and of every
  script, style, layout and callback answer: compressed sizes, headers included);

each with an **empty** browser cache (cleared through the DevTools protocol) and a **warm**
one (the same page again). Beside them, in the same run and served the same way (gunicorn,
``app.install_compression``), the **floor**: a minimal Dash page with one plotly graph, the
least any Dash page with a chart costs. Then a **tab switch** and a **filter change** on the
cohort page: from the click to the new panel drawn. Targets (docs/performance.md): every page
<= 1.5x the floor, <= 3 MB on the wire with an empty cache, tab switch and filter change
<= 500 ms.

The app is measured with its server caches warm (the background warm-up done and every page
loaded once), so the figures are the browser's share: download, parsing, rendering.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench import chromium
from bench.bench_app import DATA, database

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results" / "browser.json"
#: the 10,000-patient database of bench_app, if it has been built (gitignored)
SHARED_DATA = ROOT / "bench" / "data"
TARGET_FLOOR_RATIO = 1.5
TARGET_EMPTY_BYTES = 3_000_000
TARGET_INTERACTION_MS = 500
PATIENT = "SYN-01-0001"

BYTES_JS = """
const nav = performance.getEntriesByType('navigation')[0];
let total = nav ? nav.transferSize : 0;
let body = nav ? nav.decodedBodySize : 0;
for (const r of performance.getEntriesByType('resource')) {
  total += r.transferSize; body += r.decodedBodySize;
}
return {wire: total, decoded: body, resources: performance.getEntriesByType('resource').length};
"""


def floor_server():
    """The floor: a minimal Dash page with one plotly graph, served like the app (same Dash
    options, the same compression and caching); ``gunicorn 'bench.bench_browser:floor_server()'``."""
    # deferred import: only the floor's gunicorn process builds this app
    import plotly.graph_objects as go
    from dash import Dash, dcc, html

    from app import INDEX_STRING, install_compression

    app = Dash(__name__, serve_locally=True, index_string=INDEX_STRING, title="floor")
    fig = go.Figure([go.Bar(x=["A", "B", "C"], y=[46, 31, 12], name="count")])
    app.layout = html.Div(
        [html.H1("Floor", className="floor-title"), dcc.Graph(id="floor-graph", figure=fig)]
    )
    install_compression(app.server)
    return app.server


def _wait_http(base: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(base + "/", timeout=2).read()
            return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{base} did not answer within {timeout} s")


@contextmanager
def gunicorn(app_spec: str, env_extra: dict[str, str], port: int, tmp: Path) -> Iterator[str]:
    env = {
        **os.environ,
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "WEB_CONCURRENCY": "2",
        # a fresh cache per server: with fixed --ports, one size never starts on the last's
        "CACHE_DIR": tempfile.mkdtemp(dir=tmp, prefix=f"cache-{port}-"),
        "SECRET_KEY": "bench",
        "LOG_LEVEL": "WARNING",
        **env_extra,
    }
    env.pop("REDIS_URL", None)
    cmd = [sys.executable, "-m", "gunicorn", app_spec, "--config", "gunicorn.conf.py"]
    cmd += ["--access-logfile", "/dev/null", "--no-control-socket"]
    log = (tmp / f"server-{port}.log").open("w")
    # its own process group: the master, its workers and the warm-up end together (a worker
    # left behind by a master killed after its graceful timeout kept serving the port)
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_http(base)
        yield base
    finally:
        stop_group(proc)


def stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM to the server's process group, SIGKILL to what is left after 20 s."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        pass
    except ProcessLookupError:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def wait_warm_up(base: str, timeout: float = 900) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with urllib.request.urlopen(base + "/healthz", timeout=60) as r:
            if json.loads(r.read())["warm_up"]["done"]:
                return
        time.sleep(0.5)
    raise TimeoutError("the warm-up did not finish")


def browser(profile: Path, size: tuple[int, int] = (1440, 900)):
    """Headless Chromium (bench/chromium.py, as the browser tests start it) with the DevTools
    network domain on (the benchmark empties the cache through it)."""
    driver = chromium.start(profile, size, timeout_s=120)
    driver.execute_cdp_cmd("Network.enable", {})
    return driver


def wait_drawn(driver, required: str, timeout_ms: int = 90_000) -> float:
    out = driver.execute_async_script(chromium.WAIT_DRAWN_JS, required, timeout_ms)
    if "error" in out:
        raise TimeoutError(f"{driver.current_url}: {out['error']}")
    return float(out["now"])


def load(driver, url: str, required: str, *, empty: bool, attempts: int = 2) -> dict[str, float]:
    """One navigation: ms to drawn and bytes on the wire, with an emptied or a warm cache.

    A navigation that never draws (seen once in ~100 on a machine at load 8: the lazily
    loaded plotly.js never arrived) is tried again and counted in ``retries``."""
    for attempt in range(attempts):
        driver.get("about:blank")
        if empty:
            driver.execute_cdp_cmd("Network.clearBrowserCache", {})
        driver.get(url)
        try:
            drawn = wait_drawn(driver, required, timeout_ms=45_000)
        except TimeoutError:
            if attempt == attempts - 1:
                raise
            continue
        got = driver.execute_script(BYTES_JS)
        return {"ms": drawn, "wire": got["wire"], "decoded": got["decoded"], "retries": attempt}
    raise AssertionError("unreachable")


def page_list(panels: list[tuple[str, str]]) -> list[tuple[str, str, str]]:
    """(name, path, the page's own element) for the ward, a patient and each cohort tab."""
    pages = [
        ("ward (study day 3)", "/?day=3", "#ward-grid .ag-row"),
        (f"patient {PATIENT}", f"/patient/{PATIENT}", "#_pages_content .main-svg"),
    ]
    pages += [
        (
            f"cohort: {label}",
            f"/cohort?tab={key}",
            f"{chromium.shown_panel(key)} .cohort-panel-title",
        )
        for key, label in panels
    ]
    return pages


def measure(
    driver, base: str, pages: list[tuple[str, str, str]], repeats: int
) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for name, path, required in pages:
        load(driver, base + path, required, empty=True)  # server caches and connection warm
        empty = [load(driver, base + path, required, empty=True) for _ in range(repeats)]
        warm = [load(driver, base + path, required, empty=False) for _ in range(repeats)]
        out[name] = {
            "empty_ms": statistics.median(r["ms"] for r in empty),
            "empty_bytes": statistics.median(r["wire"] for r in empty),
            "warm_ms": statistics.median(r["ms"] for r in warm),
            "warm_bytes": statistics.median(r["wire"] for r in warm),
            "decoded_bytes": statistics.median(r["decoded"] for r in empty),
            "retries": sum(r["retries"] for r in (*empty, *warm)),
        }
        print(f"   {name}: {out[name]}", flush=True)
    return out


#: ms from the click (``window.__t0``) to the end of the largest callback answer received after
#: it (Resource Timing of ``_dash-update-component``: the panel; the small answers of the URL
#: and of callbacks fired by the new panel's components are not it): the server's and the
#: network's share of an interaction; the rest, to the panel drawn, is the browser's
ANSWERED_JS = """
const t0 = window.__t0;
const answers = performance.getEntriesByType('resource')
  .filter(r => r.name.includes('_dash-update-component') && r.startTime >= t0)
  .sort((a, b) => b.decodedBodySize - a.decodedBodySize);
return answers.length ? answers[0].responseEnd - t0 : null;
"""


def click_and_time(driver, element, required: str, before: str | None = None) -> float:
    """ms from a click (a capturing listener notes its time in the page) to ``required``
    drawn and settled; ``before`` must disappear first (the old panel). The answer's share
    is noted in ``window.__answered`` (:data:`ANSWERED_JS`)."""
    driver.execute_script(
        "window.__t0 = null; performance.clearResourceTimings(); document.addEventListener('click', "
        "() => { if (window.__t0 === null) window.__t0 = performance.now(); }, "
        "{capture: true, once: true});"
    )
    element.click()
    if before:
        from selenium.webdriver.support.ui import WebDriverWait

        WebDriverWait(driver, 60, poll_frequency=0.02).until(
            lambda d: not d.execute_script(f"return !!document.querySelector({before!r})")
        )
    drawn = wait_drawn(driver, required)
    t0 = driver.execute_script("return window.__t0")
    driver.execute_script("window.__answered = (function () {" + ANSWERED_JS + "})()")
    return drawn - float(t0)


def answered(driver) -> float | None:
    """The last interaction's answer share (ms), None when no callback was asked."""
    value = driver.execute_script("return window.__answered")
    return None if value is None else float(value)


def interactions(driver, base: str, panels: list[tuple[str, str]], repeats: int) -> dict[str, Any]:
    """Tab switches (each tab from the previous one) and a filter change (immune state MALS
    on, then off: all patients again), the server cache warm."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    first_key = panels[0][0]
    driver.get(base + f"/cohort?tab={first_key}")
    wait_drawn(driver, f"{chromium.shown_panel(first_key)} .cohort-panel-title")
    tabs: dict[str, list[float]] = {}
    # a tab opened before (for the same filters) is kept on the page: the first round of
    # switches draws each tab, the later rounds show a kept one
    first: dict[str, float] = {}
    first_ahead: dict[str, float] = {}  # first openings of tabs drawn ahead before the click
    answers: list[float] = []  # ms from a first opening's click to its answers received
    for round_no in range(repeats):
        prev = first_key
        for key, label in [*panels[1:], panels[0]]:
            link = WebDriverWait(driver, 30).until(
                ec.element_to_be_clickable(
                    (By.XPATH, f"//a[contains(@class,'nav-link') and text()={json.dumps(label)}]")
                )
            )
            # a tab's first opening (the first tab, drawn with the page, is a return); drawn
            # ahead while the previous tab was looked at (the page was quiet long enough)
            opening = round_no == 0 and key != first_key
            ahead = opening and driver.execute_script(
                "return !!document.querySelector(arguments[0])",
                f".cohort-slot[hidden] .cohort-panel-{key} .cohort-panel-title",
            )
            ms = click_and_time(
                driver,
                link,
                f"{chromium.shown_panel(key)} .cohort-panel-title",
                chromium.shown_panel(prev),
            )
            if ahead:
                first_ahead[key] = ms
            elif opening:
                first[key] = ms
            else:
                tabs.setdefault(key, []).append(ms)
            if round_no == 0 and (share := answered(driver)) is not None:
                answers.append(share)  # the server draws a tab at its first opening only
            prev = key
    filters: list[float] = []
    filter_answers: list[float] = []
    for _ in range(repeats):
        for _toggle in ("on", "off"):  # a multi-select: MALS on, then off again (all)
            old = driver.find_element(By.ID, "cohort-count").text
            if not driver.find_elements(By.CSS_SELECTOR, "[role=listbox]"):
                WebDriverWait(driver, 30).until(
                    ec.element_to_be_clickable((By.ID, "cohort-f-phenotype"))
                ).click()
            item = WebDriverWait(driver, 30).until(
                ec.element_to_be_clickable(
                    (By.XPATH, "//*[@role='option'][.//input[@value='MALS']]")
                )
            )
            driver.execute_script(
                "window.__t0 = null; performance.clearResourceTimings(); document.addEventListener('click', "
                "() => { if (window.__t0 === null) window.__t0 = performance.now(); }, "
                "{capture: true, once: true});"
            )
            item.click()
            WebDriverWait(driver, 60, poll_frequency=0.02).until(
                lambda d, old=old: d.find_element(By.ID, "cohort-count").text != old
            )
            drawn = wait_drawn(driver, f"{chromium.shown_panel(first_key)} .cohort-panel-title")
            filters.append(drawn - float(driver.execute_script("return window.__t0")))
            if (share := driver.execute_script(ANSWERED_JS)) is not None:
                filter_answers.append(float(share))
    every_return = [ms for v in tabs.values() for ms in v] or [math.nan]
    every_first = list(first.values()) or [math.nan]
    return {
        # a tab's first opening (drawn) and going back to it (kept: shown)
        "tab_switch_first_ms": first,
        "tab_switch_first_drawn_ahead_ms": first_ahead,
        "tab_switch_first_p50_ms": percentile(every_first, 50),
        "tab_switch_first_p95_ms": percentile(every_first, 95),
        "tab_switch_ms": {k: statistics.median(v) for k, v in tabs.items()},
        "tab_switch_samples": tabs,
        "tab_switch_p50_ms": percentile(every_return, 50),
        "tab_switch_p95_ms": percentile(every_return, 95),
        "filter_change_ms": statistics.median(filters),
        "filter_change_max_ms": max(filters),
        "filter_change_samples": filters,
        "filter_change_p50_ms": percentile(filters, 50),
        "filter_change_p95_ms": percentile(filters, 95),
        # the server's and the network's share: click to the last callback answer received
        "tab_switch_answered_p50_ms": percentile(answers, 50) if answers else None,
        "filter_change_answered_p50_ms": percentile(filter_answers, 50) if filter_answers else None,
        **drawn_ahead(driver, base, panels),
        "lazy_part_ms": lazy_part_times(driver, base, panels),
    }


def drawn_ahead(driver, base: str, panels: list[tuple[str, str]]) -> dict[str, Any]:
    """A reader on the first tab for a while: the page draws the other tabs ahead, hidden,
    while it is quiet (assets/35_cohort_tabs.js); then each tab is opened once. Seconds from
    the first tab drawn to every tab drawn ahead, and ms per tab opened afterwards."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    first_key = panels[0][0]
    driver.get(base + f"/cohort?tab={first_key}")
    start = time.monotonic()
    wait_drawn(driver, f"{chromium.shown_panel(first_key)} .cohort-panel-title")
    WebDriverWait(driver, 120, poll_frequency=0.1).until(
        lambda d: d.execute_script(chromium.ALL_DRAWN_JS), "the tabs were not drawn ahead"
    )
    all_drawn_s = time.monotonic() - start
    opened: dict[str, float] = {}
    prev = first_key
    for key, label in panels[1:]:
        link = driver.find_element(
            By.XPATH, f"//a[contains(@class,'nav-link') and text()={json.dumps(label)}]"
        )
        opened[key] = click_and_time(
            driver,
            link,
            f"{chromium.shown_panel(key)} .cohort-panel-title",
            chromium.shown_panel(prev),
        )
        prev = key
    return {"ahead_all_drawn_s": all_drawn_s, "tab_switch_ahead_ms": opened}


def percentile(values: list[float], q: int) -> float:
    """The q-th percentile (linear between the samples, as numpy's default)."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


#: scrolls a lazily drawn chart (arguments[0]: its slot's DOM id) into view and resolves with
#: the ms until it is drawn and the page quiet again
SCROLL_TO_LAZY_JS = (
    chromium.DRAWN_PREDICATE_JS
    + """
const slot = document.getElementById(arguments[0]);
const done = arguments[arguments.length - 1];
const t0 = performance.now();
slot.scrollIntoView({block: 'center', behavior: 'instant'});
function tick() {
  if (slot.querySelector('.main-svg, .ag-root-wrapper') && pageDrawn(null)) {
    done({ms: performance.now() - t0}); return;
  }
  if (performance.now() - t0 > 60000) { done({error: 'lazy part not drawn'}); return; }
  requestAnimationFrame(tick);
}
requestAnimationFrame(tick);
"""
)


def lazy_part_times(driver, base: str, panels: list[tuple[str, str]]) -> dict[str, list[float]]:
    """Per tab, ms from scrolling each chart or grid drawn lazily into view to it drawn (empty
    for a build without lazy parts, or tabs with one section)."""
    out: dict[str, list[float]] = {}
    for key, _label in panels:
        driver.get(base + f"/cohort?tab={key}")
        wait_drawn(driver, f"{chromium.shown_panel(key)} .cohort-panel-title")
        slots = driver.execute_script(
            "return Array.from(document.querySelectorAll(arguments[0])).map(e => e.id)",
            chromium.LAZY_PENDING,
        )
        for dom_id in slots:
            got = driver.execute_async_script(SCROLL_TO_LAZY_JS, dom_id)
            if "error" in got:
                raise TimeoutError(f"{key}: {got['error']}")
            out.setdefault(key, []).append(float(got["ms"]))
    return out


def run(
    patients: int,
    repeats: int,
    panels: list[tuple[str, str]],
    tmp: Path,
    shared_data: Path = SHARED_DATA,
    ports: tuple[int, int] | None = None,
) -> dict[str, Any]:
    shared = shared_data / f"cohort-{patients}.sqlite"
    local = DATA / f"cohort-{patients}.sqlite"
    if shared.exists() and not local.exists():
        DATA.mkdir(exist_ok=True)
        local.symlink_to(shared)
    url, _ = database(patients)
    app_port, floor_port = ports or free_ports(2)
    env = {"DATABASE_URL": url, "IMMUNOSEP_MODE": "demo"}
    with (
        gunicorn("app:server", env, app_port, tmp) as base,
        gunicorn("bench.bench_browser:floor_server()", {}, floor_port, tmp) as floor,
    ):
        wait_warm_up(base)
        driver = browser(tmp / f"profile-{patients}")
        try:
            pages = page_list(panels)
            print(f"-- {patients} patients: floor", flush=True)
            floor_result = measure(driver, floor, [("floor", "/", ".main-svg")], repeats)
            print(f"-- {patients} patients: pages", flush=True)
            page_results = measure(driver, base, pages, repeats)
            inter = interactions(driver, base, panels, repeats)
        finally:
            driver.quit()
    return {"floor": floor_result["floor"], "pages": page_results, **inter}


def free_ports(n: int) -> list[int]:
    import socket

    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def verdicts(result: dict[str, Any]) -> dict[str, bool]:
    floor = result["floor"]["empty_ms"]
    return {
        "pages_within_1.5x_floor": all(
            p["empty_ms"] <= TARGET_FLOOR_RATIO * floor for p in result["pages"].values()
        ),
        "pages_within_3MB": all(
            p["empty_bytes"] <= TARGET_EMPTY_BYTES for p in result["pages"].values()
        ),
        "tab_switch_after_drawn_ahead_within_500ms": all(
            v <= TARGET_INTERACTION_MS for v in result["tab_switch_ahead_ms"].values()
        ),
        # None: every tab was drawn ahead before it was first opened
        "tab_switch_first_within_500ms": all(
            v <= TARGET_INTERACTION_MS for v in result["tab_switch_first_ms"].values()
        )
        if result["tab_switch_first_ms"]
        else None,
        # None: one round only (nothing to go back to)
        "tab_switch_return_within_500ms": all(
            v <= TARGET_INTERACTION_MS for v in result["tab_switch_ms"].values()
        )
        if result["tab_switch_ms"]
        else None,
        "filter_change_within_500ms": result["filter_change_ms"] <= TARGET_INTERACTION_MS,
    }


def table(patients: int, result: dict[str, Any]) -> str:
    floor = result["floor"]
    rows = [
        f"{patients} patients          empty cache            warm cache        x floor",
        f"{'page':<34}{'ms':>7}{'KB wire':>10}{'ms':>9}{'KB wire':>10}{'(empty)':>9}",
    ]

    def line(name: str, r: dict[str, float]) -> str:
        return (
            f"{name:<34}{r['empty_ms']:>7.0f}{r['empty_bytes'] / 1000:>10.0f}"
            f"{r['warm_ms']:>9.0f}{r['warm_bytes'] / 1000:>10.0f}"
            f"{r['empty_ms'] / floor['empty_ms']:>9.2f}"
        )

    rows.append(line("floor (one plotly graph)", floor))
    rows += [line(name, r) for name, r in result["pages"].items()]
    rows.append(
        "tab switch ms, first opening (drawn at the click): "
        + ", ".join(f"{k} {v:.0f}" for k, v in result["tab_switch_first_ms"].items())
    )
    if result["tab_switch_first_drawn_ahead_ms"]:
        rows.append(
            "tab switch ms, first opening of a tab drawn ahead while the one before was read: "
            + ", ".join(
                f"{k} {v:.0f}" for k, v in result["tab_switch_first_drawn_ahead_ms"].items()
            )
        )
    rows.append(
        f"tab switch ms, after the tabs were drawn ahead ({result['ahead_all_drawn_s']:.1f} s "
        "after the page): "
        + ", ".join(f"{k} {v:.0f}" for k, v in result["tab_switch_ahead_ms"].items())
    )
    rows.append(
        "tab switch ms, back to a tab (kept), median per tab: "
        + ", ".join(f"{k} {v:.0f}" for k, v in result["tab_switch_ms"].items())
    )
    rows.append(
        f"filter change ms: median {result['filter_change_ms']:.0f}, "
        f"max {result['filter_change_max_ms']:.0f}"
    )
    rows.append(
        f"tab switch ms, first opening p50 {result['tab_switch_first_p50_ms']:.0f}, "
        f"p95 {result['tab_switch_first_p95_ms']:.0f} ({len(result['tab_switch_first_ms'])}); "
        f"back to a tab p50 {result['tab_switch_p50_ms']:.0f}, "
        f"p95 {result['tab_switch_p95_ms']:.0f}"
        f" ({sum(len(v) for v in result['tab_switch_samples'].values())} switches); "
        f"filter change ms p50 {result['filter_change_p50_ms']:.0f}, "
        f"p95 {result['filter_change_p95_ms']:.0f} ({len(result['filter_change_samples'])} changes)"
    )
    if result.get("tab_switch_answered_p50_ms") is not None:
        rows.append(
            "of which the panel's answer (click to it received), p50: first opening "
            f"{result['tab_switch_answered_p50_ms']:.0f} ms, filter change "
            f"{result['filter_change_answered_p50_ms']:.0f} ms"
        )
    lazy = [ms for v in result["lazy_part_ms"].values() for ms in v]
    if lazy:
        rows.append(
            f"lazy chart or grid, scrolled into view to drawn, ms: p50 {percentile(lazy, 50):.0f}, "
            f"p95 {percentile(lazy, 95):.0f} ({len(lazy)} parts)"
        )
    rows.append("targets met: " + ", ".join(f"{k} {v}" for k, v in verdicts(result).items()))
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    from components.cohort import PANELS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="one tab, one repeat (CI)")
    parser.add_argument("--patients", type=int, nargs="*", default=[276, 10000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--shared-data",
        type=Path,
        default=SHARED_DATA,
        help="folder of prebuilt bench databases (cohort-N.sqlite), linked into bench/data",
    )
    parser.add_argument(
        "--ports",
        type=int,
        nargs=2,
        metavar=("APP", "FLOOR"),
        help="the two loopback ports of the servers (default: two free ones)",
    )
    args = parser.parse_args(argv)
    panels = [(p.key, p.label) for p in PANELS]
    sizes = args.patients
    repeats = args.repeats
    if args.smoke:
        panels, sizes, repeats = panels[:2], [276], 1
    else:
        sizes = [
            n
            for n in sizes
            if n == 276
            or (DATA / f"cohort-{n}.sqlite").exists()
            or (args.shared_data / f"cohort-{n}.sqlite").exists()
        ]
    tmp = Path(tempfile.mkdtemp(prefix="bench-browser-"))
    results: dict[str, Any] = {}
    for n in sizes:
        started = time.perf_counter()
        results[str(n)] = run(
            n, repeats, panels, tmp, args.shared_data, tuple(args.ports) if args.ports else None
        )
        results[str(n)]["verdicts"] = verdicts(results[str(n)])
        results[str(n)]["seconds"] = round(time.perf_counter() - started, 1)
        results[str(n)]["repeats"] = repeats
        print(table(n, results[str(n)]), flush=True)
    payload = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "repeats": repeats,
        "results": results,
    }
    target = RESULTS.with_suffix(".smoke.json") if args.smoke else RESULTS
    if target.exists():  # a run of one size keeps the other sizes' figures
        kept = json.loads(target.read_text()).get("results", {})
        payload["results"] = {**{k: v for k, v in kept.items() if k not in results}, **results}
    target.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {target.relative_to(ROOT)}")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
