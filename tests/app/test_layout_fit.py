"""Layouts that fit (issue 19): at 1024×768 and 1440×900 no page scrolls sideways. Wide grids
may scroll inside themselves; the page itself never does (headless Chromium)."""

from __future__ import annotations

import contextlib

import pytest
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

pytestmark = pytest.mark.e2e

PAGES = [
    ("/", "#ward-grid .ag-row"),
    ("/patient/SYN-01-0001", "#_pages_content .js-plotly-plot"),
    ("/cohort?tab=baseline", ".cohort-panel-baseline"),
    ("/cohort?tab=primary", ".cohort-panel-primary .js-plotly-plot"),
    ("/review", "#_pages_content .ag-row"),
    ("/data", "#_pages_content h1"),
]

#: what reaches past the window's right edge (tag, classes, id, right edge), for the message
OVERFLOW_JS = """
const w = document.documentElement.clientWidth;
const out = [];
for (const el of document.querySelectorAll('body *')) {
  const r = el.getBoundingClientRect();
  if (r.width > 0 && r.right > w + 1 && !el.closest('.ag-root-wrapper')) {
    out.push(`${el.tagName}.${typeof el.className === 'string' ? el.className : ''}#${el.id} ${Math.round(r.right)}`);
  }
}
return [w, document.documentElement.scrollWidth, out.slice(0, 5)];
"""


def fits(measure: list) -> bool:
    """The window's width is at least the document's (the first two values of OVERFLOW_JS)."""
    width, scroll_width, _culprits = measure
    return scroll_width <= width


@pytest.mark.parametrize("size", [(1024, 768), (1440, 900)], ids=["1024", "1440"])
def test_fit001_no_page_scrolls_sideways(browser, live_server, size):
    browser.set_window_size(*size)
    for path, ready in PAGES:
        browser.get(live_server.url + path)
        WebDriverWait(browser, 60).until(ec.presence_of_element_located((By.CSS_SELECTOR, ready)))
        # late callbacks and grid sizing can widen the page for a moment: wait (up to 20 s) for
        # the settled layout, then read it
        with contextlib.suppress(TimeoutException):
            WebDriverWait(browser, 30, poll_frequency=0.25).until(
                lambda d: fits(d.execute_script(OVERFLOW_JS))
            )
        width, scroll_width, culprits = browser.execute_script(OVERFLOW_JS)
        assert scroll_width <= width, (path, size, scroll_width, width, culprits)


def test_fit002_review_summary_shows_every_column_at_1024(browser, live_server):
    """The per-site summary's 15 columns are all inside the grid at 1024 px, and no header or
    number is cut ("…" or clipped text)."""
    browser.set_window_size(1024, 768)
    browser.get(live_server.url + "/review")
    grid = WebDriverWait(browser, 60).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, "#review-summary-grid .ag-row"))
    )
    grid = browser.find_element(By.ID, "review-summary-grid")
    clipped_js = """
        const grid = arguments[0], right = grid.getBoundingClientRect().right;
        const out = [];
        for (const el of grid.querySelectorAll('.ag-header-cell, .ag-cell')) {
          const r = el.getBoundingClientRect();
          const text = el.querySelector('.ag-header-cell-text, .ag-cell-value') || el;
          if (r.right > right + 1 || text.scrollWidth > text.clientWidth + 1) {
            out.push(`${el.getAttribute('col-id')}: ${el.textContent.trim()}`);
          }
        }
        return out;
        """

    def clipped(d) -> list[str]:
        return d.execute_script(clipped_js, grid)

    # the grid sizes its flex columns after the first rows are drawn: wait for the layout to
    # settle (nothing clipped on two polls in a row), then read it once more
    seen: list[list[str]] = []
    with contextlib.suppress(TimeoutException):
        WebDriverWait(browser, 30, poll_frequency=0.25).until(
            lambda d: seen.append(clipped(d)) or (len(seen) >= 2 and seen[-1] == seen[-2] == [])
        )
    assert clipped(browser) == []


#: per cohort grid of the panel on screen: how much narrower than its card's content box it is
#: (px; 0 when it spans the card)
GRID_SHORTFALL_JS = """
return Array.from(document.querySelectorAll(
    '.cohort-slot:not([hidden]) .cohort-panel .card-body')).filter(b => b.querySelector(
    '.ag-root-wrapper')).map(body => {
  const style = getComputedStyle(body), box = body.getBoundingClientRect();
  const inner = box.width - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  return Math.round(inner - body.querySelector('.ag-root-wrapper').getBoundingClientRect().width);
});
"""


@pytest.mark.parametrize("size", [(1024, 768), (1440, 900)], ids=["1024", "1440"])
def test_fit003_cohort_grids_span_their_card(browser, live_server, size):
    """A section's grid takes its card's whole width: the section's floated "Download CSV"
    button is cleared (a grid beside the float lost the button's width, ~120 px)."""
    from bench import chromium

    browser.set_window_size(*size)
    browser.get(live_server.url + "/cohort?tab=baseline")
    chromium.settle(browser, f"{chromium.shown_panel('baseline')} .ag-row", 60)
    chromium.draw_lazy_parts(browser)  # the grids below the fold too
    chromium.settle(browser, f"{chromium.shown_panel('baseline')} .ag-row", 60)
    shortfalls = browser.execute_script(GRID_SHORTFALL_JS)
    assert len(shortfalls) >= 2, shortfalls  # Table 1 by group and by immune state
    assert all(abs(s) <= 2 for s in shortfalls), shortfalls
