"""Cohort page in headless Chromium: every tab renders its panel, logs nothing severe."""

from __future__ import annotations

import json

import pytest
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from bench import chromium
from components.cohort import PANELS
from components.pages.cohort import LAZY_GRID_PREFIX
from tests.app.conftest import save_screenshot

pytestmark = pytest.mark.e2e


def severe(driver) -> list[dict]:
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def wait_panel(driver, tab: str, timeout: float = 40) -> None:
    """The panel of ``tab`` drawn: its title, every chart on the page with plotly's
    ``.main-svg``, every grid's rows, no callback pending, on three polls in a row."""
    chromium.settle(driver, f"{chromium.shown_panel(tab)} .cohort-panel-title", timeout)


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
        heading = browser.find_element(
            By.CSS_SELECTOR, f"{chromium.shown_panel(key)} .cohort-panel-title"
        )
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
    WebDriverWait(browser, 30).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, ".cohort-drilldown a[href^='/patient/']"))
    )
    title = browser.find_element(By.CSS_SELECTOR, ".cohort-drilldown h2").text
    assert title.startswith("Responders (day 9)")
    assert title.endswith(": 46 patients")  # precision, all strata: 46/131 (the synthetic cohort)
    browser.execute_script(
        "document.querySelector('.cohort-drilldown').scrollIntoView({behavior: 'instant'})"
    )
    WebDriverWait(browser, 30, poll_frequency=0.1).until(chromium.still(chromium.SCROLL_JS))
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
    # the count comes with the panel, a callback of its own (slower than the badge's)
    wait.until(ec.text_to_be_present_in_element((By.ID, "cohort-count"), "after filtering"))
    save_screenshot(browser, "cohort-badge-one-site")
    wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, OPTION))).click()  # untick
    wait.until(lambda d: d.find_element(By.ID, "cohort-badge-data").text == on_load)
    wait.until(
        lambda d: d.find_element(By.ID, "cohort-count").text == "276 analysed patients (no filter)"
    )
    assert severe(browser) == []


#: the tab stops inside each chart of the cohort panel: elements Tab reaches (focusable, not
#: disabled, tabindex >= 0), per .js-plotly-plot
CHART_TAB_STOPS_JS = """
const focusable = 'a[href], button, input, select, textarea, [tabindex]';
const stops = plot => Array.from(plot.querySelectorAll(focusable))
  .filter(e => !e.disabled && e.tabIndex >= 0);
const plots = Array.from(document.querySelectorAll(
  '.cohort-slot:not([hidden]) .cohort-panel .js-plotly-plot'));
if (arguments[0]) return plots.map(p => stops(p).map(e => e.outerHTML.slice(0, 120)));
return plots.map(p => stops(p).length);
"""


def slot_state(driver, dom_id: str) -> dict:
    return driver.execute_script(
        """
        const slot = document.getElementById(arguments[0]);
        const figure = slot.closest('figure');
        const graph = slot.querySelector('.dash-graph');
        return {
          placeholder: (slot.querySelector('.cohort-lazy-placeholder') || {}).textContent || null,
          drawn: !!slot.querySelector('.main-svg'),
          graph: graph ? graph.id : null,
          caption: figure.querySelector('figcaption').textContent,
        };
        """,
        dom_id,
    )


