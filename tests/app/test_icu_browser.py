"""ICU pages in headless Chromium (issue 6): ward board -> click a patient -> timeline, badge
and endpoint card show core's numbers for a known synthetic patient; deep link; day switch."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from bench import chromium
from tests.app.conftest import save_screenshot

pytestmark = pytest.mark.e2e
PATIENT = "SYN-01-0001"


@pytest.fixture(scope="module")
def truth(demo_db_url):
    """What core says about the patient, computed without the UI."""
    from core.db import make_engine
    from core.endpoints import sofa_response
    from core.phenotype import classify
    from core.repository import load_daily_sofa, load_patients
    from core.rules import SofaRules

    engine = make_engine(demo_db_url)
    patients = load_patients(engine)
    p = patients[patients["patient_id"] == PATIENT].iloc[0]
    daily = load_daily_sofa(engine, rules_key=SofaRules().key(), patient_ids=[PATIENT])
    resp = sofa_response(
        daily,
        pd.DataFrame(
            {
                "patient_id": [PATIENT],
                "death_study_day": [
                    float(p["death_study_day"]) if pd.notna(p["death_study_day"]) else float("nan")
                ],
            }
        ),
    ).iloc[0]
    return {
        "phenotype": classify(p["ferritin_ng_ml"], p["hla_dr_ab_per_cell"]),
        "baseline": int(resp["baseline_sofa"]),
        "mean": float(resp["mean_followup_sofa"]),
        "day3_total": int(daily.loc[daily["study_day"] == 3, "sofa_total"].iloc[0]),
    }


def wait_for(driver, css: str, timeout: float = 30):
    return WebDriverWait(driver, timeout).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, css))
    )


def test_icu_e2e001_ward_click_opens_patient_with_core_numbers(browser, live_server, truth):
    browser.set_window_size(1366, 768)
    browser.get(live_server.url + "/?site=SYN-S01&day=latest")
    chromium.settle(browser, ".ag-row")
    save_screenshot(browser, "icu-ward-1366")
    cell = WebDriverWait(browser, 30).until(
        ec.element_to_be_clickable(
            (By.XPATH, f"//div[@col-id='patient_link']//a[normalize-space()='{PATIENT}']")
        )
    )
    cell.click()
    WebDriverWait(browser, 30).until(ec.url_contains(f"/patient/{PATIENT}"))
    badge = wait_for(browser, "#patient-badge")
    assert badge.text == {"MALS": "MALS", "SIP": "SIP"}.get(
        truth["phenotype"].phenotype.value, badge.text
    )
    assert truth["phenotype"].reason in browser.find_element(By.TAG_NAME, "body").text
    wait_for(browser, "#patient-timeline .main-svg")
    bars = browser.find_elements(By.CSS_SELECTOR, "#patient-timeline g.barlayer g.trace")
    assert len(bars) >= 6  # six organ traces (plus the support lanes)
    card = browser.find_element(By.ID, "patient-endpoint").text
    assert f"Baseline SOFA (day 1): {truth['baseline']}" in card
    assert f"{truth['mean']:.2f}" in card
    chromium.settle(browser, "#patient-timeline .main-svg")
    save_screenshot(browser, "icu-patient-1366")
    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert severe == []


def test_icu_e2e002_deep_link_and_day_switch(browser, live_server, truth):
    browser.set_window_size(1920, 1080)
    browser.get(live_server.url + f"/patient/{PATIENT}?day=3&layers=support,sofa2")
    why = wait_for(browser, "#patient-why")
    WebDriverWait(browser, 30).until(
        lambda d: "day 3" in d.find_element(By.ID, "patient-why").text.lower()
    )
    assert "Respiration" in why.text
    # the timeline is drawn by its own callback, possibly after the "why" panel: wait for it
    WebDriverWait(browser, 30, poll_frequency=0.1).until(
        lambda d: "SOFA-2 total" in d.find_element(By.ID, "patient-timeline").text,
        "timeline without its SOFA-2 overlay",
    )
    timeline_text = browser.find_element(By.ID, "patient-timeline").text
    assert "SOFA-2 total" in timeline_text
    # switch the day with the dropdown: the why-table and the URL follow
    browser.find_element(By.CSS_SELECTOR, "#patient-day").click()
    option = WebDriverWait(browser, 30).until(
        ec.element_to_be_clickable((By.XPATH, "//*[@role='option' and normalize-space()='Day 5']"))
    )
    option.click()
    WebDriverWait(browser, 30).until(
        lambda d: "day 5" in d.find_element(By.ID, "patient-why").text.lower()
    )
    WebDriverWait(browser, 30).until(ec.url_contains("day=5"))
    assert re.search(r"layers=support(%2C|,)sofa2", browser.current_url)
    chromium.settle(browser, "#patient-timeline .main-svg")
    save_screenshot(browser, "icu-patient-1920-day5")
    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert severe == []


def test_icu_e2e003_unknown_patient_is_a_clear_message(browser, live_server):
    browser.get(live_server.url + "/patient/SYN-99-9999")
    heading = wait_for(browser, "#_pages_content h1")
    assert heading.text == "Patient not found"
    assert "Traceback" not in browser.find_element(By.TAG_NAME, "body").text


CHANGE_RE = re.compile(r"^(?:▲ \+(\d+)|▼ (-\d+)|= (0)|–)$")


def change_cells_match_their_classes(driver) -> int:
    """Every 24 h-change cell's colour class matches the value it shows; returns the count."""
    cells = driver.find_elements(By.CSS_SELECTOR, ".ag-center-cols-container [col-id='change']")
    for cell in cells:
        m = CHANGE_RE.match(cell.text.strip())
        assert m, cell.text
        value = next((int(g) for g in m.groups() if g is not None), None)
        classes = set(cell.get_attribute("class").split())
        assert ("chg-up2" in classes) == (value is not None and value >= 2), (cell.text, classes)
        assert ("chg-up" in classes) == (value == 1), (cell.text, classes)
        assert ("chg-down" in classes) == (value is not None and value < 0), (cell.text, classes)
    return len(cells)


