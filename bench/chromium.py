"""Headless Chromium for the browser benchmark and the browser tests: one set of options, one
way to start it, one "page drawn" predicate (issue 19).

``bench.bench_browser``, ``tests/app/conftest.py`` (the ``browser`` fixture) and
``tests/app/test_a11y.py`` start Chromium through :func:`start`; tests wait with
:func:`drawn` (a WebDriverWait condition) instead of sleeping, the benchmark times the same
predicate on every animation frame (:data:`WAIT_DRAWN_JS`).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: the window of a ward PC's browser unless a caller asks for another
DEFAULT_SIZE = (1366, 768)

#: a predicate body over ``required`` (a CSS selector or null): the page is drawn and quiet:
#: ``required`` present, no Dash callback pending, every dcc.Graph drawn by plotly (its
#: ``.main-svg``), every ag-grid's rows or its "no rows" overlay present. Charts the cohort page
#: draws lazily (``.cohort-lazy`` placeholders, drawn when scrolled into view) are not graphs
#: until then, so they do not hold the page up.
DRAWN_PREDICATE_JS = """
function pageDrawn(required) {
  if (required && !document.querySelector(required)) return false;
  if (document.querySelector('[data-dash-is-loading="true"], ._dash-loading')) return false;
  for (const g of document.querySelectorAll('.dash-graph')) {
    if (!g.querySelector('.main-svg')) return false;
  }
  for (const grid of document.querySelectorAll('.ag-root-wrapper')) {
    if (!grid.querySelector('.ag-row, .ag-overlay-no-rows-center, .ag-overlay-no-rows-wrapper'))
      return false;
  }
  return true;
}
"""

#: synchronous: ``return`` whether the page is drawn (arguments[0]: the required selector)
DRAWN_JS = DRAWN_PREDICATE_JS + "return pageDrawn(arguments[0]);"

#: asynchronous: resolves with performance.now() on the first animation frame at which the page
#: is drawn (arguments: required selector, timeout in ms), or with an error after the timeout
WAIT_DRAWN_JS = (
    DRAWN_PREDICATE_JS
    + """
const [required, timeout] = [arguments[0], arguments[1]];
const done = arguments[arguments.length - 1];
const started = performance.now();
function tick() {
  if (pageDrawn(required)) { done({now: performance.now()}); return; }
  if (performance.now() - started > timeout) {
    done({error: 'timeout waiting for ' + required}); return;
  }
  requestAnimationFrame(tick);
}
tick();
"""
)


def chrome_options(
    profile: Path, size: tuple[int, int] = DEFAULT_SIZE, *, console_log: bool = False
) -> Any:
    """Options of headless Chromium: no sandbox or GPU (containers), no background traffic,
    a window of ``size`` and a private profile folder; ``console_log`` keeps the browser
    console for ``driver.get_log("browser")``."""
    from selenium import webdriver

    chromium = shutil.which("chromium")
    if chromium is None:
        raise RuntimeError("chromium is not installed: run scripts/test, which installs it")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--window-size={size[0]},{size[1]}",
        f"--user-data-dir={profile}",
    ):
        opts.add_argument(arg)
    if console_log:
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return opts


def available() -> bool:
    return bool(shutil.which("chromium") and shutil.which("chromedriver"))


def start(
    profile: Path,
    size: tuple[int, int] = DEFAULT_SIZE,
    *,
    console_log: bool = False,
    timeout_s: int = 60,
) -> Any:
    """A selenium driver of headless Chromium (:func:`chrome_options`); pages and scripts
    time out after ``timeout_s``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    driver_path = shutil.which("chromedriver")
    if driver_path is None:
        raise RuntimeError("chromedriver is not installed: run scripts/test, which installs it")
    driver = webdriver.Chrome(
        service=Service(driver_path),
        options=chrome_options(profile, size, console_log=console_log),
    )
    driver.set_page_load_timeout(timeout_s)
    driver.set_script_timeout(timeout_s)
    return driver