def test_coh_e2e005_charts_below_the_fold_are_drawn_when_scrolled_to(browser, live_server):
    """Issue 19: the Primary tab draws its first chart at once; the last chart is a placeholder
    with the chart's title and its text alternative until it is scrolled into view, then the
    chart itself, under the same text alternative."""
    browser.set_window_size(1366, 768)
    browser.get(live_server.url + "/cohort?tab=primary")
    wait_panel(browser, "primary")
    drawn_now = browser.find_elements(By.CSS_SELECTOR, ".cohort-panel-primary .dash-graph")
    assert len(drawn_now) >= 1
    pending = browser.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0])).map(e => e.id)",
        chromium.LAZY_PENDING,
    )
    charts = [p for p in pending if not json.loads(p)["name"].startswith(LAZY_GRID_PREFIX)]
    assert len(charts) >= 1, pending  # the charts further down wait for the reader
    last = charts[-1]
    name = json.loads(last)["name"]
    before = slot_state(browser, last)
    assert before["drawn"] is False
    assert before["graph"] is None
    assert "Chart drawn when scrolled into view." in before["placeholder"]
    # the placeholder shows the chart's title, the caption states it and the numbers
    title = before["placeholder"].removesuffix("Chart drawn when scrolled into view.")
    assert title
    assert before["caption"].startswith(title)
    assert len(before["caption"]) > len(title) + 10
    browser.execute_script(
        "document.getElementById(arguments[0]).scrollIntoView({block: 'center', behavior: 'instant'})",
        last,
    )
    WebDriverWait(browser, 40).until(
        lambda d: slot_state(d, last)["drawn"], f"{name}: not drawn after scrolling to it"
    )
    after = slot_state(browser, last)
    assert after["placeholder"] is None
    assert json.loads(after["graph"]) == {"type": "cohort-graph", "name": name}
    assert after["caption"] == before["caption"]
    # the other placeholders are drawn when scrolled to as well, and none is left
    chromium.draw_lazy_parts(browser)
    WebDriverWait(browser, 30).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, chromium.LAZY_UNDRAWN) == [],
        "a lazily drawn chart is left undrawn",
    )
    save_screenshot(browser, "cohort-lazy-drawn")
    assert severe(browser) == []


def test_coh_e2e006_each_chart_is_one_tab_stop_with_a_toolbar(browser, live_server):
    """Issue 19: a chart's tools (download PNG, reset axes) are one ARIA toolbar and one Tab
    stop (plotly's modebar was about ten); arrow keys move inside it; it shows while focused."""
    browser.set_window_size(1366, 768)
    browser.get(live_server.url + "/cohort?tab=primary")
    wait_panel(browser, "primary")
    chromium.draw_lazy_parts(browser)
    on_screen = f"{chromium.SHOWN_SLOT} .cohort-panel"  # not a kept tab or one drawn ahead
    charts = len(browser.find_elements(By.CSS_SELECTOR, f"{on_screen} figure"))
    assert charts >= 3  # the tab's charts, drawn at once or when scrolled to
    try:
        WebDriverWait(browser, 30).until(
            lambda d: d.execute_script(CHART_TAB_STOPS_JS) == [1] * charts
        )
    except TimeoutException:
        stops = browser.execute_script(CHART_TAB_STOPS_JS, True)
        raise AssertionError(f"not one Tab stop per chart: {stops}") from None
    bars = browser.find_elements(By.CSS_SELECTOR, f"{on_screen} .js-plotly-plot .modebar")
    assert len(bars) == charts
    for bar in bars:
        assert bar.get_attribute("role") == "toolbar"
        assert bar.get_attribute("aria-label") == "Chart tools"
        labels = [
            b.get_attribute("aria-label")
            for b in bar.find_elements(By.CSS_SELECTOR, "button.modebar-btn")
        ]
        assert labels == ["Download plot as a PNG", "Reset axes"]
    first, second = bars[0].find_elements(By.CSS_SELECTOR, "button.modebar-btn")
    browser.execute_script("window.scrollTo(0, 0); arguments[0].focus()", first)
    group = bars[0].find_element(By.CSS_SELECTOR, ".modebar-group")
    WebDriverWait(browser, 30).until(
        lambda d: float(group.value_of_css_property("opacity")) == 1.0, "toolbar hidden on focus"
    )
    ActionChains(browser).send_keys(Keys.ARROW_RIGHT).perform()
    WebDriverWait(browser, 30).until(
        lambda d: d.switch_to.active_element == second, "ArrowRight did not move to Reset axes"
    )
    assert second.get_attribute("tabindex") == "0"
    assert first.get_attribute("tabindex") == "-1"
    assert browser.execute_script(CHART_TAB_STOPS_JS) == [1] * charts
    assert severe(browser) == []


#: on every animation frame, the most cohort tab slots seen on screen at once (from the moment
#: the probe is installed): laid out in the page and not invisible (a kept tab is laid out
#: off screen, invisible)
SHOWN_PROBE_JS = """
window.__maxShown = 0;
(function probe() {
  const shown = Array.from(document.querySelectorAll('.cohort-slot'))
    .filter(s => s.offsetParent !== null && s.offsetHeight > 0
      && getComputedStyle(s).visibility !== 'hidden').length;
  window.__maxShown = Math.max(window.__maxShown, shown);
  requestAnimationFrame(probe);
})();
"""


