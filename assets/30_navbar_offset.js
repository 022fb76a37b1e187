/*
 * The bottom edge of the navbar on screen, as the CSS variable --navbar-bottom on <html>
 * (0px once the navbar has scrolled out of view). Fixed overlays that must not cover the
 * navigation start there: the cohort drill-down side panel (components/pages/cohort.py,
 * DRILL_PANEL_STYLE) sits below the navbar at the top of the page and takes the full height
 * once the navbar has scrolled away. Updated on scroll, resize and when the navbar changes size
 * (links wrapping at 1024 px, the DSMB's unmask control).
 */
(function () {
  "use strict";
  var NAVBAR = "shell-navbar";
  var observed = null;

  function place() {
    var nav = document.getElementById(NAVBAR);
    var bottom = nav ? Math.max(0, Math.round(nav.getBoundingClientRect().bottom)) : 0;
    document.documentElement.style.setProperty("--navbar-bottom", bottom + "px");
    if (nav && nav !== observed && window.ResizeObserver) {
      observed = nav;
      new ResizeObserver(schedule).observe(nav);
    }
  }

  var schedule = window.immunosep.perFrame(place);

  function start() {
    place();
    window.addEventListener("scroll", schedule, { passive: true });
    window.addEventListener("resize", schedule);
    // the navbar is drawn by Dash after the page loads (and redrawn on sign-in / unmask)
    new MutationObserver(function () {
      if (document.getElementById(NAVBAR) !== observed) {
        schedule();
      }
    }).observe(document.body, { childList: true, subtree: true });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
