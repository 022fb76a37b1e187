"""Issue 18 in headless Chromium: the drill-down opens in a side panel inside the viewport
next to the click (it used to land ~5,570 px down the Primary tab), and the SOFA
trajectories switch between the observed and the SAP death convention. Screenshots at
1440x900 and 1024x768."""

from __future__ import annotations

import pytest
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from bench import chromium
from tests.app.conftest import save_screenshot
from tests.app.test_cohort_browser import severe, wait_panel

pytestmark = pytest.mark.e2e

SIZES = [(1440, 900), (1024, 768)]


def rect(driver, css: str) -> dict:
    return driver.execute_script(
        "const r = document.querySelector(arguments[0]).getBoundingClientRect();"
        "return {top: r.top, bottom: r.bottom, left: r.left, right: r.right,"
        " vh: window.innerHeight, vw: window.innerWidth, scroll: window.scrollY};",
        css,
    )


def navigation_problems(driver) -> list:
    """What covers the navigation now: the open side panel starting above the navbar's bottom
    edge on screen, and every navigation link or control of the navbar in view that is not the
    element at its own centre. Empty when nothing does."""
    panel, nav = rect(driver, ".cohort-drill-panel"), rect(driver, "#shell-navbar")
    problems = [] if panel["top"] >= max(0, nav["bottom"]) - 1 else [("panel", panel, nav)]
    return problems + driver.execute_script(
        "return Array.from(document.querySelectorAll('#shell-navbar a, #shell-navbar button'))"
        ".filter(e => { const r = e.getBoundingClientRect();"
        " return r.width && r.top + r.height / 2 >= 0; })"
        ".filter(e => { const r = e.getBoundingClientRect();"
        " const at = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);"
        " return !(at && (at === e || e.contains(at))); }).map(e => e.textContent);"
    )


def assert_navigation_uncovered(driver) -> None:
    """The side panel follows the navbar's edge one animation frame after a scroll or a
    resize (assets/30_navbar_offset.js): wait for that frame, then nothing may cover the
    navigation."""
    try:
        WebDriverWait(driver, 30, poll_frequency=0.1).until(lambda d: navigation_problems(d) == [])
    except TimeoutException:
        raise AssertionError(navigation_problems(driver)) from None


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_drill_e2e001_drilldown_opens_in_the_viewport_next_to_the_click(
    browser, live_server, width, height
):
    browser.set_window_size(width, height)
    browser.get(live_server.url + "/cohort?tab=primary")
    wait_panel(browser, "primary")
    bar = WebDriverWait(browser, 40).until(
        ec.presence_of_element_located(
            (By.CSS_SELECTOR, ".cohort-panel-primary .js-plotly-plot .bars .point path")
        )
    )
    browser.execute_script(
        "arguments[0].scrollIntoView({block: 'center', behavior: 'instant'})", bar
    )
    WebDriverWait(browser, 30, poll_frequency=0.1).until(chromium.still(chromium.SCROLL_JS))
    ActionChains(browser).move_to_element(bar).pause(0.5).perform()
    scrolled = browser.execute_script("return window.scrollY")
    ActionChains(browser).click().perform()
    WebDriverWait(browser, 30).until(
        ec.visibility_of_element_located(
            (By.CSS_SELECTOR, ".cohort-drill-panel .cohort-drilldown a[href^='/patient/']")
        )
    )
    # the side panel in its place (no transition today; should one come back, its end)
    WebDriverWait(browser, 30, poll_frequency=0.1).until(
        chromium.still(chromium.RECT_JS, ".cohort-drill-panel")
    )
    # the page did not jump: the panel came to the click, not the click to the panel
    assert browser.execute_script("return window.scrollY") == scrolled
    r = rect(browser, ".cohort-drill-panel")
    assert 0 <= r["top"] < r["vh"], r
    assert r["bottom"] <= r["vh"] + 1, r
    assert r["left"] >= 0, r
    assert r["right"] <= r["vw"] + 1, r
    h = rect(browser, ".cohort-drilldown h2")
    assert 0 <= h["top"] < h["vh"], h  # the heading is visible without scrolling
    title = browser.find_element(By.CSS_SELECTOR, ".cohort-drilldown h2").text
    assert title.startswith("Responders (day 9)")
    assert title.endswith(": 46 patients")  # precision, all strata: 46/131
    headers = [th.text for th in browser.find_elements(By.CSS_SELECTOR, ".cohort-drilldown th")]
    assert headers[:2] == ["Patient", "Site"]
    assert "patient_id" not in headers
    assert "sofa_decrease_d9" not in headers
    link = browser.find_element(By.CSS_SELECTOR, ".cohort-drilldown a[href^='/patient/']")
    assert link.get_attribute("href").endswith("/patient/" + link.text)
    save_screenshot(browser, f"drill-panel-{width}x{height}")
    assert_navigation_uncovered(browser)
    # back at the top of the page, the navbar is on screen: the panel starts below it
    browser.execute_script("window.scrollTo(0, 0)")
    WebDriverWait(browser, 30).until(
        lambda d: rect(d, ".cohort-drill-panel")["top"] == rect(d, "#shell-navbar")["bottom"] > 0
    )
    assert_navigation_uncovered(browser)
    save_screenshot(browser, f"drill-panel-top-{width}x{height}")
    browser.find_element(By.ID, "cohort-drill-close").click()
    WebDriverWait(browser, 30).until(
        ec.invisibility_of_element_located((By.CSS_SELECTOR, ".cohort-drill-panel"))
    )
    assert severe(browser) == []


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_drill_e2e002_trajectories_switch_death_convention(browser, live_server, width, height):
    browser.set_window_size(width, height)
    browser.get(live_server.url + "/cohort?tab=trajectories")
    wait_panel(browser, "trajectories")
    WebDriverWait(browser, 40).until(
        ec.presence_of_element_located(
            (By.CSS_SELECTOR, ".cohort-panel-trajectories .js-plotly-plot .updatemenu-button")
        )
    )
    body = browser.find_element(By.CSS_SELECTOR, ".cohort-panel-trajectories").text
    assert "survivors" in body
    assert "Patients per day" in body
    plot = ".cohort-panel-trajectories .js-plotly-plot"
    visible = "return document.querySelector(arguments[0]).data.map(t => t.visible)"
    assert browser.execute_script(visible, plot)[:2] == [None, None]
    browser.execute_script(
        "document.querySelector(arguments[0]).scrollIntoView({block: 'start', behavior: 'instant'})",
        plot,
    )
    WebDriverWait(browser, 30, poll_frequency=0.1).until(chromium.still(chromium.SCROLL_JS))
    save_screenshot(browser, f"drill-trajectories-observed-{width}x{height}")
    buttons = browser.find_elements(By.CSS_SELECTOR, f"{plot} .updatemenu-button")
    assert [b.text for b in buttons] == ["Observed (survivors)", "Death scored 24 (SAP)"]
    ActionChains(browser).move_to_element(buttons[1]).pause(0.3).click().perform()
    WebDriverWait(browser, 30).until(
        lambda d: d.execute_script(visible, plot)[0] is False, "the SAP traces are not shown"
    )
    chromium.settle(browser, plot)
    shown = browser.execute_script(visible, plot)
    half = len(shown) // 2
    assert shown[:half] == [False] * half, shown
    assert shown[half:] == [True] * half, shown
    save_screenshot(browser, f"drill-trajectories-sap-{width}x{height}")
    assert severe(browser) == []
