/*
 * Clicks on the cohort page, relayed to the server only when the reader clicked (registered in
 * components/pages/cohort.py; docs/performance.md).
 *
 * Dash calls a callback with an ALL input each time components matching it are added: every
 * panel drawn (a tab opened, or drawn ahead by assets/35_cohort_tabs.js) would call a server
 * drill-down or CSV callback listening to every graph, and that call would supersede the
 * drill-down a reader is waiting for. These clientside relays answer at once and write their
 * store ("cohort-drill-ask", "cohort-csv-ask") only for a real click; the server callbacks
 * listen to the stores.
 */
window.dash_clientside = window.dash_clientside || {};
(function () {
  "use strict";

  /* click payloads already relayed (a payload is a new object on every click; the same object
     seen again is not a click) */
  var relayed = new WeakSet();

  /* the triggered entry that carries a value: [component id, property, value], or null */
  function clicked(triggered) {
    for (var i = 0; i < (triggered || []).length; i++) {
      var t = triggered[i];
      var cut = (t.prop_id || "").lastIndexOf(".");
      if (cut < 1 || t.value === null || t.value === undefined || t.value === 0) continue;
      try {
        return [JSON.parse(t.prop_id.slice(0, cut)), t.prop_id.slice(cut + 1), t.value];
      } catch (e) {
        continue;  // not a pattern id: not a cohort figure, grid or button
      }
    }
    return null;
  }

  window.dash_clientside.cohort = Object.assign(window.dash_clientside.cohort || {}, {
    /* a click on a cohort figure (clickData) or grid (cellClicked): {id, prop, value, at} */
    relayClick: function () {
      var dc = window.dash_clientside;
      var hit = clicked(dc.callback_context.triggered);
      if (!hit || typeof hit[2] !== "object" || relayed.has(hit[2])) return dc.no_update;
      relayed.add(hit[2]);
      return {id: hit[0], prop: hit[1], value: hit[2], at: Date.now()};
    },

    /* a click on a table's "Download CSV": {name, at} */
    relayCsv: function () {
      var dc = window.dash_clientside;
      var hit = clicked(dc.callback_context.triggered);
      if (!hit || !hit[0].name) return dc.no_update;
      return {name: hit[0].name, at: Date.now()};
    },
  });
})();
