/*
 * Lazily drawn cohort charts (docs/performance.md, issue 19). The cohort page draws a tab's
 * first chart at once; every other chart arrives as a placeholder (.cohort-lazy, with the
 * chart's title, and its text alternative beside it). When a placeholder comes within 200 px
 * of the window, this script writes the time into the chart's dcc.Store
 * ({"type": "cohort-seen", "name": ...}); the server callback draw_lazy_chart
 * (components/pages/cohort.py) then sends that chart, built from the same role-filtered panel
 * as the rest of the tab.
 *
 * Robust to Dash re-rendering the panel (a filter change, a tab switch): every DOM change
 * re-checks the placeholders (rAF-throttled), and a placeholder asked for more than
 * RETRY_MS ago that is still in view is asked for again (the server answers from its cache).
 */
(function () {
  "use strict";
  var RETRY_MS = 4000;
  var MARGIN = "200px 0px";
  var asked = new WeakMap(); // placeholder element -> {id: the slot's id, t: when asked}
  var known = new WeakSet(); // placeholder elements already observed

  function storeId(slot) {
    try {
      var id = JSON.parse(slot.id);
      return {type: "cohort-seen", name: id.name};
    } catch (e) {
      return null;
    }
  }

  function ask(slot) {
    var placeholder = slot.querySelector(".cohort-lazy-placeholder");
    var set = window.dash_clientside && window.dash_clientside.set_props;
    if (!placeholder || !set) return;
    var last = asked.get(placeholder);
    var now = Date.now();
    if (last && last.id === slot.id && now - last.t < RETRY_MS) return;
    var id = storeId(slot);
    if (!id) return;
    asked.set(placeholder, {id: slot.id, t: now});
    slot.setAttribute("data-lazy-state", "asked");
    set(id, {data: now});
  }

  var observer = "IntersectionObserver" in window ? new IntersectionObserver(function (entries) {
    entries.forEach(function (entry) {
      if (entry.isIntersecting) ask(entry.target);
    });
  }, {rootMargin: MARGIN}) : null;

  function inView(el) {
    var r = el.getBoundingClientRect();
    return r.bottom >= -200 && r.top <= window.innerHeight + 200;
  }

  function scan() {
    document.querySelectorAll(".cohort-lazy").forEach(function (slot) {
      var placeholder = slot.querySelector(".cohort-lazy-placeholder");
      if (!placeholder) {
        slot.setAttribute("data-lazy-state", "drawn");
        return;
      }
      if (!known.has(placeholder)) {
        // a new placeholder (a new panel, or a chart replaced by its placeholder again)
        known.add(placeholder);
        slot.setAttribute("data-lazy-state", "pending");
        if (observer) {
          observer.unobserve(slot);
          observer.observe(slot); // reports the current intersection at once
        } else {
          ask(slot);
        }
      } else if (inView(slot)) {
        ask(slot); // asked for before (maybe for another chart, or lost): throttled retry
      }
    });
  }

  var pending = false;
  function schedule() {
    if (pending) return;
    pending = true;
    window.requestAnimationFrame(function () {
      pending = false;
      scan();
    });
  }

  function start() {
    new MutationObserver(schedule).observe(document.body, {childList: true, subtree: true});
    window.setInterval(scan, RETRY_MS);
    schedule();
  }

  if (document.body) {
    start();
  } else {
    document.addEventListener("DOMContentLoaded", start);
  }
})();
