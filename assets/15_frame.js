/*
 * Shared by the scripts after it (Dash loads assets in file-name order): perFrame(fn) returns
 * a function that runs fn at most once per animation frame however often it is called in
 * between, for work that reacts to DOM changes, scrolling or resizing (20_a11y.js,
 * 30_navbar_offset.js, 40_lazy_charts.js).
 */
window.immunosep = window.immunosep || {};
window.immunosep.perFrame = function (fn) {
  "use strict";
  var pending = false;
  return function () {
    if (pending) return;
    pending = true;
    window.requestAnimationFrame(function () {
      pending = false;
      fn();
    });
  };
};