def open_tab(driver, label: str, key: str) -> None:
    link = driver.find_element(
        By.XPATH, f"//a[contains(@class,'nav-link') and text()={json.dumps(label)}]"
    )
    # instant: the page may be scrolled down (lazy parts drawn), and Bootstrap's smooth
    # scrolling would still be moving it when the click lands
    driver.execute_script(
        "arguments[0].scrollIntoView({block: 'center', behavior: 'instant'})", link
    )
    link.click()
    wait_panel(driver, key)


def mark(driver, key: str) -> None:
    """Mark the panel element of ``key`` (a redraw replaces it, and the mark with it)."""
    driver.execute_script(
        "document.querySelector(arguments[0]).dataset.mark = 'kept'",
        f".cohort-panel-{key}",
    )


def marked(driver, key: str) -> bool:
    return driver.execute_script(
        "const e = document.querySelector(arguments[0]);return !!e && e.dataset.mark === 'kept';",
        f".cohort-panel-{key}",
    )


def test_coh_e2e007_a_tab_opened_before_is_kept_and_a_filter_change_redraws(browser, live_server):
    """Issue 19: going back to a tab shows the panel drawn before (the same element, no
    redraw); a filter change redraws the tab on screen with the filtered numbers, and a tab
    drawn before the change is drawn again when opened (its old numbers never show); never
    two tabs on screen at once."""
    browser.set_window_size(1440, 900)
    browser.get(live_server.url + "/cohort?tab=primary")
    wait_panel(browser, "primary")
    browser.execute_script(SHOWN_PROBE_JS)
    chromium.draw_lazy_parts(browser)  # the endpoint table sits under the first chart
    assert "46/131 (35.1 %)" in browser.find_element(By.CSS_SELECTOR, ".cohort-panel-primary").text
    mark(browser, "primary")
    open_tab(browser, "Baseline (Table 1)", "baseline")
    assert not browser.find_element(By.CSS_SELECTOR, ".cohort-panel-primary").is_displayed()
    mark(browser, "baseline")
    open_tab(browser, "Primary endpoint", "primary")
    assert marked(browser, "primary"), "the kept Primary panel was drawn again"
    assert "tab=primary" in browser.current_url
    # a filter change: the count, the URL and the tab on screen follow
    wait = WebDriverWait(browser, 40, ignored_exceptions=(StaleElementReferenceException,))
    browser.find_element(By.ID, "cohort-f-phenotype").click()
    wait.until(
        ec.element_to_be_clickable((By.XPATH, "//*[@role='option'][.//input[@value='MALS']]"))
    ).click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "cohort-count"), "48 of 276"))
    wait.until(lambda d: not marked(d, "primary"))  # redrawn
    wait_panel(browser, "primary")
    chromium.draw_lazy_parts(browser)
    primary = browser.find_element(By.CSS_SELECTOR, ".cohort-panel-primary").text
    assert "12/25 (48.0 %)" in primary  # MALS: 12 of 25 treated patients responded
    assert "46/131" not in primary
    assert "phenotype=MALS" in browser.current_url
    # the Baseline tab was drawn for all patients: opened now, it is drawn again for MALS
    open_tab(browser, "Baseline (Table 1)", "baseline")
    assert not marked(browser, "baseline"), "the Baseline panel of all patients was shown"
    assert browser.execute_script("return window.__maxShown") == 1
    assert severe(browser) == []


