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
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait
from werkzeug.security import generate_password_hash

from bench import chromium
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
    "/?day=3",
    PATIENT,
    *(f"/cohort?tab={p.key}" for p in PANELS),
    "/data",
    "/audit",
]
BLOCKING = ("critical", "serious")

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
    wait.until(
        ec.presence_of_element_located((By.CSS_SELECTOR, "#_pages_content h1")),
        f"{path}: no page heading",
    )
    if path.startswith("/cohort?tab="):
        key = path.split("=", 1)[1]
        wait.until(
            ec.presence_of_element_located(
                (By.CSS_SELECTOR, f"{chromium.shown_panel(key)} .cohort-panel-title")
            ),
            f"{path}: no panel",
        )
    if path == PATIENT:
        wait.until(
            ec.presence_of_element_located((By.CSS_SELECTOR, ".dash-graph .main-svg")),
            f"{path}: no chart",
        )

    drawn = chromium.drawn("#_pages_content h1")

    def settled(d) -> bool:
        try:
            return drawn(d)
        except StaleElementReferenceException:
            return False

    wait.until(chromium.steady(settled, polls=2), f"{path}: not settled")
    if path.startswith("/cohort"):
        # the charts and grids below the fold too (drawn when scrolled to): axe reads them all
        chromium.draw_lazy_parts(driver, timeout)
        # back to the top at once (Bootstrap makes scrolling smooth: animated otherwise)
        # (asked again on every poll: a chart drawn late may still move the page)
        wait.until(
            lambda d: (
                d.execute_script(
                    "window.scrollTo({top: 0, left: 0, behavior: 'instant'}); return window.scrollY"
                )
                == 0
            ),
            "not at the top",
        )
        wait.until(chromium.steady(settled, polls=2), f"{path}: not settled after scrolling")


def run_axe(driver) -> list[dict]:
    assert AXE_JS is not None, "axe-core missing: run scripts/install-python (an install step)"
    if not driver.execute_script("return typeof axe !== 'undefined'"):
        driver.execute_script(AXE_JS.read_text())
    driver.set_script_timeout(120)
    out = json.loads(driver.execute_async_script(AXE_RUN_JS))
    assert isinstance(out, list), out
    return out


def make_browser(profile: Path, size: tuple[int, int] = (1366, 900)):
    return chromium.start(profile, size)


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
        if role == "dsmb":  # the unmask dialog, open (it exists only for the DSMB)
            driver.get(base + "/cohort?tab=primary")
            page_ready(driver, "/cohort?tab=primary")
            WebDriverWait(driver, 30).until(
                ec.element_to_be_clickable((By.ID, "unmask-open"))
            ).click()
            dialog = WebDriverWait(driver, 30).until(
                ec.visibility_of_element_located((By.CSS_SELECTOR, ".modal.show[role=dialog]"))
            )
            # the dialog's accessible name: its title (assets/20_a11y.js)
            WebDriverWait(driver, 30).until(
                lambda d: (
                    dialog.get_attribute("aria-labelledby") or dialog.get_attribute("aria-label")
                )
            )
            labelled = dialog.get_attribute("aria-labelledby")
            assert driver.find_element(By.ID, labelled).text == "Unmask the allocation"
            failures += [
                f"dsmb unmask dialog: [{v['impact']}] {v['id']}: {v['help']}"
                for v in run_axe(driver)
                if v["impact"] in BLOCKING
            ]
        assert failures == [], "\n".join(failures)
    finally:
        driver.quit()


# --------------------------------------------------------------- pure checks, no browser ----

#: Machado, Oliveira & Fernandes 2009, severity 1.0, on linear RGB
CVD = {
    "deuteranopia": ((0.367322, 0.860646, -0.227968), (0.280085, 0.672501, 0.047413),
                     (-0.011820, 0.042940, 0.968881)),
    "protanopia": ((0.152286, 1.052583, -0.204868), (0.114503, 0.786281, 0.099216),
                   (-0.003882, -0.048116, 1.051998)),
    "tritanopia": ((1.255528, -0.076749, -0.178779), (-0.078411, 0.930809, 0.147602),
                   (0.004733, 0.691367, 0.303900)),
}  # fmt: skip


