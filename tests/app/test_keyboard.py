"""Full keyboard use of the ward, the patient page and the cohort tabs, in headless Chromium.

Issue 19: everyone must be able to use the dashboard without a mouse. Each test starts from
the top of the page and moves with real key presses only (Tab, Shift+Tab, Enter, Space, arrows):
the ward's patient links are reached by Tab and Enter opens the patient; on the patient page the
layer switches, the study-day selector and the way back to the ward are reached and operated; on
the cohort page every tab is reached and opened with Enter, and a filter is opened, set and
cleared. Every element the test lands on must show a visible focus indicator (an outline or a
focus ring). Each step waits for exactly the element it then reads or presses (WebDriverWait on
a condition, never a sleep), so a busy CI machine makes the test slower, never red.
docs/accessibility.md "Keyboard".
"""

from __future__ import annotations

from typing import Any

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from bench import chromium
from components.cohort import DEFAULT_PANEL, PANELS
from tests.app.conftest import save_screenshot

pytestmark = pytest.mark.e2e

TIMEOUT_S = 60
#: more Tab presses than any of these pages has stops before the element a test looks for
MAX_TABS = 80

#: a description of the focused element, and whether its focus is visible: an outline of at
#: least 2 px (assets/10_app.css draws 3 px; Bootstrap's faint 25 % focus ring does not count)
ACTIVE_JS = """
const e = document.activeElement;
if (!e) return null;
window.__kbdIds = window.__kbdIds || new WeakMap();
if (!window.__kbdIds.has(e)) window.__kbdIds.set(e, (window.__kbdN = (window.__kbdN || 0) + 1));
const s = getComputedStyle(e);
const outline = s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2;
return {
  tag: e.tagName, id: e.id, role: e.getAttribute('role'), href: e.getAttribute('href'),
  text: (e.innerText || e.getAttribute('aria-label') || '').trim().slice(0, 80),
  cls: String(e.className), checked: e.checked === undefined ? null : e.checked,
  visible: outline,
  key: window.__kbdIds.get(e),
};
"""


def active(driver) -> dict[str, Any] | None:
    return driver.execute_script(ACTIVE_JS)


def focused_option(driver) -> str | None:
    """The text of the dropdown option holding the focus (the focus sits on the option's own
    checkbox in Dash 4's list), or None when the focus is not in an option."""
    return driver.execute_script(
        "const o = document.activeElement && document.activeElement.closest('[role=option]');"
        "return o ? o.innerText.trim() : null;"
    )


def press(driver, *keys: str) -> None:
    """Key presses sent to whatever has the focus (as a user types)."""
    ActionChains(driver).send_keys(*keys).perform()


def tab_once(driver, *, back: bool = False) -> dict[str, Any]:
    """Tab (or Shift+Tab) and wait until the focus has moved to another element."""
    before = active(driver)
    if back:
        ActionChains(driver).key_down(Keys.SHIFT).send_keys(Keys.TAB).key_up(Keys.SHIFT).perform()
    else:
        press(driver, Keys.TAB)
    WebDriverWait(driver, TIMEOUT_S).until(
        lambda d: (now := active(d)) is not None and (before is None or now["key"] != before["key"])
    )
    return active(driver)


def tab_to(driver, matches, what: str, *, back: bool = False) -> list[dict[str, Any]]:
    """Press Tab until the focused element ``matches``; the stops passed on the way, the last
    being the match. Fails naming ``what`` and the stops seen when it is not reached."""
    stops: list[dict[str, Any]] = []
    for _ in range(MAX_TABS):
        stops.append(tab_once(driver, back=back))
        if matches(stops[-1]):
            return stops
    seen = [f"{s['tag']}#{s['id']} {s['text'][:30]!r}" for s in stops]
    raise AssertionError(f"{what} not reached by keyboard in {MAX_TABS} Tab presses: {seen}")


def assert_focus_visible(stop: dict[str, Any]) -> None:
    assert stop["visible"], f"no visible focus indicator on {stop}"


