// The rating page's key guard (see assess/app/rate_app.py): the app fills in the minimum time on
// a photo and the hint's text.
(function () {
  var minView = __MIN_VIEW_MS__, hintText = __HINT__;
  if (window.assessGuard) { window.assessGuard.minView = minView; return; }
  var g = window.assessGuard = {minView: minView, shown: null, since: null, armed: null, armedAt: 0};
  var RATING = /^st-key-(level|better|first|reason|train-level)-/;
  function photos() {
    return Array.prototype.slice.call(document.querySelectorAll(".assess-photo img[data-code]"));
  }
  function marker() { return document.querySelector(".assess-ready"); }
  function loaded(img) { return img.complete && img.naturalWidth > 0; }
  function seenFor() { return g.since !== null && performance.now() - g.since >= g.minView; }
  function update() {
    var imgs = photos(), shown = imgs.map(function (i) { return i.getAttribute("src"); }).join(" ");
    if (shown !== g.shown) {
      g.shown = shown; g.since = null;
      imgs.forEach(function (i) { if (!loaded(i)) i.addEventListener("load", update, {once: true}); });
    }
    if (g.since === null && imgs.length && imgs.every(loaded)) {
      g.since = performance.now();
      setTimeout(update, g.minView + 5);
    }
    var m = marker(), root = document.documentElement;
    if (imgs.length && seenFor() && m) root.setAttribute("data-assess-seen", m.getAttribute("data-item"));
    else root.removeAttribute("data-assess-seen");
  }
  function allowed() {
    update();
    if (g.armed !== null) {
      var m = marker();
      if (m && m.getAttribute("data-run") !== g.armed) g.armed = null;
      else if (performance.now() - g.armedAt < 10000) return false;
      else g.armed = null;
    }
    return seenFor();
  }
  function arm() {
    var m = marker();
    g.armed = m ? m.getAttribute("data-run") : ""; g.armedAt = performance.now();
  }
  function hint() { window.assessHint(hintText); }  // hint.js
  function refuse(e) { e.preventDefault(); e.stopImmediatePropagation(); hint(); }
  function typing(t) {
    return t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName));
  }
  function ratingBox(el) {
    var box = el && el.closest && el.closest("[class*='st-key-']");
    if (!box) return null;
    var keyed = Array.prototype.some.call(box.classList, function (c) { return RATING.test(c); });
    return keyed && box.querySelector("button:not([disabled])") ? box : null;
  }
  function completes(box) {
    // A pair's answer is saved (and the page moves on) once both of its questions are answered.
    var name = box.className;
    var other = /st-key-better-/.test(name) ? "first" : /st-key-first-/.test(name) ? "better" : null;
    return other === null || !!document.querySelector(
      "[class*='st-key-" + other + "-'] [data-testid='stBaseButton-primary']");
  }
  function buttonFor(key) {
    var kbds = document.querySelectorAll("button:not([disabled]) kbd");
    for (var i = 0; i < kbds.length; i++) {
      if (kbds[i].textContent.trim().toLowerCase() === key.toLowerCase()) {
        return ratingBox(kbds[i]);
      }
    }
    return null;
  }
  window.addEventListener("keydown", function (e) {
    if (typing(e.target) || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.repeat) {
      e.preventDefault(); e.stopImmediatePropagation();
      if (photos().length) hint();
      return;
    }
    var box = photos().length ? buttonFor(e.key) : null;
    if (!box) return;
    if (!allowed()) { refuse(e); return; }
    if (completes(box)) arm();
  }, true);
  window.addEventListener("click", function (e) {
    var box = photos().length ? ratingBox(e.target) : null;
    if (!box) return;
    if (!allowed()) { refuse(e); return; }
    if (completes(box)) arm();
  }, true);
  new MutationObserver(update).observe(document.body, {subtree: true, childList: true,
    attributes: true, attributeFilter: ["src", "data-run"]});
  // A page drawn whole before the guard is installed (a reload that stays signed in) changes no
  // more: look at its photos now.
  update();
})();
