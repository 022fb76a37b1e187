"""Issue 16 in a browser: a DSMB member on a filtered cohort tab unmasks and stays on that tab
with its filters (the URL is unchanged), sees real labels, re-masks and is back to coded
groups, still on the same URL (headless Chromium against gunicorn in login mode)."""

from __future__ import annotations

import json
import shutil

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait
from werkzeug.security import generate_password_hash

from core.db import make_engine
from core.repository import load_audit
from tests.app.conftest import expect_reload, run_gunicorn, save_screenshot

pytestmark = pytest.mark.e2e

PASSWORD = "dsmb-browser-password"
PAGE = "/cohort?tab=primary&phenotype=MALS"
REASON = "Interim safety review requested by the chair"


@pytest.fixture(scope="module")
def login_server(demo_db_url, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("unmask-browser")
    db = tmp / "copy.sqlite"
    shutil.copy(demo_db_url.removeprefix("sqlite:///"), db)
    users = tmp / "users.json"
    users.write_text(
        json.dumps(
            [{"user": "dsmb", "role": "dsmb", "password_hash": generate_password_hash(PASSWORD)}]
        )
    )
    env = {
        "DATABASE_URL": f"sqlite:///{db}",
        "IMMUNOSEP_MODE": "login",
        "IMMUNOSEP_USERS_FILE": str(users),
    }
    with run_gunicorn(env, tmp, workers=1) as server:
        yield server, f"sqlite:///{db}"


def assert_tab_and_filter_shown(browser, wait) -> None:
    """The page drawn from the kept URL: the Primary tab open, the MALS filter applied."""
    wait.until(lambda d: "after filtering" in d.find_element(By.ID, "cohort-count").text)
    # the filter bar and the tabs are redrawn by their own callbacks: wait for each (a missing
    # element is retried by the wait), then read it
    wait.until(lambda d: "MALS" in d.find_element(By.ID, "cohort-f-phenotype").text)
    wait.until(
        lambda d: (
            d.find_element(By.CSS_SELECTOR, "#cohort-tabs .nav-link.active").text
            == "Primary endpoint"
        )
    )
    active = browser.find_element(By.CSS_SELECTOR, "#cohort-tabs .nav-link.active").text
    assert active == "Primary endpoint"
    assert "MALS" in browser.find_element(By.ID, "cohort-f-phenotype").text


def test_secub001_unmask_and_remask_keep_the_url(browser, login_server):
    server, url = login_server
    wait = WebDriverWait(browser, 60)
    browser.get(server.url + "/login?next=" + PAGE.replace("&", "%26"))
    browser.find_element(By.ID, "user").send_keys("dsmb")
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait.until(ec.element_to_be_clickable((By.ID, "unmask-open")))
    assert browser.current_url == server.url + PAGE
    try:
        browser.find_element(By.ID, "unmask-open").click()
        wait.until(ec.visibility_of_element_located((By.ID, "unmask-reason"))).send_keys(REASON)
        with expect_reload(browser):  # the unmasked session is shown by loading the page again
            browser.find_element(By.ID, "unmask-confirm").click()
        wait.until(ec.element_to_be_clickable((By.ID, "remask-button")))
        assert browser.current_url == server.url + PAGE  # same tab, same filters
        wait.until(lambda d: "Group A" not in d.page_source)
        assert_tab_and_filter_shown(browser, wait)
        with expect_reload(browser):
            browser.find_element(By.ID, "remask-button").click()
        wait.until(ec.element_to_be_clickable((By.ID, "unmask-open")))
        assert browser.current_url == server.url + PAGE
        assert_tab_and_filter_shown(browser, wait)
    except Exception:
        save_screenshot(browser, "unmask-browser-failure")
        raise
    trail = load_audit(make_engine(url))
    assert trail["action"].tolist()[:3] == ["remask", "unmask", "login"]  # newest first
    assert trail["detail"].tolist()[1] == REASON