def test_icu_e2e004_day_switch_colours_follow_values_and_links_keep_the_day(browser, live_server):
    browser.set_window_size(1024, 768)
    browser.get(live_server.url + "/?site=SYN-S01&day=3")
    chromium.settle(browser, ".ag-row")
    assert change_cells_match_their_classes(browser) > 0
    browser.find_element(By.CSS_SELECTOR, "#ward-day").click()
    WebDriverWait(browser, 30).until(
        ec.element_to_be_clickable((By.XPATH, "//*[@role='option' and normalize-space()='Day 4']"))
    ).click()
    WebDriverWait(browser, 30).until(ec.url_contains("day=4"))
    # the grid re-renders the rows it already had with the day-4 values: a row as of day 4
    WebDriverWait(browser, 30).until(
        lambda d: any(
            c.text.split()[:1] == ["4"]
            for c in d.find_elements(
                By.CSS_SELECTOR, ".ag-center-cols-container [col-id='study_day']"
            )
        ),
        "no row shows day 4",
    )
    chromium.settle(browser, ".ag-row")
    assert change_cells_match_their_classes(browser) > 0
    save_screenshot(browser, "icu-ward-1024-day4")
    # at 1024 px every column is on screen (the last one, "Data", included)
    header = browser.find_element(By.CSS_SELECTOR, ".ag-header-cell[col-id='data_flags']")
    width = browser.execute_script("return document.documentElement.clientWidth")
    assert header.rect["x"] + header.rect["width"] <= width
    # the patient id is a real link to the window the board shows, opened with the keyboard
    row = browser.find_element(By.CSS_SELECTOR, ".ag-pinned-left-cols-container .ag-row")
    index = row.get_attribute("row-index")
    link = row.find_element(By.TAG_NAME, "a")
    shown = browser.find_element(
        By.CSS_SELECTOR,
        f".ag-center-cols-container .ag-row[row-index='{index}'] [col-id='study_day']",
    ).text.split()[0]
    assert int(shown) <= 4  # as of day 4: day 4, or the patient's last charted day before it
    href = link.get_attribute("href")
    assert re.search(rf"/patient/SYN-[\w-]+\?day={shown}$", href), href
    link.send_keys(Keys.ENTER)
    WebDriverWait(browser, 30).until(ec.url_contains("/patient/"))
    assert browser.current_url.endswith(f"?day={shown}")
    WebDriverWait(browser, 30).until(
        lambda d: f"day {shown}" in d.find_element(By.ID, "patient-why").text.lower()
    )


def test_icu_e2e005_what_changed_on_the_board_and_the_patient_page(browser, live_server):
    """The Alerts cell shows the first change (organ points, value before → now), the tooltip
    every change; every column still fits at 1024 px; the patient page lists the changes."""
    for width, height in ((1440, 900), (1024, 768)):
        browser.set_window_size(width, height)
        browser.get(live_server.url + "/?site=SYN-S09&day=4")
        chromium.settle(browser, ".ag-row")
        cells = browser.find_elements(
            By.CSS_SELECTOR, ".ag-center-cols-container [col-id='alerts']"
        )
        texts = [c.text for c in cells]
        assert any(re.search(r"\b(Resp|Coag|Liver|CV|CNS|Renal) \d→\d: ", t) for t in texts), texts
        header = browser.find_element(By.CSS_SELECTOR, ".ag-header-cell[col-id='data_flags']")
        client = browser.execute_script("return document.documentElement.clientWidth")
        assert header.rect["x"] + header.rect["width"] <= client
        save_screenshot(browser, f"icu-ward-changes-{width}")
    # hover the first cell with a change: the tooltip lists the changes
    cell = next(c for c in cells if "→" in c.text)
    ActionChains(browser).move_to_element(cell).perform()
    tip = WebDriverWait(browser, 30).until(
        ec.visibility_of_element_located((By.CSS_SELECTOR, ".ag-tooltip"))
    )
    assert "What changed since day 3" in tip.text
    save_screenshot(browser, "icu-ward-changes-tooltip")
    # the patient page of that row, at the same day
    row_index = cell.find_element(By.XPATH, "./ancestor::div[@row-index]").get_attribute(
        "row-index"
    )
    link = browser.find_element(
        By.CSS_SELECTOR, f".ag-pinned-left-cols-container .ag-row[row-index='{row_index}'] a"
    )
    browser.set_window_size(1440, 900)
    browser.get(link.get_attribute("href"))
    WebDriverWait(browser, 30).until(
        lambda d: "what changed since day" in d.find_element(By.ID, "patient-why").text.lower()
    )
    why = browser.find_element(By.ID, "patient-why")
    browser.execute_script("arguments[0].scrollIntoView({behavior: 'instant'})", why)
    assert re.search(r"(Resp|Coag|Liver|CV|CNS|Renal) \d→\d: ", why.text), why.text
    save_screenshot(browser, "icu-patient-what-changed")
