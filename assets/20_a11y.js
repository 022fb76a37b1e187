/*
 * Accessibility repairs for third-party components that offer no prop for them
 * (docs/accessibility.md). Runs on every DOM change; each repair is idempotent.
 *  - dbc.Tabs: its tabs carry tabindex="-1" (even the selected one), so Tab never reached them:
 *    each tab joins the tab order, Enter / Space opens it, ArrowLeft / ArrowRight move between the tabs (ARIA tabs).
 *  - dbc.Tabs without tab panes: every tab's aria-controls names a pane that does not exist
 *    ("...-tabpane-null") and the tabs share one id; the panel the page draws is the one
 *    region they control (the [role=tabpanel] whose data-tabs names the tab list), so they point there, with unique ids.
 *  - Dash 4 dcc.Dropdown: a readonly focus-target input is aria-hidden yet in the tab order;
 *    keyboard focus goes to the dropdown's own button instead (it opens on Enter / Space).
 *  - dcc.Upload: its file input has no label; it gets the label its page puts in data-file-label.
 *  - dbc.Modal: the dialog is named by its title.
 *  - plotly's modebar: its buttons were a Tab stop each; the modebar becomes one ARIA toolbar
 *    ("Chart tools") with one Tab stop (roving tabindex: the first button, or the last one
 *    used), ArrowLeft / ArrowRight / Home / End move between its buttons. It shows while it
 *    has focus (assets/10_app.css), not only on hover.
 */
(function () {
  "use strict";
  var serial = 0;

  function repair(root) {
    root.querySelectorAll('[role="tablist"] [role="tab"]').forEach(function (tab, i) {
      var list = tab.closest('[role="tablist"]');
      var controls = tab.getAttribute("aria-controls");
      if (controls && !document.getElementById(controls)) {
        var region = list && list.id &&
          document.querySelector('[role="tabpanel"][data-tabs="' + list.id + '"]');
        if (region && region.id) {
          tab.setAttribute("aria-controls", region.id);
        } else {
          tab.removeAttribute("aria-controls");
        }
      }
      if (list && list.id && tab.id.indexOf("-null") !== -1) {
        tab.id = list.id + "-tab-" + i;
      }
      tab.setAttribute("aria-selected", tab.classList.contains("active") ? "true" : "false");
      if (tab.getAttribute("tabindex") !== "0" && !tab.classList.contains("disabled")) {
        tab.setAttribute("tabindex", "0");
      }
    });
    root.querySelectorAll('.dash-dropdown-wrapper').forEach(function (wrap) {
      var target = wrap.querySelector('input.dash-dropdown-focus-target[aria-hidden="true"]');
      var button = wrap.querySelector('button.dash-dropdown');
      if (target && button && target.tabIndex !== -1) {
        target.tabIndex = -1;
        button.tabIndex = 0;
      }
    });
    root.querySelectorAll('input[type="file"]').forEach(function (input) {
      if (input.hasAttribute("aria-label") || input.labels && input.labels.length) return;
      var area = input.closest("[data-file-label]");
      input.setAttribute("aria-label", area ? area.getAttribute("data-file-label") : "Choose files");
    });
    root.querySelectorAll('.modal[role="dialog"]').forEach(function (dialog) {
      if (dialog.hasAttribute("aria-label") || dialog.hasAttribute("aria-labelledby")) return;
      var title = dialog.querySelector(".modal-title");
      if (!title) return;
      if (!title.id) title.id = "modal-title-" + (++serial);
      dialog.setAttribute("aria-labelledby", title.id);
    });
    repairModebars(root);
  }

  function repairModebars(root) {
    root.querySelectorAll(".js-plotly-plot .modebar").forEach(function (bar) {
      if (bar.getAttribute("role") !== "toolbar") bar.setAttribute("role", "toolbar");
      if (!bar.hasAttribute("aria-label")) bar.setAttribute("aria-label", "Chart tools");
      var buttons = bar.querySelectorAll("button.modebar-btn");
      var current = bar.querySelector('button.modebar-btn[tabindex="0"]') || buttons[0];
      buttons.forEach(function (b) {
        var want = b === current ? "0" : "-1";
        if (b.getAttribute("tabindex") !== want) b.setAttribute("tabindex", want);
      });
    });
  }

  function toolbarKeys(ev) {
    var button = ev.target && ev.target.closest && ev.target.closest(".modebar button.modebar-btn");
    if (!button) return;
    var buttons = Array.prototype.slice.call(
      button.closest(".modebar").querySelectorAll("button.modebar-btn"));
    var i = buttons.indexOf(button);
    var next = {ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: buttons.length - 1}[ev.key];
    if (next === undefined) return;
    ev.preventDefault();
    var to = buttons[(next + buttons.length) % buttons.length];
    buttons.forEach(function (b) { b.setAttribute("tabindex", b === to ? "0" : "-1"); });
    to.focus();
  }

  var schedule = window.immunosep.perFrame(function () { repair(document); });

  function tabKeys(ev) {
    var tab = ev.target && ev.target.closest && ev.target.closest('[role="tablist"] [role="tab"]');
    if (!tab) return;
    if (ev.key === "Enter" || ev.key === " ") {
      ev.preventDefault();
      tab.click();
    } else if (ev.key === "ArrowRight" || ev.key === "ArrowLeft") {
      var tabs = Array.prototype.slice.call(
        tab.closest('[role="tablist"]').querySelectorAll('[role="tab"]'));
      var i = tabs.indexOf(tab) + (ev.key === "ArrowRight" ? 1 : -1);
      ev.preventDefault();
      tabs[(i + tabs.length) % tabs.length].focus();
    }
  }

  function start() {
    repair(document);
    document.addEventListener("keydown", tabKeys);
    document.addEventListener("keydown", toolbarKeys);
    new MutationObserver(schedule).observe(document.body, {
      childList: true,
      subtree: true,
      attributes: true,
      attributeFilter: ["class", "aria-controls", "tabindex"],
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
