// The rating page's zoom, key hints and text-box focus (see assess/app/rate_app.py).
// (No "<" directly before a letter or "/" anywhere here: the page drops such a script.)
//
// Zoom and pan in place: the mouse wheel, a pinch, "+" / "-" zoom around the pointer (or the
// centre), dragging pans, a double-click shows the photo 1:1 (one pixel of the full copy per
// device pixel) or, when zoomed, fits it again; "Z" fits it again. The display copy is shown
// first; the full copy is fetched only when zooming starts, in a layer over the photo that the
// key guard does not count as a photo (so rating keys stay as they are while it loads).
(function () {
  if (window.assessZoom) return;
  var Z = window.assessZoom = {layer: null, photo: null, z: 1, cx: 0.5, cy: 0.5, full: null};
  var MAX = 16, STEP = 1.25;
  function typing(t) {
    return t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName));
  }
  function photoOf(el) {
    var box = el && el.closest ? el.closest(".assess-photo[data-full]") : null;
    return box ? box.querySelector("img[data-code]") : null;
  }
  function photos() {
    return Array.prototype.slice.call(
      document.querySelectorAll(".assess-photo[data-full] img[data-code]"));
  }
  // The rectangle the fitted photo covers inside its img box (object-fit: contain).
  function fitted(img) {
    var r = img.getBoundingClientRect(), nw = img.naturalWidth || 4, nh = img.naturalHeight || 3;
    var s = Math.min(r.width / nw, r.height / nh), w = nw * s, h = nh * s;
    return {left: r.left + (r.width - w) / 2, top: r.top + (r.height - h) / 2, width: w, height: h,
            box: r};
  }
  function close() {
    if (Z.layer) Z.layer.remove();
    Z.layer = Z.photo = Z.full = null; Z.z = 1; Z.cx = Z.cy = 0.5;
    document.documentElement.removeAttribute("data-assess-zoom");
  }
  function open(img) {
    if (Z.photo === img && Z.layer && Z.layer.isConnected) return;
    close();
    var holder = img.closest(".assess-photo");
    var layer = document.createElement("div");
    layer.className = "assess-zoom";
    var pic = document.createElement("img");
    pic.className = "assess-zoom-full"; pic.alt = ""; pic.draggable = false;
    pic.src = img.getAttribute("src");  // the display copy at once, the full copy when it arrives
    layer.appendChild(pic);
    holder.appendChild(layer);
    Z.layer = layer; Z.photo = img; Z.pic = pic; Z.src = img.getAttribute("src");
    var full = new Image();
    full.onload = function () {
      if (Z.photo !== img || Z.src !== img.getAttribute("src")) return;
      Z.full = {w: full.naturalWidth, h: full.naturalHeight};
      pic.src = full.src;
      if (Z.want11) { Z.want11 = false; oneToOne(Z.at); } else draw();
      layer.setAttribute("data-full", "1");
    };
    full.src = holder.getAttribute("data-full");
  }
  function place() {
    var r = Z.photo.getBoundingClientRect();
    var hr = Z.layer.parentNode.getBoundingClientRect();
    Z.layer.style.left = (r.left - hr.left) + "px"; Z.layer.style.top = (r.top - hr.top) + "px";
    Z.layer.style.width = r.width + "px"; Z.layer.style.height = r.height + "px";
  }
  function draw() {
    if (!Z.layer) return;
    place();
    var f = fitted(Z.photo), d = window.devicePixelRatio || 1;
    var w = f.width * Z.z, h = f.height * Z.z;
    if (Z.full && Math.abs(w * d - Z.full.w) < 0.5) { w = Z.full.w / d; h = Z.full.h / d; }
    // Keep the photo on screen: centred when smaller than the box, edges inside when larger.
    var bw = f.box.width, bh = f.box.height;
    var left = w <= bw ? (bw - w) / 2 : Math.min(0, Math.max(bw - w, bw / 2 - Z.cx * w));
    var top = h <= bh ? (bh - h) / 2 : Math.min(0, Math.max(bh - h, bh / 2 - Z.cy * h));
    Z.cx = (bw / 2 - left) / w; Z.cy = (bh / 2 - top) / h;
    // Whole device pixels, so that at 1:1 each pixel of the full copy lands on one of the screen.
    left = Math.round(left * d) / d; top = Math.round(top * d) / d;
    var s = Z.pic.style;
    s.width = w + "px"; s.height = h + "px"; s.left = left + "px"; s.top = top + "px";
    s.imageRendering = Z.full && w * d >= Z.full.w - 0.5 ? "pixelated" : "auto";
    document.documentElement.setAttribute("data-assess-zoom",
                                           Math.abs(Z.z - 1) > 0.001 ? "zoomed" : "fit");
  }
  // The point (x, y) (client coordinates; the centre when not given) inside img's box, and the
  // point of the photo under it as fractions of the photo (u, v) at the zoom it has now (z).
  function pointAt(img, x, y) {
    var f = fitted(img), bw = f.box.width, bh = f.box.height;
    var s = Z.photo === img && Z.layer ? Z : {z: 1, cx: 0.5, cy: 0.5};
    var w = f.width * s.z, h = f.height * s.z;
    var px = x === undefined ? bw / 2 : x - f.box.left, py = y === undefined ? bh / 2 : y - f.box.top;
    return {px: px, py: py, u: (px - (bw / 2 - s.cx * w)) / w, v: (py - (bh / 2 - s.cy * h)) / h,
            z: s.z};
  }
  // Show img at zoom z (1: fitted) with the photo point (at.u, at.v) under the box point (px, py).
  function zoomTo(img, z, at, px, py) {
    var f = fitted(img), bw = f.box.width, bh = f.box.height;
    z = Math.max(1, Math.min(MAX * maxZoom(img, f), z));
    if (z <= 1.0001) { close(); return; }
    if (Z.photo !== img || !Z.layer) open(img);
    var nw = f.width * z, nh = f.height * z;
    Z.z = z;
    Z.cx = (bw / 2 - (px - at.u * nw)) / nw; Z.cy = (bh / 2 - (py - at.v * nh)) / nh;
    draw();
  }
  // Zoom by factor k keeping the photo point under (x, y) (client coordinates) where it is.
  function zoomBy(img, k, x, y) {
    var at = pointAt(img, x, y);
    zoomTo(img, at.z * k, at, at.px, at.py);
  }
  function maxZoom(img, f) {
    // Up to 16 times the 1:1 view of the full copy (or of the display copy while it loads).
    var d = window.devicePixelRatio || 1;
    var w = Z.full && Z.photo === img ? Z.full.w : img.naturalWidth * 2;
    return Math.max(1, w / d / f.width);
  }
  function oneToOne(at) {
    var img = Z.photo;
    if (!Z.full) { Z.want11 = true; Z.at = at; return; }
    var f = fitted(img), d = window.devicePixelRatio || 1, target = Z.full.w / d / f.width;
    if (target > 1.0001) {
      zoomBy(img, target / Z.z, at && at.x, at && at.y);
      if (Z.layer) { Z.z = target; draw(); }
    } else {  // a full copy smaller than the fitted photo: 1:1 is smaller than the window
      Z.z = target; Z.cx = Z.cy = 0.5; draw();
    }
  }
  window.addEventListener("wheel", function (e) {
    var img = photoOf(e.target);
    if (!img || e.ctrlKey && !e.deltaY) return;
    e.preventDefault();
    zoomBy(img, Math.pow(STEP, -e.deltaY / 100), e.clientX, e.clientY);
  }, {passive: false, capture: true});
  window.addEventListener("dblclick", function (e) {
    var img = photoOf(e.target);
    if (!img) return;
    e.preventDefault();
    if (Z.layer && Z.photo === img && Math.abs(Z.z - 1) > 0.001) { close(); return; }
    open(img);
    oneToOne({x: e.clientX, y: e.clientY});
  }, true);
  // Dragging pans; two fingers pinch: the zoom follows the distance between them, and the point
  // of the photo that was between them when they touched stays between them.
  var pointers = {}, drag = null;
  function two() {
    var ids = Object.keys(pointers);
    if (ids.length !== 2) return null;
    var a = pointers[ids[0]], b = pointers[ids[1]];
    return {dist: Math.hypot(a.x - b.x, a.y - b.y), x: (a.x + b.x) / 2, y: (a.y + b.y) / 2};
  }
  window.addEventListener("pointerdown", function (e) {
    var img = photoOf(e.target);
    if (!img) return;
    pointers[e.pointerId] = {x: e.clientX, y: e.clientY};
    var t = two();
    if (t) drag = {pinch: t.dist, img: img, at: pointAt(img, t.x, t.y)};
    else drag = {x: e.clientX, y: e.clientY, img: img};
  }, true);
  window.addEventListener("pointermove", function (e) {
    if (!drag || !(e.pointerId in pointers)) return;
    pointers[e.pointerId] = {x: e.clientX, y: e.clientY};
    var t = two();
    if (drag.pinch && t) {
      if (t.dist > 0 && drag.pinch > 0) {
        var at = pointAt(drag.img, t.x, t.y);  // where the fingers' midpoint is now
        zoomTo(drag.img, drag.at.z * t.dist / drag.pinch, drag.at, at.px, at.py);
      }
      e.preventDefault();
    } else if (!drag.pinch && Z.layer && Z.photo === drag.img && Z.z > 1) {
      var w = fitted(Z.photo).width * Z.z, h = fitted(Z.photo).height * Z.z;
      Z.cx -= (e.clientX - drag.x) / w; Z.cy -= (e.clientY - drag.y) / h;
      drag.x = e.clientX; drag.y = e.clientY;
      draw();
      e.preventDefault();
    }
  }, true);
  function up(e) {
    delete pointers[e.pointerId];
    if (!Object.keys(pointers).length) drag = null;
  }
  window.addEventListener("pointerup", up, true);
  window.addEventListener("pointercancel", up, true);
  window.addEventListener("resize", function () { if (Z.layer) draw(); });

  // ------------------------------------------------------------------ keys: zoom, hints, focus
  var focusWanted = 0;
  function hint(text) { window.assessHint(text); }  // hint.js
  function keysShown() {
    return Array.prototype.map.call(document.querySelectorAll("button:not([disabled]) kbd"),
      function (k) { return k.textContent.trim().toLowerCase(); });
  }
  function digitHint(key) {
    var digits = keysShown().filter(function (k) { return /^\d$/.test(k); });
    var scale = document.querySelector("[data-assess-scale]");
    var mode = document.querySelector(".assess-ready");
    mode = mode ? mode.getAttribute("data-mode") : "";
    var range = digits.length ? digits[0] + "–" + digits[digits.length - 1] : "";
    if (!digits.length) return "The digit keys choose nothing on this screen";
    if (mode === "rate" && scale) {
      return key + " is not a level of the " + scale.getAttribute("data-assess-scale") +
        " — press " + range;
    }
    return key + " is not a choice here — press " + range;
  }
  window.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (typing(e.target)) {
      // Enter in a box applies it and hands the keys back to the page; in the comment box it
      // also saves: the reason of "Other", or the comment of an answered item with its answer.
      if (e.key === "Enter" && e.target.tagName === "INPUT") {
        var t = e.target, inComment = !!t.closest(".st-key-comment");
        setTimeout(function () {
          t.blur();
          var save = inComment && (
            document.querySelector(".st-key-reason-other button:not([disabled])") ||
            document.querySelector(".st-key-comment-save button:not([disabled])"));
          if (save && t.value.trim()) setTimeout(function () { save.click(); }, 30);
        }, 0);
      }
      return;
    }
    var imgs = photos();
    if (imgs.length && !e.repeat) {
      var img = Z.photo && Z.photo.isConnected ? Z.photo : imgs[0];
      if (e.key === "+" || e.key === "=") { zoomBy(img, STEP); e.preventDefault(); return; }
      if (e.key === "-" || e.key === "_") { zoomBy(img, 1 / STEP); e.preventDefault(); return; }
      if (e.key === "z" || e.key === "Z") { close(); e.preventDefault(); return; }
    }
    var k = e.key.toLowerCase();
    // Scales entered by typing or a slider (entry.js) read digits themselves.
    if (/^\d$/.test(k) && document.querySelector(".assess-photo img[data-code]") &&
        keysShown().indexOf(k) < 0 &&
        !document.querySelector(".assess-entry")) {
      hint(digitHint(k));
      return;
    }
    if (k === "m" && keysShown().indexOf("m") >= 0) focusWanted = performance.now();
    if (k === "5" && document.querySelector(".st-key-reason-other button:not([disabled])")) {
      focusWanted = performance.now();
    }
  }, true);
  window.addEventListener("click", function (e) {
    var t = e.target;
    if (t && t.closest && t.closest(".st-key-comment-open, .st-key-reason-other")) {
      focusWanted = performance.now();
    }
  }, true);
  function update() {
    if (Z.layer && (!Z.photo.isConnected || !Z.layer.isConnected ||
                    Z.photo.getAttribute("src") !== Z.src)) close();
    if (focusWanted && performance.now() - focusWanted < 5000) {
      var box = document.querySelector(".st-key-comment input");
      if (box && document.activeElement !== box) {
        box.focus();
        focusWanted = 0;
      }
    } else focusWanted = 0;
  }
  new MutationObserver(update).observe(document.body, {subtree: true, childList: true,
    attributes: true, attributeFilter: ["src", "data-run"]});
})();