def start_at_top(driver) -> None:
    """Put the focus before the first element of the page, as after a page load."""
    driver.execute_script("document.activeElement && document.activeElement.blur();")
    driver.find_element(By.TAG_NAME, "body")


def wait_for(driver, css: str):
    return WebDriverWait(driver, TIMEOUT_S).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, css))
    )


def test_kbd001_tab_reaches_the_ward_patient_links_and_enter_opens_the_patient(
    browser, live_server
):
    browser.get(live_server.url + "/?day=3")
    first_link = wait_for(browser, "#ward-grid .ag-row a[href^='/patient/']")
    assert first_link.text.startswith("SYN-")
    start_at_top(browser)
    stops = tab_to(
        browser,
        lambda s: s["tag"] == "A" and (s["href"] or "").startswith("/patient/SYN-"),
        "a patient link on the ward board",
    )
    link = stops[-1]
    assert_focus_visible(link)
    # the controls before the grid are stops too: the site and day selectors, the search
    ids_seen = {s["id"] for s in stops}
    assert {"ward-site", "ward-day", "ward-search"} <= ids_seen, ids_seen
    # Tab goes on to the next patient's link, not through the row's thirteen cells
    between = tab_to(
        browser,
        lambda s: (s["href"] or "").startswith("/patient/SYN-") and s["href"] != link["href"],
        "the next patient link",
    )
    assert len(between) <= 3, [(s["tag"], s["text"][:20]) for s in between]
    back = tab_to(browser, lambda s: s["href"] == link["href"], "the first link", back=True)
    assert len(back) <= 3

    press(browser, Keys.ENTER)
    patient_id = link["href"].split("/")[2].split("?")[0]
    heading = WebDriverWait(browser, TIMEOUT_S).until(
        ec.text_to_be_present_in_element(
            (By.CSS_SELECTOR, "#_pages_content h1"), f"Patient {patient_id}"
        )
    )
    assert heading is True
    # opened at the day the board showed for this patient (the day of death if earlier)
    assert browser.current_url == live_server.url + link["href"]
    save_screenshot(browser, "kbd-ward-to-patient")


def test_kbd002_every_control_of_the_patient_page_is_operable_by_keyboard(browser, live_server):
    browser.get(live_server.url + "/patient/SYN-01-0001?day=2")
    wait_for(browser, "#patient-day")
    WebDriverWait(browser, TIMEOUT_S).until(
        ec.text_to_be_present_in_element((By.ID, "patient-day"), "Day 2")
    )
    start_at_top(browser)

    # the layer switches: Space toggles the focused one
    stops = tab_to(browser, lambda s: "patient-layers" in s["id"], "the first layer switch")
    switch = stops[-1]
    assert_focus_visible(switch)
    press(browser, Keys.SPACE)
    WebDriverWait(browser, TIMEOUT_S).until(
        lambda d: d.find_element(By.ID, switch["id"]).is_selected() != switch["checked"]
    )
    press(browser, Keys.SPACE)  # and back
    WebDriverWait(browser, TIMEOUT_S).until(
        lambda d: d.find_element(By.ID, switch["id"]).is_selected() == switch["checked"]
    )

    # the study-day selector: Enter opens it, an arrow and Enter choose another day
    day = tab_to(browser, lambda s: s["id"] == "patient-day", "the study-day selector")[-1]
    assert_focus_visible(day)
    press(browser, Keys.ENTER)
    wait_for(browser, ".dash-dropdown-content [role='option'], .dash-options-list [role='option']")
    # the open list puts the focus on the day shown (Day 2), possibly after a first stop
    # elsewhere in the list: an arrow pressed before then would move from that stop instead
    WebDriverWait(browser, TIMEOUT_S).until(lambda d: focused_option(d) == "Day 2")
    press(browser, Keys.ARROW_DOWN)
    WebDriverWait(browser, TIMEOUT_S).until(lambda d: focused_option(d) not in (None, "Day 2"))
    target = focused_option(browser)
    assert target == "Day 3", target
    assert_focus_visible(active(browser))
    press(browser, Keys.ENTER)
    WebDriverWait(browser, TIMEOUT_S).until(lambda d: "day=3" in d.current_url)
    WebDriverWait(browser, TIMEOUT_S).until(
        ec.text_to_be_present_in_element((By.ID, "patient-day"), "Day 3")
    )

    # the way back to the ward: Shift+Tab to the navbar's "Ward board" link, Enter
    back = tab_to(
        browser,
        lambda s: s["tag"] == "A" and s["text"] == "Ward board",
        "the navbar's Ward board link",
        back=True,
    )
    assert_focus_visible(back[-1])
    press(browser, Keys.ENTER)
    WebDriverWait(browser, TIMEOUT_S).until(
        ec.text_to_be_present_in_element((By.CSS_SELECTOR, "#_pages_content h1"), "Ward board")
    )


