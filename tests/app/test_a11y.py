"""Accessibility: axe-core, run offline inside headless Chromium, on every page for every role.

axe-core is the pinned npm tarball that ``scripts/install-python`` unpacks under ``.cache/``
(never fetched at test time). Every page (ward, patient, each cohort tab, data, audit) is
loaded for every role (demo, and in login mode clinician, monitor, DSMB, statistician), waited
for until exactly what axe then reads is drawn (the page heading, the panel, every plotly graph,
no Dash callback pending), and must have 0 critical and 0 serious violations.
docs/accessibility.md lists the rules and the fixes.
"""

from __future__ import annotations

import json
import shutil
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait
from werkzeug.security import generate_password_hash

from components.cohort import PANELS
from tests.app.conftest import ROOT, chromium_available, run_gunicorn, save_screenshot

pytestmark = pytest.mark.e2e

AXE_JS = next(iter(sorted(ROOT.glob(".cache/axe-core-*/axe.min.js"))), None)
PASSWORD = "correct horse battery"
#: login-mode users, one per role (the clinician restricted to one site, as in test_blinding)
USERS = {
    "clinician": ("clin", ["SYN-S01"]),
    "monitor": ("mon", None),
    "dsmb": ("dsmb", None),
    "statistician": ("stat", None),
}
ROLES = ["demo", *USERS]
PATIENT = "/patient/SYN-01-0001"
PAGES = [
    "/",
    PATIENT,
    *(f"/cohort?tab={p.key}" for p in PANELS),
    "/data",
    "/audit",
]
BLOCKING = ("critical", "serious")

#: True once the page is drawn and quiet: no Dash callback pending, every dcc.Graph drawn by
#: plotly (its .main-svg), every ag-grid's rows or its "no rows" overlay present
SETTLED_JS = """
const content = document.querySelector('#_pages_content');
if (!content || !content.querySelector('h1')) return false;
if (document.querySelector('[data-dash-is-loading="true"]')) return false;
if (document.querySelector('._dash-loading')) return false;
for (const g of document.querySelectorAll('.dash-graph')) {
  if (!g.querySelector('.main-svg')) return false;
}
for (const grid of document.querySelectorAll('.ag-root-wrapper')) {
  if (!grid.querySelector('.ag-row, .ag-overlay-no-rows-center, .ag-overlay-no-rows-wrapper'))
    return false;
}
return true;
"""

AXE_RUN_JS = """
const done = arguments[arguments.length - 1];
axe.run(document, {resultTypes: ['violations']})
  .then(r => done(JSON.stringify(r.violations.map(v => ({
      id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.slice(0, 5).map(n => ({target: n.target, summary: n.failureSummary}))})))))
  .catch(e => done(JSON.stringify({error: String(e)})));
"""


def page_ready(driver, path: str, timeout: float = 60) -> None:
    """Wait for exactly what axe reads: the heading, the panel of a cohort tab, and a page that
    stays settled (no pending callback, graphs and grids drawn) over two polls."""
    wait = WebDriverWait(driver, timeout, poll_frequency=0.25)
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#_pages_content h1")))
    if path.startswith("/cohort?tab="):
        key = path.split("=", 1)[1]
        wait.until(
            ec.presence_of_element_located(
                (By.CSS_SELECTOR, f".cohort-panel-{key} .cohort-panel-title")
            )
        )
    if path == PATIENT:
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".dash-graph .main-svg")))
    if path == "/":
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".ag-row, .alert")))

    def settled(d) -> bool:
        try:
            if not d.execute_script(SETTLED_JS):
                return False
            time.sleep(0.3)
            return bool(d.execute_script(SETTLED_JS))
        except StaleElementReferenceException:
            return False

    wait.until(settled)


def run_axe(driver) -> list[dict]:
    assert AXE_JS is not None, "axe-core missing: run scripts/install-python (an install step)"
    if not driver.execute_script("return typeof axe !== 'undefined'"):
        driver.execute_script(AXE_JS.read_text())
    driver.set_script_timeout(120)
    out = json.loads(driver.execute_async_script(AXE_RUN_JS))
    assert isinstance(out, list), out
    return out


def make_browser(profile: Path, size: tuple[int, int] = (1366, 900)):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium")
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
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)
    driver.set_page_load_timeout(60)
    return driver


def sign_in(driver, base: str, user: str) -> None:
    driver.get(base + "/login")
    wait = WebDriverWait(driver, 30)
    wait.until(ec.presence_of_element_located((By.ID, "user"))).send_keys(user)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#_pages_content h1")))


@pytest.fixture(scope="module")
def login_server(demo_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("a11y")
    db = tmp / "demo-copy.sqlite"
    shutil.copy(demo_db_url.removeprefix("sqlite:///"), db)
    users = [
        {"user": u, "password_hash": generate_password_hash(PASSWORD), "role": r, "sites": s}
        for r, (u, s) in USERS.items()
    ]
    (tmp / "users.json").write_text(json.dumps(users))
    env = {
        "DATABASE_URL": f"sqlite:///{db}",
        "IMMUNOSEP_MODE": "login",
        "IMMUNOSEP_USERS_FILE": str(tmp / "users.json"),
    }
    with run_gunicorn(env, tmp) as server:
        yield server.url


def test_a11y000_every_page_declares_its_language(live_server):
    for path in ("/", PATIENT, "/cohort", "/data", "/audit", "/login"):
        with urllib.request.urlopen(live_server.url + path, timeout=30) as r:
            head = r.read(200).decode()
        assert '<html lang="en">' in head, (path, head)


@pytest.mark.parametrize("role", ROLES)
def test_a11y001_axe_finds_no_critical_or_serious_violation(
    role, live_server, login_server, tmp_path
):
    if not chromium_available():
        pytest.fail("chromium and chromedriver are required: run scripts/test")
    driver = make_browser(tmp_path / "profile")
    try:
        base = live_server.url if role == "demo" else login_server
        if role != "demo":
            sign_in(driver, base, USERS[role][0])
        failures = []
        for path in PAGES:
            driver.get(base + path)
            page_ready(driver, path)
            found = [v for v in run_axe(driver) if v["impact"] in BLOCKING]
            if found:
                name = f"a11y-{role}-{path.strip('/').replace('/', '-').replace('?', '-')}"
                save_screenshot(driver, name or f"a11y-{role}-ward")
            failures += [
                f"{role} {path}: [{v['impact']}] {v['id']}: {v['help']} at "
                + "; ".join(" ".join(n["target"]) for n in v["nodes"])
                for v in found
            ]
        assert failures == [], "\n".join(failures)
    finally:
        driver.quit()