def drawn(required: str | None = None) -> Callable[[Any], bool]:
    """A WebDriverWait condition: ``required`` (a CSS selector) present and the page drawn and
    quiet (:data:`DRAWN_PREDICATE_JS`)."""

    def condition(driver: Any) -> bool:
        return bool(driver.execute_script(DRAWN_JS, required))

    return condition


def steady(condition: Callable[[Any], bool], polls: int = 2) -> Callable[[Any], bool]:
    """A WebDriverWait condition: ``condition`` held on ``polls`` consecutive polls (a page
    between two callbacks can look drawn for one poll); the wait's ``poll_frequency`` sets
    the spacing."""
    streak = [0]

    def check(driver: Any) -> bool:
        streak[0] = streak[0] + 1 if condition(driver) else 0
        return streak[0] >= polls

    return check


def still(script: str, *args: Any, polls: int = 3) -> Callable[[Any], bool]:
    """A WebDriverWait condition: the value ``script`` returns (a scroll position, an element's
    box) was the same on ``polls`` consecutive polls: a scroll or a transition has ended."""
    seen: list[Any] = []

    def check(driver: Any) -> bool:
        seen.append(driver.execute_script(script, *args))
        return len(seen) >= polls and all(v == seen[-1] for v in seen[-polls:])

    return check


def settle(driver: Any, required: str | None = None, timeout_s: float = 30) -> None:
    """Wait until ``required`` is present and the page drawn and quiet on three polls in a row
    (:func:`drawn`, :func:`steady`), 0.2 s apart: what a test then reads or photographs is
    final."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout_s, poll_frequency=0.2).until(
        steady(drawn(required), polls=3), f"page not drawn and quiet ({required or 'any'})"
    )


#: a box of an element, for :func:`still` (null when it is absent)
RECT_JS = (
    "const e = document.querySelector(arguments[0]); if (!e) return null;"
    "const r = e.getBoundingClientRect(); return [r.x, r.y, r.width, r.height];"
)
SCROLL_JS = "return [window.scrollX, window.scrollY];"


#: the cohort tab slot on screen (every opened tab keeps its slot, hidden while another shows)
SHOWN_SLOT = ".cohort-slot:not([hidden])"


def shown_panel(key: str) -> str:
    """The selector of the cohort tab ``key``'s panel when it is the one on screen (a tab
    opened before stays on the page, hidden)."""
    return f"{SHOWN_SLOT} .cohort-panel-{key}"


#: every cohort tab slot of the page holds its panel (drawn ahead or opened)
ALL_DRAWN_JS = """
const slots = Array.from(document.querySelectorAll('.cohort-slot-body'));
return slots.length > 0 && slots.every(s => s.firstElementChild);
"""

#: the cohort page's lazily drawn charts and grids (of the tab on screen) still waiting
LAZY_PENDING = f"{SHOWN_SLOT} .cohort-lazy[data-lazy-state='pending']"
#: the lazily drawn parts on screen not drawn yet (waiting, or asked for and on their way)
LAZY_UNDRAWN = f"{SHOWN_SLOT} .cohort-lazy:not([data-lazy-state='drawn'])"


def draw_lazy_parts(driver: Any, timeout_s: float = 60) -> int:
    """Scroll every lazily drawn chart or grid of the cohort page into view, one after the
    other, and wait for each to be drawn; returns how many there were. Tests that read or
    click a chart or grid below the fold call this first, as a reader scrolling down would."""
    from selenium.webdriver.support.ui import WebDriverWait

    names = driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0])).map(e => e.id)", LAZY_UNDRAWN
    )
    for dom_id in names:
        driver.execute_script(
            "const e = document.getElementById(arguments[0]);"
            # instant: Bootstrap's smooth scrolling would still be moving the page later
            "if (e) e.scrollIntoView({block: 'center', behavior: 'instant'});",
            dom_id,
        )
        WebDriverWait(driver, timeout_s, poll_frequency=0.1).until(
            lambda d, i=dom_id: d.execute_script(
                "const e = document.getElementById(arguments[0]);"
                "return !!e && !!e.querySelector('.main-svg, .ag-root-wrapper');",
                i,
            ),
            f"lazy part {dom_id} not drawn after scrolling to it",
        )
    return len(names)