def test_kbd003_the_cohort_tabs_switch_with_the_keyboard(browser, live_server):
    browser.get(live_server.url + "/cohort")
    wait_for(browser, f".cohort-panel-{DEFAULT_PANEL.key}")
    start_at_top(browser)
    labels = [p.label for p in PANELS]
    first = tab_to(browser, lambda s: s["role"] == "tab", "the first cohort tab")[-1]
    assert first["text"] == labels[0]
    assert_focus_visible(first)
    for panel in PANELS[1:]:
        stop = tab_once(browser)
        assert stop["role"] == "tab", stop
        assert stop["text"] == panel.label, stop
        assert_focus_visible(stop)
        press(browser, Keys.ENTER)
        wait_for(browser, chromium.shown_panel(panel.key))
        WebDriverWait(browser, TIMEOUT_S).until(lambda d, k=panel.key: f"tab={k}" in d.current_url)
        # the focus stays on the tab just opened, which is now the selected one
        now = active(browser)
        assert now["text"] == panel.label, now
        assert "active" in now["cls"], now
    # arrow keys move between the tabs too (the ARIA tabs pattern), Enter opens
    press(browser, Keys.ARROW_LEFT)
    WebDriverWait(browser, TIMEOUT_S).until(lambda d: active(d)["text"] == PANELS[-2].label)
    press(browser, Keys.ENTER)
    wait_for(browser, chromium.shown_panel(PANELS[-2].key))
    save_screenshot(browser, "kbd-cohort-tabs")


def test_kbd004_the_cohort_filters_are_operable_by_keyboard(browser, live_server):
    browser.get(live_server.url + "/cohort")
    wait_for(browser, f".cohort-panel-{DEFAULT_PANEL.key}")
    count = browser.find_element(By.ID, "cohort-count")
    assert "no filter" in count.text
    start_at_top(browser)
    stop = tab_to(browser, lambda s: s["id"] == "cohort-f-phenotype", "the phenotype filter")[-1]
    assert_focus_visible(stop)
    press(browser, Keys.ENTER)
    option = wait_for(
        browser, ".dash-dropdown-content [role='option'], .dash-options-list [role='option']"
    )
    chosen = option.text  # the first option: "MALS (48)"
    # the open list has the focus (its search box); ArrowDown moves it to the first option
    WebDriverWait(browser, TIMEOUT_S).until(
        lambda d: d.execute_script(
            "return !!document.activeElement.closest('.dash-dropdown-content');"
        )
    )
    press(browser, Keys.ARROW_DOWN)
    WebDriverWait(browser, TIMEOUT_S).until(lambda d: focused_option(d) == chosen)
    assert_focus_visible(active(browser))
    press(browser, Keys.SPACE)  # the focused option's checkbox: Space ticks it
    WebDriverWait(browser, TIMEOUT_S).until(
        ec.text_to_be_present_in_element((By.ID, "cohort-count"), "after filtering")
    )
    press(browser, Keys.ESCAPE)
    assert "phenotype=" in browser.current_url
    assert browser.find_element(By.ID, "cohort-f-phenotype").text == chosen
    text = browser.find_element(By.ID, "cohort-count").text
    after, before = (int(w) for w in text.split()[:3:2])
    # the count of the option chosen is the count of patients the filter leaves
    assert after == int(chosen.rsplit("(", 1)[1].rstrip(")")), (chosen, text)
    assert 0 < after < before, (chosen, text)
