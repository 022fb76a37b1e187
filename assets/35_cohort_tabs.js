/*
 * Cohort tabs kept once drawn (docs/performance.md, issue 19). The cohort page has one slot
 * per tab ({"type": "cohort-slot", "tab": ...}, in a box {"type": "cohort-slot-box"} that is
 * shown or hidden); a tab's panel is drawn into its slot the first time the tab is opened for
 * the current filters, or ahead of that, and kept (hidden) while another tab is shown, so
 * going back to it is a show, no request and no redraw.
 *
 * Two clientside callbacks (registered in components/pages/cohort.py): showTab, on a tab switch
 * or a filter change, and revealSlots, when the server has drawn a slot, decide by one rule:
 *  - the filter generation: one more on every filter change; a slot is fresh when it was drawn
 *    for the current generation (its "cohort-slot-gen" store, written by the server with the
 *    panel);
 *  - what shows: the active tab's slot when it is fresh; after a filter change the active slot
 *    also while it is redrawn (the page does not collapse; its dcc.Loading shows the wait); a
 *    stale slot of another tab stays hidden until it is redrawn (old numbers never show);
 *  - what is asked for: the active slot when it is not fresh and not yet asked for in this
 *    generation (its "cohort-slot-ask" store: the server's render_slot draws it).
 * The server never shows or hides a slot, so an answer arriving after the reader moved on
 * cannot show two tabs.
 *
 * Drawn ahead: once the page has been quiet for QUIET_MS, the next tab not drawn for the
 * current filters is asked for (the same ask, marked "ahead") and drawn hidden; then the next,
 * one at a time. A reader who looks at a tab for a few seconds opens the others as kept
 * tabs. A tab switch or a filter change restarts the wait; a tab drawn ahead is not asked for
 * again when it is opened.
 */
window.dash_clientside = window.dash_clientside || {};
(function () {
  "use strict";
  /* the page quiet this long (no callback pending, no tab switch or filter change): the next
     tab not drawn for the current filters is drawn ahead, hidden */
  var QUIET_MS = 1200;
  var ASK = "cohort-slot-ask";

  /* what this cohort page has drawn and asked for: {root, gen, drawn: {tab: gen}, asked:
     {tab: gen}}, kept per page (a new #cohort-panel element starts a new one from its layout:
     generation 0, the slot the server filled drawn) */
  var memo = {root: null};
  var timer = null;

  function page() {
    var root = document.getElementById("cohort-panel");
    if (!root) return null;
    if (memo.root !== root) {
      memo = {root: root, gen: 0, drawn: {}, asked: {}};
      root.querySelectorAll(".cohort-slot").forEach(function (box) {
        var tab = JSON.parse(box.id).tab;
        var slot = box.querySelector(".cohort-slot-body");
        if (slot && slot.firstElementChild) {
          memo.drawn[tab] = 0;
          memo.asked[tab] = 0;
        }
      });
    }
    return memo;
  }

  /* draw the next tab ahead once the page has been quiet for QUIET_MS (one at a time: the
     next waits for this one's answer and another quiet spell) */
  function schedule() {
    if (timer) window.clearTimeout(timer);
    timer = window.setTimeout(drawAhead, QUIET_MS);
  }

  function drawAhead() {
    timer = null;
    var m = page();
    var set = window.dash_clientside && window.dash_clientside.set_props;
    if (!m || !set) return;
    if (document.hidden || document.querySelector('[data-dash-is-loading="true"]')) {
      schedule();
      return;
    }
    var next = null;
    m.root.querySelectorAll(".cohort-slot").forEach(function (box) {
      var tab = JSON.parse(box.id).tab;
      if (next === null && m.drawn[tab] !== m.gen && m.asked[tab] !== m.gen) next = tab;
    });
    if (next === null) return;
    m.asked[next] = m.gen;
    set({type: ASK, tab: next}, {data: {gen: m.gen, at: Date.now(), ahead: true}});
  }

  /* the filter generation each slot was drawn for, by tab (from an ALL input or state) */
  function drawnFor(gens, entries) {
    var out = {};
    (entries || []).forEach(function (entry, i) { out[entry.id.tab] = gens[i]; });
    return out;
  }

  /* the one rule of what shows: the active tab's slot, when drawn for the current filters, or
     while it is redrawn after a filter change (state.keep) */
  function hiddenList(outputs, tab, state, slotGen) {
    return outputs.map(function (o) {
      var k = o.id.tab;
      return !(k === tab && (slotGen[k] === state.gen || state.keep === k));
    });
  }

  window.dash_clientside.cohort = Object.assign(window.dash_clientside.cohort || {}, {
    /* a tab switch or a filter change: the new state, what shows, what is asked for */
    showTab: function () {
      var dc = window.dash_clientside;
      var args = Array.prototype.slice.call(arguments);
      var tab = args[0];
      var gens = args[args.length - 2] || [];
      var old = args[args.length - 1] || {gen: 0, keep: null, asked: {}};
      var cc = dc.callback_context;
      var fired = (cc.triggered || []).map(function (t) { return t.prop_id || ""; });
      var filterChanged = fired.some(function (p) { return p.indexOf("cohort-f-") === 0; });
      var gen = old.gen + (filterChanged ? 1 : 0);
      var state = {
        gen: gen,
        keep: filterChanged ? tab : null,
        asked: Object.assign({}, old.asked || {}),
      };
      var slotGen = drawnFor(gens, cc.states_list[0]);
      var m = page() || {asked: {}};
      m.gen = gen;
      m.drawn = slotGen;
      var hidden = hiddenList(cc.outputs_list[1], tab, state, slotGen);
      var asks = cc.outputs_list[2].map(function (o) {
        var k = o.id.tab;
        // asked already: by a tab switch (state) or drawn ahead (m), in this generation
        if (k !== tab || slotGen[k] === gen || state.asked[k] === gen || m.asked[k] === gen) {
          return dc.no_update;
        }
        state.asked[k] = gen;
        m.asked[k] = gen;
        return {gen: gen, at: Date.now()};
      });
      schedule();
      return [state, hidden, asks];
    },

    /* a slot drawn by the server: what shows now */
    revealSlots: function (gens, tab, state) {
      var cc = window.dash_clientside.callback_context;
      var slotGen = drawnFor(gens, cc.inputs_list[0]);
      var m = page();
      if (m) m.drawn = slotGen;
      schedule();
      return hiddenList(cc.outputs_list, tab, state || {gen: 0, keep: null}, slotGen);
    },
  });

  /* a cohort page served: start drawing ahead once it is quiet */
  function watch() {
    var seen = null;
    new MutationObserver(function () {
      var root = document.getElementById("cohort-panel");
      if (root && root !== seen) {
        seen = root;
        page();
        schedule();
      }
    }).observe(document.body, {childList: true, subtree: true});
  }
  if (document.body) {
    watch();
  } else {
    document.addEventListener("DOMContentLoaded", watch);
  }
})();