def test_coh_e2e008_the_other_tabs_are_drawn_ahead_and_shown_as_drawn(browser, live_server):
    """Issue 19: while a reader looks at a tab, the page draws the other tabs ahead, hidden
    (laid out off screen, invisible): then opening one shows the panel drawn ahead (the same
    element), its first chart already at the panel's width; never two tabs on screen."""
    browser.set_window_size(1440, 900)
    browser.get(live_server.url + "/cohort?tab=flow")
    wait_panel(browser, "flow")
    browser.execute_script(SHOWN_PROBE_JS)
    WebDriverWait(browser, 90, poll_frequency=0.2).until(
        lambda d: d.execute_script(chromium.ALL_DRAWN_JS), "the tabs were not drawn ahead"
    )
    safety = browser.find_element(By.CSS_SELECTOR, ".cohort-panel-safety")
    assert not safety.is_displayed()  # drawn, not shown
    mark(browser, "safety")
    width_ahead = browser.execute_script(
        "return document.querySelector('.cohort-panel-safety .main-svg').getBoundingClientRect()"
        ".width"
    )
    open_tab(browser, "Safety", "safety")
    assert marked(browser, "safety"), "the Safety panel drawn ahead was drawn again"
    panel_width, chart_width = browser.execute_script(
        "return [document.querySelector('.cohort-panel-safety').getBoundingClientRect().width,"
        " document.querySelector('.cohort-panel-safety .main-svg').getBoundingClientRect()"
        ".width]"
    )
    assert chart_width == width_ahead  # sized while drawn ahead: no resize on showing
    assert panel_width - 80 < chart_width <= panel_width  # the card's padding aside
    assert browser.find_element(By.CSS_SELECTOR, ".cohort-panel-safety").is_displayed()
    assert not browser.find_element(By.CSS_SELECTOR, ".cohort-panel-flow").is_displayed()
    assert browser.execute_script("return window.__maxShown") == 1
    assert severe(browser) == []


#: the output of every callback request the page sends from now on (dash-renderer uses fetch)
REQUESTS_PROBE_JS = """
window.__asked = [];
const send = window.fetch;
window.fetch = function (url, options) {
  if (String(url).indexOf('_dash-update-component') >= 0 && options && options.body) {
    try { window.__asked.push(JSON.parse(options.body).output); } catch (e) { /* not JSON */ }
  }
  return send.apply(this, arguments);
};
"""


def test_coh_e2e009_drawing_tabs_asks_for_nothing_but_the_tabs(browser, live_server):
    """Issue 19: a panel appearing (opened or drawn ahead) sends no drill-down and no CSV
    request: Dash calls a callback with an ALL input for every component added, and such a
    call would supersede a drill-down the reader is waiting for. Clicks go through clientside
    relays (assets/36_cohort_clicks.js); a real click on a bar still lists its patients."""
    browser.set_window_size(1440, 900)
    # the probe installed before the page's own scripts run (removed again below)
    probe = browser.execute_cdp_cmd(
        "Page.addScriptToEvaluateOnNewDocument", {"source": REQUESTS_PROBE_JS}
    )
    try:
        browser.get(live_server.url + "/cohort?tab=primary")
    finally:
        browser.execute_cdp_cmd(
            "Page.removeScriptToEvaluateOnNewDocument", {"identifier": probe["identifier"]}
        )
    wait_panel(browser, "primary")
    WebDriverWait(browser, 90, poll_frequency=0.2).until(
        lambda d: d.execute_script(chromium.ALL_DRAWN_JS), "the tabs were not drawn ahead"
    )
    asked = browser.execute_script("return window.__asked")
    slots = [a for a in asked if '"type":"cohort-slot"' in a]
    assert len(slots) == len(PANELS) - 1, asked  # every other tab drawn ahead, once
    clicks = [a for a in asked if "drill" in a or "csv" in a]
    assert clicks == [], asked
    bar = browser.find_element(
        By.CSS_SELECTOR, f"{chromium.shown_panel('primary')} .js-plotly-plot .bars .point path"
    )
    # plotly's drag layer sits on top of the bars: hover the bar, then click where it is
    ActionChains(browser).move_to_element(bar).pause(0.5).click().perform()
    WebDriverWait(browser, 40).until(
        ec.text_to_be_present_in_element((By.ID, "cohort-drilldown"), "patients")
    )
    asked = browser.execute_script("return window.__asked")
    assert [a for a in asked if "cohort-drilldown" in a] == [
        "..cohort-drilldown.children...cohort-drill-panel.style.."
    ]
    assert browser.find_elements(By.CSS_SELECTOR, "#cohort-drilldown a[href^='/patient/']")
    assert severe(browser) == []
