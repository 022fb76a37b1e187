"""Every page in headless Chromium: renders, shows no error, logs nothing severe."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from bench import chromium
from tests.app.conftest import save_screenshot

pytestmark = pytest.mark.e2e

PAGES = [
    ("/", "Ward board", "ward"),
    ("/patient", "Patient", "patient-empty"),
    ("/cohort", "Cohort", "cohort"),
    ("/data", "Data", "data"),
    ("/no-such-page", "404", "not-found"),
]


def severe_console_entries(driver) -> list[dict]:
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


@pytest.mark.parametrize(("path", "heading", "shot"), PAGES)
def test_e2e001_every_page_loads_without_errors(browser, live_server, path, heading, shot):
    browser.get(live_server.url + path)
    wait = WebDriverWait(browser, 30)
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#_pages_content h1")))
    chromium.settle(browser, "#_pages_content h1")  # late callbacks finished (and logged)
    h1 = browser.find_element(By.CSS_SELECTOR, "#_pages_content h1").text
    assert heading in h1
    banner = browser.find_element(By.ID, "shell-banner").text
    assert "DEMO: synthetic data" in banner
    assert "Unblinded" in banner
    body = browser.find_element(By.TAG_NAME, "body").text
    for marker in ("Traceback", "Error loading layout", "Callback error", "Internal Server Error"):
        assert marker not in body
    entries = severe_console_entries(browser)
    if path == "/no-such-page":  # the HTTP 404 of the document itself is expected and logged
        entries = [e for e in entries if "404" not in e["message"]]
    save_screenshot(browser, f"page-{shot}")
    assert entries == []
