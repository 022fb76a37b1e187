/*
 * Lazily drawn cohort charts and grids (docs/performance.md, issue 19). The cohort page draws
 * a tab's first chart at once, and its first section's grid when no chart is above it; every
 * other chart or grid arrives as a placeholder (.cohort-lazy, with the chart's title, and its
 * text alternative beside it); the part itself came with the panel, in a dcc.Store
 * ({"type": "cohort-lazy-part", "name": ...}) that nothing draws. When a placeholder comes
 * into view, this script writes the time into the part's "seen" store ({"type":
 * "cohort-seen", "name": ...}); the clientside callback drawLazyPart (registered in
 * components/pages/cohort.py) then puts the part into its slot: no request, nothing the panel
 * did not already hold.
 *
 * Robust to Dash re-rendering the panel (a filter change, a tab switch): every DOM change
 * re-checks the placeholders (rAF-throttled), and a placeholder asked for more than
 * RETRY_MS ago that is still in view is asked for again.
 */
window.dash_clientside = window.dash_clientside || {};
window.dash_clientside.cohort = Object.assign(window.dash_clientside.cohort || {}, {
  /* the chart or grid of a slot once the slot has been seen (else nothing changes) */
  drawLazyPart: function (seen, part) {
    if (!seen || !part) return window.dash_clientside.no_update;
    return part;
  },
});

(function () {
  "use strict";
  var RETRY_MS = 4000;
  var MARGIN = "0px";
  var DWELL_MS = 250;
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

  // a slot counts as seen when it is still in view DWELL_MS after it came into view: while
  // a new panel is laid out (grids measuring their rows) the slots below pass through the
  // window for a moment, and drawing them then would cost the tab switch what lazy drawing
  // saves
  var observer = "IntersectionObserver" in window ? new IntersectionObserver(function (entries) {
    entries.forEach(function (entry) {
      if (!entry.isIntersecting) return;
      var slot = entry.target;
      window.setTimeout(function () {
        if (slot.isConnected && inView(slot)) ask(slot);
      }, DWELL_MS);
    });
  }, {rootMargin: MARGIN}) : null;

  function inView(el) {
    var r = el.getBoundingClientRect();
    return r.bottom >= 0 && r.top <= window.innerHeight;
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
      } else if (asked.has(placeholder) && inView(slot)) {
        ask(slot); // asked for before (maybe for another chart, or lost): throttled retry
      }
    });
  }

  var schedule = window.immunosep.perFrame(scan);

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
