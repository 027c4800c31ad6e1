// Keyboard entry of the scales one digit cannot rate (see assess/app/entry.py); installs once.
// Typed levels: digits (and "." or "," for a half step) build a number shown at the bottom right,
// Backspace takes one back, Escape clears, Enter clicks that level's button. A VAS: arrow keys
// (and PageUp/PageDown) move the slider wherever the focus is; Enter clicks its save
// button. Clicks go through the key guard (key_guard.js), which holds them until the photo is seen.
(function () {
  var unmoved = __UNMOVED__;
  if (window.assessEntry) return;
  var e0 = window.assessEntry = {typed: "", item: null};
  var MOVE = /^(ArrowLeft|ArrowRight|ArrowUp|ArrowDown|PageUp|PageDown)$/;
  function entry() { return document.querySelector(".assess-entry"); }
  function item() {
    var m = document.querySelector(".assess-ready");
    return m ? m.getAttribute("data-item") : null;
  }
  function typing(t) {  // a text box, not the VAS slider (an input of type range)
    return t && (t.isContentEditable || /^(TEXTAREA|SELECT)$/.test(t.tagName)
                 || t.tagName === "INPUT" && t.type !== "range");
  }
  function show(text) {
    var el = document.getElementById("assess-typed");
    if (!text) { if (el) el.remove(); return; }
    if (!el) {
      el = document.createElement("div");
      el.id = "assess-typed"; el.className = "assess-typed"; el.setAttribute("role", "status");
      document.body.appendChild(el);
    }
    el.textContent = text;
  }
  function hint(text) { window.assessHint(text); }  // hint.js
  function stop(e) { e.preventDefault(); e.stopImmediatePropagation(); }
  function button(key) {
    return document.querySelector(".st-key-" + key + " button");
  }
  function keyOf(text) {
    var n = Number(text);
    if (text === "" || isNaN(n)) return null;
    return "level-" + String(n).replace(".", "_");
  }
  function typedKey(e, box) {
    var k = e.key;
    if (/^[0-9]$/.test(k) || ((k === "." || k === ",") && e0.typed.indexOf(".") < 0)) {
      stop(e); e0.typed += (k === "," ? "." : k); show(e0.typed + "\u2009\u21b5"); return;
    }
    if (k === "Backspace" && e0.typed) { stop(e); e0.typed = e0.typed.slice(0, -1); show(e0.typed); return; }
    if (k === "Escape" && e0.typed) { stop(e); e0.typed = ""; show(""); return; }
    if (k !== "Enter" || !e0.typed) return;
    stop(e);
    var text = e0.typed, key = keyOf(text), btn = key && button(key);
    e0.typed = ""; show("");
    if (!btn) { hint(text + " is not a level: " + box.getAttribute("data-hint")); return; }
    btn.click();
  }
  function slider() { return document.querySelector("[class*='st-key-vas-'] input[type='range']"); }
  function vasKey(e) {
    var thumb = slider();
    if (!thumb) return;
    if (MOVE.test(e.key)) {
      if (e.target === thumb || e.assessRelayed) return;
      stop(e);
      thumb.focus();
      ["keydown", "keyup"].forEach(function (type) {
        var ev = new KeyboardEvent(type, {key: e.key, code: e.code, bubbles: true, cancelable: true});
        ev.assessRelayed = true;
        thumb.dispatchEvent(ev);
      });
      return;
    }
    if (e.key === "Enter") {
      stop(e);
      var btn = button("level-vas");
      if (!btn || btn.disabled) { hint(unmoved); return; }
      btn.click();
    }
  }
  window.addEventListener("keydown", function (e) {
    if (typing(e.target) || e.ctrlKey || e.metaKey || e.altKey || e.repeat && !MOVE.test(e.key)) return;
    var box = entry(), now = item();
    if (now !== e0.item) { e0.item = now; e0.typed = ""; show(""); }
    if (!box || !document.querySelector(".assess-photo img")) return;
    if (box.getAttribute("data-entry") === "typed") typedKey(e, box);
    else vasKey(e);
  }, true);
  new MutationObserver(function () {
    var now = item();
    if (now !== e0.item) { e0.item = now; e0.typed = ""; show(""); }
    if (!entry()) show("");
  }).observe(document.body, {subtree: true, childList: true, attributes: true,
    attributeFilter: ["data-item"]});
})();
