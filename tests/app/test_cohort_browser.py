"""Cohort page in headless Chromium: every tab renders its panel, logs nothing severe."""

from __future__ import annotations

import time

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from components.cohort import PANELS
from tests.app.conftest import save_screenshot

pytestmark = pytest.mark.e2e


def severe(driver) -> list[dict]:
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def wait_panel(driver, tab: str, timeout: float = 40) -> None:
    WebDriverWait(driver, timeout).until(
        ec.presence_of_element_located(
            (By.CSS_SELECTOR, f".cohort-panel-{tab} .cohort-panel-title")
        )
    )
    # graphs drawn (plotly adds .main-svg) when the panel has any
    time.sleep(0.8)


def test_coh_e2e001_every_tab_renders(browser, live_server):
    browser.set_window_size(1400, 1000)
    browser.get(live_server.url + "/cohort")
    wait_panel(browser, "primary")
    assert "reproduces the publication" in browser.find_element(By.ID, "cohort-badge").text
    count = browser.find_element(By.ID, "cohort-count").text
    assert count == "276 analysed patients (no filter)"
    for key, label in ((p.key, p.label) for p in PANELS):
        browser.find_element(
            By.XPATH, f"//a[contains(@class,'nav-link') and text()='{label}']"
        ).click()
        wait_panel(browser, key)
        heading = browser.find_element(By.CSS_SELECTOR, f".cohort-panel-{key} .cohort-panel-title")
        assert heading.text == label
        body = browser.find_element(By.TAG_NAME, "body").text
        for marker in ("Traceback", "Callback error", "Error loading"):
            assert marker not in body
        assert f"tab={key}" in browser.current_url
        save_screenshot(browser, f"cohort-{key}")
        entries = severe(browser)
        assert entries == [], entries


def test_coh_e2e002_url_state_and_filter_counts(browser, live_server):
    browser.set_window_size(1400, 1000)
    browser.get(live_server.url + "/cohort?tab=survival&phenotype=MALS")
    wait_panel(browser, "survival")
    assert browser.find_element(By.ID, "cohort-count").text == (
        "48 of 276 analysed patients after filtering"
    )
    # the at-risk table under the day-28 curve starts with the filtered arms (25 + 23 = 48)
    grid_text = browser.find_element(By.CSS_SELECTOR, ".cohort-panel-survival").text
    assert "Number at risk" in grid_text
    save_screenshot(browser, "cohort-survival-mals")
    assert severe(browser) == []


def test_coh_e2e003_drilldown_lists_patients_with_links(browser, live_server):
    browser.set_window_size(1400, 1000)
    browser.get(live_server.url + "/cohort?tab=primary")
    wait_panel(browser, "primary")
    # wait for the bars themselves (plotly draws after the panel arrives; slow on a busy machine)
    bar = WebDriverWait(browser, 40).until(
        ec.presence_of_element_located(
            (By.CSS_SELECTOR, ".cohort-panel-primary .js-plotly-plot .bars .point path")
        )
    )
    # plotly's drag layer sits on top of the bars: hover the bar, then click where it is
    ActionChains(browser).move_to_element(bar).pause(0.5).click().perform()
    WebDriverWait(browser, 20).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, ".cohort-drilldown a[href^='/patient/']"))
    )
    title = browser.find_element(By.CSS_SELECTOR, ".cohort-drilldown h2").text
    assert title.startswith("Responders (day 9)")
    assert title.endswith(": 46 patients")  # precision, all strata: 46/131 (the synthetic cohort)
    browser.execute_script("document.querySelector('.cohort-drilldown').scrollIntoView()")
    time.sleep(0.3)
    save_screenshot(browser, "cohort-drilldown")
    assert severe(browser) == []


#: an option of an open Dash 4 dropdown
OPTION = ".dash-dropdown-content [role='option'], .dash-options-list [role='option']"
ALL_ROWS = "Primary (day 9), Day-15 SOFA response, 28-day mortality, Immune reversal (SIDF)"


def test_coh_e2e004_publication_badge_follows_the_filters(browser, live_server):
    """Issue 18: the badge is refilled when a filter changes (it used to keep the page-load
    verdict): one site makes every published row differ; unticking it gives back the badge of
    the page load, whatever the full demo's verdict."""
    browser.set_window_size(1440, 900)
    browser.get(live_server.url + "/cohort")
    wait_panel(browser, "primary")
    on_load = browser.find_element(By.ID, "cohort-badge-data").text
    # the badge and the count are replaced by their callbacks while the waits read them
    wait = WebDriverWait(browser, 40, ignored_exceptions=(StaleElementReferenceException,))
    browser.find_element(By.ID, "cohort-f-site").click()
    wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, OPTION))).click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "cohort-badge-data"), "in 4 of 4 rows"))
    assert browser.find_element(By.ID, "cohort-badge-data").text == (
        f"≠ this dataset differs from the published table in 4 of 4 rows: {ALL_ROWS}"
    )
    # the count comes with the panel, a callback of its own (slower than the badge's): wait
    wait.until(ec.text_to_be_present_in_element((By.ID, "cohort-count"), "after filtering"))
    save_screenshot(browser, "cohort-badge-one-site")
    wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, OPTION))).click()  # untick
    wait.until(lambda d: d.find_element(By.ID, "cohort-badge-data").text == on_load)
    wait.until(
        lambda d: d.find_element(By.ID, "cohort-count").text == "276 analysed patients (no filter)"
    )
    assert severe(browser) == []