def _linear(hex_colour: str) -> list[float]:
    c = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    return [v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4 for v in c]


def _lab(rgb: list[float]) -> tuple[float, float, float]:
    r, g, b = rgb
    x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047
    y = 0.2126 * r + 0.7152 * g + 0.0722 * b
    z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883

    def f(t: float) -> float:
        return t ** (1 / 3) if t > 0.008856 else 7.787 * t + 16 / 116

    return 116 * f(y) - 16, 500 * (f(x) - f(y)), 200 * (f(y) - f(z))


def colour_distance(a: str, b: str, deficiency: str | None = None) -> float:
    """CIELAB distance (CIE76) of two colours as seen with ``deficiency`` (None: typical)."""
    la, lb = _linear(a), _linear(b)
    if deficiency:
        m = CVD[deficiency]
        la, lb = (
            [min(1.0, max(0.0, sum(m[i][j] * v[j] for j in range(3)))) for i in range(3)]
            for v in (la, lb)
        )
    return sum((p - q) ** 2 for p, q in zip(_lab(la), _lab(lb), strict=True)) ** 0.5


def contrast_ratio(a: str, b: str) -> float:
    def lum(c: str) -> float:
        r, g, bl = _linear(c)
        return 0.2126 * r + 0.7152 * g + 0.0722 * bl

    hi, lo = sorted((lum(a), lum(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_a11y002_the_simulation_separates_what_it_should():
    """The check itself: the former MALS red / pending orange pair collapses under
    deuteranopia (distance 16), black and white never do."""
    assert colour_distance("#CC3311", "#EE7733", "deuteranopia") < 20
    assert colour_distance("#000000", "#FFFFFF", "deuteranopia") > 99


@pytest.mark.parametrize("deficiency", [None, *CVD])
def test_a11y003_phenotype_colours_stay_apart_under_colour_vision_deficiencies(deficiency):
    from components.theme import PHENOTYPE_COLOURS
    from core.vocab import Phenotype

    # the pairs that share a chart (patient biomarker samples, cohort immune panel)
    named = [Phenotype.MALS, Phenotype.SIP, Phenotype.PENDING, Phenotype.NOT_ELIGIBLE]
    close = [
        (
            a.value,
            b.value,
            round(colour_distance(PHENOTYPE_COLOURS[a], PHENOTYPE_COLOURS[b], deficiency), 1),
        )
        for i, a in enumerate(named)
        for b in named[i + 1 :]
        if colour_distance(PHENOTYPE_COLOURS[a], PHENOTYPE_COLOURS[b], deficiency) < 25
    ]
    assert close == []
    mals_pending = colour_distance(
        PHENOTYPE_COLOURS[Phenotype.MALS], PHENOTYPE_COLOURS[Phenotype.PENDING], deficiency
    )
    assert mals_pending >= 40


def test_a11y004_phenotype_badges_have_readable_text():
    from components.theme import PHENOTYPE_COLOURS, PHENOTYPE_TEXT_COLOURS

    ratios = {
        ph.value: round(contrast_ratio(PHENOTYPE_COLOURS[ph], PHENOTYPE_TEXT_COLOURS[ph]), 2)
        for ph in PHENOTYPE_COLOURS
    }
    assert min(ratios.values()) >= 4.5, ratios


def test_a11y005_chart_text_alternative_states_the_numbers():
    import plotly.graph_objects as go

    from components.figures import describe_figure, empty_figure

    bars = go.Figure(
        [
            go.Bar(x=["Group A", "Group B"], y=[46, 31], name="Responders"),
            go.Scatter(x=list(range(1, 21)), y=[i * 0.5 for i in range(1, 21)], name="SOFA"),
        ]
    ).update_layout(title="Responders at day 9")
    text = describe_figure(bars)
    assert text == (
        "Responders at day 9. Responders: Group A: 46, Group B: 31. "
        "SOFA: 20 points from 1 to 20, values 0.5 to 10, last 10."
    )
    # the JSON a cached figure arrives as (plotly's typed arrays) reads the same
    assert describe_figure(json.loads(bars.to_json())) == text
    assert describe_figure(empty_figure("No samples for this patient")) == (
        "Chart. No samples for this patient."
    )
    box = go.Figure([go.Box(y=[1.0, 2.0, 3.0, 10.0], name="Ferritin")])
    assert describe_figure(box) == "Chart. Ferritin: 4 values, median 2.5, range 1 to 10."


def test_a11y006_biomarker_chart_has_a_legend_for_its_colours():
    import numpy as np
    import pandas as pd

    from components import figures

    samples = pd.DataFrame(
        {
            "study_day": [0, 3, 7],
            "ferritin_ng_ml": [6120.0, 3000.0, 900.0],
            "hla_dr_ab_per_cell": [np.nan, 9000.0, 4000.0],
            "phenotype": ["MALS", "pending_hla_dr", "MALS"],
        }
    )
    fig = figures.biomarker_trajectory(samples)
    legend = [t.name for t in fig.data if t.showlegend]
    assert legend == ["sample: MALS", "sample: Pending HLA-DR"]


def test_a11y007_user_facing_variable_names():
    from components.tables import variable_label

    assert variable_label("pao2") == "PaO2"
    assert variable_label("gcs_total") != "gcs_total"
    assert "_" not in variable_label("pf_ratio")


def test_a11y008_cohort_grids_fit_their_content_and_paginate():
    import pandas as pd

    from components.pages.cohort import GRID_PAGE_ROWS, grid

    frame = pd.DataFrame(
        {
            "Stratum": ["All strata", "MALS"],
            "g0": ["46/131 (35.1 %) [27.5–43.6]", "12/25 (48.0 %) [30.0–66.5]"],
            "mean_sofa": [9.029999732971191, 7.5],
            "phenotype": ["not_eligible", "MALS"],
            "n_mals_to_sip": [3, 4],
        }
    )
    g = grid("t", frame, {"g0": "Precision immunotherapy"})
    cols = {c["field"]: c for c in g.columnDefs}
    # the 27-character interval fits on two lines: 14 characters a line at 8 px + padding
    assert cols["g0"]["minWidth"] == 14 * 8 + 28
    # short cells: the longest word, here the header "Stratum" (7 characters)
    assert cols["Stratum"]["minWidth"] == 7 * 8 + 28
    from components.pages.cohort import column_min_width

    assert column_min_width(pd.Series(["anemia", "hemorrhage"]), "AESI") == 10 * 8 + 28
    assert column_min_width(pd.Series(["a"]), "n") == 80  # the floor
    assert column_min_width(pd.Series(["x" * 400])) == 260  # the ceiling
    assert cols["n_mals_to_sip"]["headerName"] == "MALS to SIP (n)"
    assert cols["g0"]["headerName"] == "Precision immunotherapy"
    assert "d3.format(',.2~f')" in cols["mean_sofa"]["valueFormatter"]["function"]
    assert "valueFormatter" not in cols["g0"]
    assert [r["phenotype"] for r in g.rowData] == ["Not eligible", "MALS"]
    assert "pagination" not in g.dashGridOptions
    long = pd.DataFrame({"patient_id": [f"SYN-{i:04d}" for i in range(GRID_PAGE_ROWS + 1)]})
    assert grid("deaths", long).dashGridOptions["paginationPageSize"] == GRID_PAGE_ROWS
    # room reserved before the rows are measured: header + one-line rows (+ the pager)
    assert g.style["minHeight"] == f"{50 + 2 * 42}px"
    assert grid("deaths", long).style["minHeight"] == f"{50 + GRID_PAGE_ROWS * 42 + 48}px"
