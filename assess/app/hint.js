// A short message at the bottom of the rating page, gone after 2.5 s; one at a time. Used by the
// key guard, the zoom's digit hints and the typed entry (key_guard.js, zoom.js, entry.js), each
// of which carries this in front of it; it installs once.
(function () {
  if (window.assessHint) return;
  window.assessHint = function (text) {
    var old = document.getElementById("assess-guard-hint");
    if (old) old.remove();
    var el = document.createElement("div");
    el.id = "assess-guard-hint"; el.className = "assess-hint"; el.setAttribute("role", "status");
    el.textContent = text;
    document.body.appendChild(el);
    setTimeout(function () { el.remove(); }, 2500);
  };
})();
