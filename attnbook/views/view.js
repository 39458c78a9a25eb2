/* attnbook attention view: one self-contained renderer for notebook outputs and the static site.
 * No network, no dependency. Data: the JSON in the root's <script class="attnbook-view-data">,
 * written by attnbook.views.AttentionView (weights deflated, quantised, base64).
 * Drawings are SVG laid out for the width of their container (re-laid out on resize); heatmaps are
 * embedded pixel images, as matplotlib writes them. Colours of text and lines come from CSS
 * custom properties (view.css: the site theme's, JupyterLab's, or plain defaults), resolved into
 * the SVG/PNG export, which gets a solid background of the current theme. */
(function () {
  "use strict";
  var VERSION = 2;
  if (window.attnbookView && window.attnbookView.version >= VERSION) return;
  var SVGNS = "http://www.w3.org/2000/svg";
  var MASK_RGB = [211, 211, 211]; // matplotlib's lightgrey, the book's mask colour
  var VIEW_NAMES = { heatmap: "heatmap", head: "head view", model: "model view" };
  var HEAD_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
  var FONT = 11, SMALL = 10, CHAR = 6.2; // px; labels are drawn at scale 1, so these are the rendered sizes
  var MIN_CELL = 2, MIN_THUMB = 28, MIN_HEAD_GAP = 90;

  // -- decoding -------------------------------------------------------------------------------
  function base64Bytes(text) {
    var bin = atob(text), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  function inflate(bytes) {
    if (typeof DecompressionStream === "undefined") {
      return Promise.reject(new Error("this browser cannot inflate the embedded data (DecompressionStream is missing)"));
    }
    var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
    return new Response(stream).arrayBuffer().then(function (b) { return new Uint8Array(b); });
  }
  function half(h) { // IEEE 754 binary16 -> number
    var s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, f = h & 0x3ff;
    if (e === 0) return s * Math.pow(2, -14) * (f / 1024);
    if (e === 31) return f ? NaN : s * Infinity;
    return s * Math.pow(2, e - 15) * (1 + f / 1024);
  }
  function decodeWeights(bytes, encoding) {
    var out, i;
    if (encoding === "u8sqrt") {
      out = new Float32Array(bytes.length);
      for (i = 0; i < bytes.length; i++) { var q = bytes[i] / 255; out[i] = q * q; }
    } else if (encoding === "f16") {
      out = new Float32Array(bytes.length / 2);
      for (i = 0; i < out.length; i++) out[i] = half(bytes[2 * i] | (bytes[2 * i + 1] << 8));
    } else {
      throw new Error("unknown encoding " + encoding);
    }
    return out;
  }
  function decodeMask(text, n) {
    var bytes = base64Bytes(text), out = new Uint8Array(n);
    for (var i = 0; i < n; i++) out[i] = (bytes[i >> 3] >> (7 - (i & 7))) & 1;
    return out;
  }
  function loadEntry(entry) { // -> Promise of entry with .weights (one Float32Array per sample) and .allowed
    if (entry._ready) return entry._ready;
    entry._ready = inflate(base64Bytes(entry.data)).then(function (bytes) {
      var flat = decodeWeights(bytes, entry.encoding), at = 0, L = entry.layers.length, H = entry.heads;
      entry.weights = []; entry.allowed = [];
      entry.samples.forEach(function (s) {
        var n = L * H * s.queries.length * s.keys.length;
        entry.weights.push(flat.subarray(at, at + n)); at += n;
        entry.allowed.push(s.mask ? decodeMask(s.mask, s.queries.length * s.keys.length) : null);
      });
      return entry;
    });
    return entry._ready;
  }

  // -- small DOM helpers ------------------------------------------------------------------------
  function el(tag, attrs, parent, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    if (parent) parent.appendChild(node);
    return node;
  }
  function svg(tag, attrs, parent, text) {
    var node = document.createElementNS(SVGNS, tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    if (parent) parent.appendChild(node);
    return node;
  }
  function tip(node, text) { svg("title", {}, node, text); return node; } // the full name on hover
  var uid = 0;
  function labelled(parent, text, control) {
    var id = "attnbook-c" + (++uid) + "-" + Math.random().toString(36).slice(2, 7);
    var wrap = el("span", { "class": "attnbook-control" }, parent);
    el("label", { "for": id }, wrap, text);
    control.id = id;
    wrap.appendChild(control);
    return wrap;
  }
  function fmt(v) { return v >= 0.001 || v === 0 ? v.toFixed(3) : v.toExponential(1); }
  function short(label, n) { label = String(label); return label.length > n ? label.slice(0, Math.max(1, n - 1)) + "…" : label; }
  function slug(text) { return String(text || "attention").toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "") || "attention"; }
  function layerName(i) { return "L" + i; }
  function headColour(h) { return h < HEAD_COLOURS.length ? HEAD_COLOURS[h] : "hsl(" + ((h * 137.5) % 360).toFixed(0) + ",60%,45%)"; }
  function activate(node, act) { // a focusable SVG element that acts like a button
    node.setAttribute("tabindex", "0");
    node.setAttribute("role", "button");
    node.addEventListener("click", act);
    node.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter" || ev.key === " " || ev.key === "Spacebar") { ev.preventDefault(); act(ev); }
    });
  }
  function longest(list, cap) {
    var n = 1;
    for (var i = 0; i < list.length; i++) n = Math.max(n, String(list[i]).length);
    return Math.min(cap, n);
  }

  // -- colour ----------------------------------------------------------------------------------
  function palette(hex) {
    var out = new Uint8Array(768);
    for (var i = 0; i < 768; i++) out[i] = parseInt(hex.substr(2 * i, 2), 16);
    return out;
  }
  // one head's map as a data-URL image, one pixel per cell; colour = cmap((w / vmax)^gamma)
  function mapImage(w, off, nq, nk, allowed, gamma, lut, vmax) {
    var canvas = document.createElement("canvas");
    canvas.width = nk; canvas.height = nq;
    var ctx = canvas.getContext("2d"), img = ctx.createImageData(nk, nq), px = img.data;
    for (var i = 0; i < nq * nk; i++) {
      var r, g, b;
      if (allowed && !allowed[i]) { r = MASK_RGB[0]; g = MASK_RGB[1]; b = MASK_RGB[2]; }
      else {
        var t = vmax > 0 ? Math.pow(Math.min(1, w[off + i] / vmax), gamma) : 0, k = Math.round(t * 255) * 3;
        r = lut[k]; g = lut[k + 1]; b = lut[k + 2];
      }
      px[4 * i] = r; px[4 * i + 1] = g; px[4 * i + 2] = b; px[4 * i + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
    return canvas.toDataURL("image/png");
  }
  function maxOf(w, off, n, allowed) {
    var m = 0;
    for (var i = 0; i < n; i++) if ((!allowed || allowed[i]) && w[off + i] > m) m = w[off + i];
    return m;
  }
  function image(parent, href, x, y, width, height) {
    var node = svg("image", { x: x, y: y, width: width, height: height, preserveAspectRatio: "none",
                              "image-rendering": "pixelated", style: "image-rendering:pixelated" }, parent);
    node.setAttribute("href", href);
    node.setAttributeNS("http://www.w3.org/1999/xlink", "xlink:href", href);
    return node;
  }
  function text(parent, x, y, content, attrs, cls) {
    var a = { x: x, y: y, "font-size": SMALL, "class": cls || "attnbook-fg" };
    Object.keys(attrs || {}).forEach(function (k) { a[k] = attrs[k]; });
    return svg("text", a, parent, content);
  }
  function colourbar(parent, x, y, height, gamma, lut, vmax) {
    var defs = svg("defs", {}, parent), id = "attnbook-grad-" + (++uid);
    var grad = svg("linearGradient", { id: id, x1: 0, y1: 1, x2: 0, y2: 0 }, defs);
    for (var k = 0; k <= 16; k++) {
      var c = Math.round((k / 16) * 255) * 3;
      svg("stop", { offset: (k / 16).toFixed(3), "stop-color": "rgb(" + lut[c] + "," + lut[c + 1] + "," + lut[c + 2] + ")" }, grad);
    }
    var g = svg("g", { "class": "attnbook-colourbar" }, parent);
    svg("rect", { x: x, y: y, width: 12, height: height, fill: "url(#" + id + ")", "class": "attnbook-frame", "stroke-width": 0.5 }, g);
    var ticks = height >= 120 ? [0, 0.25, 0.5, 0.75, 1] : [0, 0.5, 1];
    ticks.forEach(function (t) { // tick at weight v sits at (v / vmax)^gamma
      var v = vmax * Math.pow(t, 1 / gamma), yy = y + height * (1 - t);
      svg("line", { x1: x + 12, x2: x + 15, y1: yy, y2: yy, "class": "attnbook-frame" }, g);
      text(g, x + 17, yy + 3.5, fmt(v));
    });
    text(g, x + 6, y - 8, "weight", { "text-anchor": "middle" }, "attnbook-muted");
    return g;
  }

  // -- the view --------------------------------------------------------------------------------
  function View(root, data) {
    this.root = root; this.data = data; this.lut = palette(data.cmap);
    this.state = { facets: data.initial.facets.slice(), layer: 0, head: 0, sample: 0,
                   view: data.initial.view, gamma: data.initial.gamma, scale: "head", shown: null, pinned: null };
    this.index = {};
    this.images = {};
    var self = this;
    data.entries.forEach(function (e) { self.index[e.key.join(",")] = e; });
    this.build();
    this.draw();
    this.watchWidth();
  }
  View.prototype.entry = function () { return this.index[this.state.facets.join(",")]; };
  View.prototype.build = function () {
    var self = this, d = this.data, root = this.root;
    Array.prototype.slice.call(root.querySelectorAll(".attnbook-fallback")).forEach(function (n) { n.remove(); });
    if (d.title) el("div", { "class": "attnbook-title" }, root, d.title);
    var bar = el("div", { "class": "attnbook-controls" }, root);
    this.facetSelects = d.facets.map(function (f, i) {
      var sel = el("select", { "class": "attnbook-facet", "data-facet": f.name });
      f.values.forEach(function (v, k) { el("option", { value: k }, sel, v); });
      var wrap = labelled(bar, f.name, sel);
      if (f.values.length < 2) wrap.hidden = true; // a single option is no choice
      sel.value = self.state.facets[i];
      sel.addEventListener("change", function () { self.state.facets[i] = +sel.value; self.refit(); self.draw(); });
      return sel;
    });
    this.layerSelect = el("select", { "class": "attnbook-layer" });
    this.layerWrap = labelled(bar, "layer", this.layerSelect);
    this.layerSelect.addEventListener("change", function () { self.state.layer = +self.layerSelect.value; self.draw(); });
    this.headRange = el("input", { type: "range", "class": "attnbook-head", min: 0, step: 1, value: 0 });
    this.headWrap = labelled(bar, "head", this.headRange);
    this.headOut = el("output", { "class": "attnbook-head-value" }, this.headRange.parentNode, "0");
    this.headRange.addEventListener("input", function () { self.state.head = +self.headRange.value; self.draw(); });
    this.sampleSelect = el("select", { "class": "attnbook-sample" });
    this.sampleWrap = labelled(bar, "sample", this.sampleSelect);
    this.sampleSelect.addEventListener("change", function () { self.state.sample = +self.sampleSelect.value; self.draw(); });

    var bar2 = el("div", { "class": "attnbook-controls" }, root);
    var group = el("span", { "class": "attnbook-control attnbook-views", role: "group", "aria-label": "view" }, bar2);
    el("span", { "class": "attnbook-group-label" }, group, "view");
    this.viewButtons = Object.keys(VIEW_NAMES).map(function (v) {
      var b = el("button", { type: "button", "class": "attnbook-view-button", "data-view": v, "aria-label": VIEW_NAMES[v] }, group, VIEW_NAMES[v]);
      b.addEventListener("click", function () { self.state.view = v; self.draw(); });
      return b;
    });
    var sc = el("span", { "class": "attnbook-control attnbook-scale", role: "group", "aria-label": "colour scale" }, bar2);
    el("span", { "class": "attnbook-group-label" }, sc, "scale");
    this.scaleButtons = [["head", "per head", "each head scaled by its own largest weight"],
                         ["shared", "shared", "every head of the layer scaled by the layer's largest weight"]].map(function (x) {
      var b = el("button", { type: "button", "class": "attnbook-scale-button", "data-scale": x[0], title: x[2] }, sc, x[1]);
      b.addEventListener("click", function () { self.state.scale = x[0]; self.draw(); });
      return b;
    });
    this.gammaRange = el("input", { type: "range", "class": "attnbook-gamma", min: 0.1, max: 2, step: 0.05, value: d.initial.gamma });
    labelled(bar2, "colour γ", this.gammaRange);
    this.gammaOut = el("output", {}, this.gammaRange.parentNode, Number(d.initial.gamma).toFixed(2));
    this.gammaRange.addEventListener("input", function () { self.state.gamma = +self.gammaRange.value; self.draw(); });
    var ex = el("span", { "class": "attnbook-control attnbook-export", role: "group", "aria-label": "export" }, bar2);
    el("span", { "class": "attnbook-group-label" }, ex, "export");
    el("button", { type: "button", "class": "attnbook-export-svg", "aria-label": "export SVG" }, ex, "SVG")
      .addEventListener("click", function () { self.exportSvg(); });
    el("button", { type: "button", "class": "attnbook-export-png", "aria-label": "export PNG" }, ex, "PNG")
      .addEventListener("click", function () { self.exportPng(); });

    if (d.live && d.live.length) { // what needs a kernel: one line saying where it is live, no control
      var hint = String(d.live_hint || "run this notebook in JupyterLab").replace(/\.\s*$/, "");
      el("p", { "class": "attnbook-live" }, root,
         "Live in JupyterLab: " + d.live.map(function (c) { return c.label; }).join(", ") + " — " + hint + ".");
    }
    this.chips = el("div", { "class": "attnbook-chips", role: "group", "aria-label": "heads shown" }, root);
    this.drawing = el("div", { "class": "attnbook-drawing" }, root);
    this.modeCaption = el("div", { "class": "attnbook-mode-caption" }, root);
    this.readout = el("div", { "class": "attnbook-value", "aria-live": "polite" }, root);
    this.note = el("div", { "class": "attnbook-note" }, root);
    if (d.caption) el("div", { "class": "attnbook-caption" }, root, d.caption);
    this.refit();
  };
  View.prototype.refit = function () { // control ranges for the current entry, keeping values that fit
    var e = this.entry(), s = this.state, sel = this.layerSelect;
    var name = sel.options.length && sel.options[s.layer] ? sel.options[s.layer].getAttribute("data-name") : null;
    sel.innerHTML = "";
    e.layers.forEach(function (n, i) { el("option", { value: i, title: n, "data-name": n }, sel, layerName(i)); });
    var same = e.layers.indexOf(name);
    s.layer = same >= 0 ? same : Math.min(s.layer, e.layers.length - 1);
    sel.value = s.layer;
    sel.title = e.layers[s.layer];
    this.layerWrap.hidden = e.layers.length < 2;
    s.head = Math.min(s.head, e.heads - 1);
    this.headRange.max = e.heads - 1; this.headRange.value = s.head;
    this.headWrap.hidden = e.heads < 2;
    if (!s.shown || s.shown.length !== e.heads) { s.shown = []; for (var h = 0; h < e.heads; h++) s.shown.push(true); }
    var ss = this.sampleSelect;
    ss.innerHTML = "";
    e.samples.forEach(function (x, i) { el("option", { value: i }, ss, x.label); });
    s.sample = Math.min(s.sample, e.samples.length - 1);
    ss.value = s.sample;
    this.sampleWrap.hidden = e.samples.length < 2;
    this.buildChips(e);
  };
  View.prototype.buildChips = function (e) { // one toggle per head (BertViz: click toggles, double-click = only this head)
    var self = this, s = this.state;
    this.chips.innerHTML = "";
    el("span", { "class": "attnbook-group-label" }, this.chips, "heads");
    this.chipButtons = [];
    for (var h = 0; h < e.heads; h++) {
      (function (head) {
        var b = el("button", { type: "button", "class": "attnbook-chip", "data-head": head, "aria-pressed": "true",
                               title: "click: show or hide head " + head + "; double-click: only this head" }, self.chips);
        el("span", { "class": "attnbook-swatch", style: "background:" + headColour(head), "aria-hidden": "true" }, b);
        b.appendChild(document.createTextNode("head " + head));
        b.addEventListener("click", function () { s.shown[head] = !s.shown[head]; self.draw(); });
        b.addEventListener("dblclick", function () {
          for (var k = 0; k < s.shown.length; k++) s.shown[k] = k === head;
          self.draw();
        });
        self.chipButtons.push(b);
      })(h);
    }
  };
  View.prototype.width = function () { // the width the drawing is laid out for
    var w = this.drawing.clientWidth;
    return w > 40 ? w : 640;
  };
  View.prototype.watchWidth = function () { // re-layout when the container's width changes (debounced)
    var self = this, timer = null;
    if (typeof ResizeObserver === "undefined") return;
    this.laidOut = this.width();
    new ResizeObserver(function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        var w = self.width();
        if (Math.abs(w - self.laidOut) > 4) self.draw();
      }, 150);
    }).observe(this.drawing);
  };
  View.prototype.draw = function () {
    var self = this, e = this.entry(), s = this.state, token = {};
    this.pending = token;
    this.headOut.textContent = String(s.head);
    this.gammaOut.textContent = s.gamma.toFixed(2);
    this.layerSelect.title = e.layers[s.layer];
    this.viewButtons.forEach(function (b) { b.setAttribute("aria-pressed", String(b.getAttribute("data-view") === s.view)); });
    this.scaleButtons.forEach(function (b) { b.setAttribute("aria-pressed", String(b.getAttribute("data-scale") === s.scale)); });
    this.chipButtons.forEach(function (b, h) { b.setAttribute("aria-pressed", String(!!s.shown[h])); });
    this.chips.hidden = s.view !== "head";
    this.headWrap.hidden = e.heads < 2 || s.view === "head"; // in the head view the chips pick the heads
    this.readout.removeAttribute("data-query"); this.readout.removeAttribute("data-key");
    this.readout.textContent = s.view === "model" ? "hover or focus a head; click it (or press Enter) to open its heatmap"
      : s.view === "head" ? "hover or focus a token to follow its attention" : "hover a cell to read its weight";
    loadEntry(e).then(function () {
      if (self.pending !== token) return; // a newer selection is on its way
      var width = self.laidOut = self.width();
      var picture = s.view === "model" ? self.drawModel(e, width) : s.view === "head" ? self.drawHead(e, width) : self.drawHeatmap(e, width);
      var need = +picture.getAttribute("width");
      picture.style.width = need > width ? need + "px" : "100%"; // too wide to fit: it scrolls inside .attnbook-drawing
      self.drawing.classList.toggle("attnbook-scrolls", need > width);
      self.drawing.innerHTML = "";
      self.drawing.appendChild(picture);
      self.modeCaption.textContent = self.caption(e);
      var hn = e.head_notes ? e.head_notes[s.layer][s.head] : "";
      if (Array.isArray(hn)) hn = hn[s.sample]; // one line per sample
      self.note.textContent = [e.note, s.view === "heatmap" ? hn : ""].filter(Boolean).join(" · ");
      self.root.setAttribute("data-drawn", String((+self.root.getAttribute("data-drawn") || 0) + 1));
    }).catch(function (err) {
      self.drawing.textContent = "attnbook view: " + err.message;
      self.root.setAttribute("data-error", err.message);
    });
  };
  View.prototype.caption = function (e) { // what is drawn, the scale, the layer's full name
    var s = this.state, layer = layerName(s.layer) + " (" + e.layers[s.layer] + ")";
    var scale = s.scale === "shared" ? "colours shared across the layer's heads (scaled by the layer's largest weight)"
      : "each head scaled by its own largest weight";
    var g = s.gamma !== 1 ? ", γ = " + s.gamma.toFixed(2) : "";
    if (s.view === "heatmap") {
      return "Heatmap of " + layer + ", head " + s.head + ": row = query (attending), column = key (attended to); " + scale + g +
        "; grey = masked.";
    }
    if (s.view === "head") {
      var on = [];
      s.shown.forEach(function (v, h) { if (v) on.push(h); });
      return "Head view of " + layer + ": a line from each query (left) to each key (right), one colour per head (" +
        (on.length === e.heads ? "all " + e.heads + " heads" : on.length ? "heads " + on.join(", ") : "no head") +
        " shown); opacity and width ∝ weight, " + scale + g + ".";
    }
    return "Model view: every head (columns) of every layer (rows, L0 = " + e.layers[0] + "); " +
      (s.scale === "shared" ? "colours shared across each layer's heads" : "each head scaled by its own largest weight") + g +
      "; click a head to open its heatmap.";
  };
  View.prototype.where = function (e) {
    var s = this.state, d = this.data, parts = [];
    d.facets.forEach(function (f, i) { // only facets with a choice; a bare number gets its facet's name
      var v = String(f.values[s.facets[i]]);
      if (f.values.length > 1) parts.push(/^[-+.\d]+$/.test(v) ? f.name + " " + v : v);
    });
    if (e.samples.length > 1) parts.push(e.samples[s.sample].label);
    return parts;
  };
  View.prototype.headSlice = function (e, layer, head) { // (offset into weights[sample], nq, nk)
    var smp = e.samples[this.state.sample], nq = smp.queries.length, nk = smp.keys.length;
    return { off: ((layer * e.heads) + head) * nq * nk, nq: nq, nk: nk, smp: smp };
  };
  View.prototype.vmax = function (e, layer, head) { // the colour scale's top: this head's max, or the layer's
    var s = this.state, w = e.weights[s.sample], allowed = e.allowed[s.sample], sl = this.headSlice(e, layer, head);
    if (s.scale !== "shared") return maxOf(w, sl.off, sl.nq * sl.nk, allowed);
    var m = 0;
    for (var h = 0; h < e.heads; h++) m = Math.max(m, maxOf(w, this.headSlice(e, layer, h).off, sl.nq * sl.nk, allowed));
    return m;
  };
  View.prototype.picture = function (e, layer, head, vmax) { // cached data-URL image of one head's map
    var s = this.state, sl = this.headSlice(e, layer, head);
    var key = [this.state.facets.join(","), s.sample, layer, head, s.gamma, vmax].join("|");
    if (!this.images[key]) {
      if (Object.keys(this.images).length > 600) this.images = {};
      this.images[key] = mapImage(e.weights[s.sample], sl.off, sl.nq, sl.nk, e.allowed[s.sample], s.gamma, this.lut, vmax);
    }
    return this.images[key];
  };
  View.prototype.svgRoot = function (width, height, title, full) {
    var root = svg("svg", { xmlns: SVGNS, "xmlns:xlink": "http://www.w3.org/1999/xlink", width: width, height: height,
                            viewBox: "0 0 " + width + " " + height, "font-family": "system-ui, sans-serif", "class": "attnbook-svg",
                            role: "img", "aria-label": full || title });
    var t = text(root, width / 2, 16, short(title, Math.floor((width - 8) / 8.2)), { "text-anchor": "middle", "font-size": 13, "font-weight": "bold" });
    if (full) tip(t, full);
    return root;
  };
  View.prototype.titleOf = function (e, head) {
    var s = this.state, where = this.where(e);
    return { title: layerName(s.layer) + (head === null ? "" : " · head " + head) + (where.length ? " · " + where.join(" · ") : ""),
             full: e.layers[s.layer] + (head === null ? "" : " · head " + head) + (where.length ? " · " + where.join(" · ") : "") };
  };

  View.prototype.drawHeatmap = function (e, avail) {
    var self = this, s = this.state, h = this.headSlice(e, s.layer, s.head), nq = h.nq, nk = h.nk, smp = h.smp;
    var w = e.weights[s.sample], allowed = e.allowed[s.sample];
    var cap = avail < 520 ? 10 : 14, lq = longest(smp.queries, cap), lk = longest(smp.keys, cap);
    var series = smp.series, stripH = series ? 54 : 0;
    var left = 24 + lq * CHAR, right = 74, top = 28 + stripH;
    var cell = Math.floor((avail - left - right) / nk);
    cell = Math.max(MIN_CELL, Math.min(26, cell, Math.floor(Math.max(420, avail * 0.9) / nq)));
    var W = nk * cell, Hh = nq * cell, bottom = 24 + lk * CHAR * 0.87;
    var width = Math.max(left + W + right, avail), height = top + Hh + bottom + 4;
    var t = this.titleOf(e, s.head), root = this.svgRoot(width, height, t.title, t.full), vmax = this.vmax(e, s.layer, s.head);
    var picture = image(root, this.picture(e, s.layer, s.head, vmax), left, top, W, Hh);
    picture.setAttribute("class", "attnbook-cells");
    picture.setAttribute("data-queries", nq); picture.setAttribute("data-keys", nk);
    svg("rect", { x: left, y: top, width: W, height: Hh, fill: "none", "class": "attnbook-frame", "stroke-width": 0.6 }, root);
    var stepQ = Math.max(1, Math.ceil((SMALL + 2) / cell)), stepK = Math.max(1, Math.ceil((SMALL + 2) / cell)); // thin colliding labels
    smp.queries.forEach(function (q, i) {
      if (i % stepQ) return;
      tip(text(root, left - 4, top + (i + 0.5) * cell + 3.5, short(q, cap), { "text-anchor": "end", "class": "attnbook-fg attnbook-label" }), String(q));
    });
    smp.keys.forEach(function (k, j) {
      if (j % stepK) return;
      var x = left + (j + 0.5) * cell + 3, y = top + Hh + 6;
      tip(text(root, x, y, short(k, cap), { "text-anchor": "end", transform: "rotate(-60 " + x + " " + y + ")", "class": "attnbook-fg attnbook-label" }), String(k));
    });
    text(root, left + W / 2, height - 4, "key (attended to)", { "text-anchor": "middle", "font-size": FONT });
    var ly = top + Hh / 2;
    text(root, 11, ly, "query (attending)", { "text-anchor": "middle", "font-size": FONT, transform: "rotate(-90 11 " + ly + ")" });
    if (series) { // the signal above its keys
      var lo = Math.min.apply(null, series), hi = Math.max.apply(null, series), span = hi - lo || 1;
      var pts = series.map(function (v, j) { return (left + (j + 0.5) * cell).toFixed(1) + "," + (top - 8 - (v - lo) / span * (stripH - 14)).toFixed(1); });
      svg("polyline", { points: pts.join(" "), fill: "none", "class": "attnbook-series", "stroke-width": 1.4 }, root);
      text(root, left - 4, top - stripH / 2, "input", { "text-anchor": "end" }, "attnbook-muted");
    }
    colourbar(root, left + W + 14, top + 16, Math.max(60, Math.min(Hh - 16, 240)), s.gamma, this.lut, vmax);
    var mark = svg("rect", { x: 0, y: 0, width: cell, height: cell, fill: "none", stroke: "#e41a1c", "stroke-width": 1.5, visibility: "hidden" }, root);
    picture.addEventListener("mousemove", function (ev) {
      var box = picture.getBoundingClientRect();
      var j = Math.min(nk - 1, Math.max(0, Math.floor((ev.clientX - box.left) / box.width * nk)));
      var i = Math.min(nq - 1, Math.max(0, Math.floor((ev.clientY - box.top) / box.height * nq)));
      mark.setAttribute("x", left + j * cell); mark.setAttribute("y", top + i * cell); mark.setAttribute("visibility", "visible");
      var masked = allowed && !allowed[i * nk + j];
      self.readout.setAttribute("data-query", i); self.readout.setAttribute("data-key", j);
      self.readout.textContent = e.layers[s.layer] + " · head " + s.head + " · query " + i + " “" + smp.queries[i] + "” → key " + j +
        " “" + smp.keys[j] + "”: " + (masked ? "masked" : "weight " + fmt(w[h.off + i * nk + j]));
    });
    picture.addEventListener("mouseleave", function () { mark.setAttribute("visibility", "hidden"); });
    return root;
  };

  View.prototype.drawHead = function (e, avail) { // BertViz's head view: every head of the layer overlaid, one colour each
    var self = this, s = this.state, h0 = this.headSlice(e, s.layer, 0), nq = h0.nq, nk = h0.nk, smp = h0.smp;
    var w = e.weights[s.sample], allowed = e.allowed[s.sample], n = Math.max(nq, nk);
    var cap = avail < 520 ? 10 : 16, lw = Math.max(longest(smp.queries, cap), longest(smp.keys, cap)) * CHAR + 10;
    var width = Math.max(avail, 2 * lw + MIN_HEAD_GAP + 12), xl = Math.max(lw + 6, width / 2 - 150), xr = width - xl;
    var row = Math.max(4, Math.min(20, Math.floor(600 / n))), top = 62, height = top + n * row + 10;
    var every = Math.max(1, Math.ceil((SMALL + 2) / row)); // thin the labels when they would collide
    var t = this.titleOf(e, null), root = this.svgRoot(width, height, t.title, t.full);
    // legend: line weight
    var lg = svg("g", { "class": "attnbook-legend" }, root), lx = Math.max(6, (width - 312) / 2);
    text(lg, lx, 36, "line opacity and width ∝ weight:", {}, "attnbook-muted");
    [0.25, 0.5, 1].forEach(function (v, k) {
      var x = lx + 168 + k * 48;
      svg("line", { x1: x, x2: x + 16, y1: 32, y2: 32, "class": "attnbook-legend-line", "stroke-width": 0.5 + 2.5 * v, "stroke-opacity": v }, lg);
      text(lg, x + 18, 36, String(v), {}, "attnbook-muted");
    });
    text(root, xl, 54, "queries", { "text-anchor": "end" }, "attnbook-muted");
    text(root, xr, 54, "keys", {}, "attnbook-muted");
    var lines = svg("g", { "class": "attnbook-lines" }, root);
    for (var hd = 0; hd < e.heads; hd++) {
      if (!s.shown[hd]) continue;
      var sl = this.headSlice(e, s.layer, hd), vmax = this.vmax(e, s.layer, hd) || 1, floor = 0.01 * vmax, colour = headColour(hd);
      var g = svg("g", { "data-head": hd, stroke: colour }, lines);
      for (var i = 0; i < nq; i++) {
        for (var j = 0; j < nk; j++) {
          var v = w[sl.off + i * nk + j];
          if (v < floor || (allowed && !allowed[i * nk + j])) continue;
          var r = Math.min(1, v / vmax);
          svg("line", { x1: xl + 6, y1: top + (i + 0.5) * row, x2: xr - 6, y2: top + (j + 0.5) * row,
                        "stroke-width": (0.4 + 2.4 * r).toFixed(2), "stroke-opacity": Math.pow(r, s.gamma).toFixed(3),
                        "data-head": hd, "data-q": i, "data-k": j }, g);
        }
      }
    }
    function tokens(list, x, anchor, side) {
      list.forEach(function (tk, i) {
        var y = top + (i + 0.5) * row, label = (side === "q" ? "query " : "key ") + i + " " + tk;
        var hit = svg("rect", { x: anchor === "end" ? x - lw : x, y: y - row / 2, width: lw, height: row, fill: "transparent",
                                "class": "attnbook-token", "data-side": side, "data-index": i, "aria-label": label }, root);
        tip(hit, String(tk));
        if (i % every === 0) text(root, x, y + 3.5, short(tk, cap), { "text-anchor": anchor, "pointer-events": "none", "class": "attnbook-fg attnbook-label" });
        var show = function () { self.focusHead(lines, side, i, e); };
        var hide = function () { if (!s.pinned) self.focusHead(lines, null); };
        hit.addEventListener("mouseenter", show);
        hit.addEventListener("mouseleave", hide);
        hit.addEventListener("focus", show);
        hit.addEventListener("blur", function () { s.pinned = null; self.focusHead(lines, null); });
        activate(hit, function () { // click / Enter / Space: keep this token's lines until clicked again
          var key = side + i;
          s.pinned = s.pinned === key ? null : key;
          self.focusHead(lines, s.pinned ? side : null, i, e);
        });
      });
    }
    s.pinned = null;
    tokens(smp.queries, xl, "end", "q");
    tokens(smp.keys, xr, "start", "k");
    return root;
  };
  View.prototype.focusHead = function (lines, side, index, e) {
    var all = lines.querySelectorAll("line"), s = this.state;
    for (var n = 0; n < all.length; n++) {
      var on = side === null || all[n].getAttribute("data-" + side) === String(index);
      all[n].setAttribute("visibility", on ? "visible" : "hidden");
    }
    if (side === null) { this.readout.textContent = "hover or focus a token to follow its attention"; return; }
    var w = e.weights[s.sample], allowed = e.allowed[s.sample], parts = [], smp = e.samples[s.sample];
    for (var hd = 0; hd < e.heads; hd++) {
      if (!s.shown[hd]) continue;
      var sl = this.headSlice(e, s.layer, hd), nk = sl.nk, nq = sl.nq, pairs = [];
      if (side === "q") for (var j = 0; j < nk; j++) { if (!allowed || allowed[index * nk + j]) pairs.push([w[sl.off + index * nk + j], smp.keys[j]]); }
      else for (var i = 0; i < nq; i++) { if (!allowed || allowed[i * nk + index]) pairs.push([w[sl.off + i * nk + index], smp.queries[i]]); }
      pairs.sort(function (a, b) { return b[0] - a[0]; });
      parts.push("head " + hd + ": " + pairs.slice(0, 2).map(function (p) { return "“" + p[1] + "” " + fmt(p[0]); }).join(", "));
    }
    var who = side === "q" ? "query " + index + " “" + smp.queries[index] + "” attends to" : "key " + index + " “" + smp.keys[index] + "” is attended by";
    this.readout.textContent = who + " — " + (parts.length ? parts.join("; ") : "no head shown");
  };

  View.prototype.drawModel = function (e, avail) { // layers × heads grid; click/Enter opens that head's heatmap
    var self = this, s = this.state, L = e.layers.length, H = e.heads, gap = 4, left = 34, top = 44;
    var thumb = Math.floor((avail - left - 8) / H) - gap;
    thumb = Math.max(MIN_THUMB, Math.min(84, thumb));
    var width = Math.max(avail, left + H * (thumb + gap) + 8), height = top + L * (thumb + gap) + 6;
    var t = this.titleOf(e, null), where = this.where(e);
    var root = this.svgRoot(width, height, "all heads" + (where.length ? " · " + where.join(" · ") : ""));
    var every = Math.max(1, Math.ceil(44 / (thumb + gap))), headLabel = thumb >= 44 ? "head " : "h";
    for (var hh = 0; hh < H; hh++) {
      if (hh % every) continue;
      text(root, left + hh * (thumb + gap) + thumb / 2, top - 8, headLabel + hh, { "text-anchor": "middle" });
    }
    e.layers.forEach(function (name, l) {
      var y = top + l * (thumb + gap);
      tip(text(root, left - 6, y + thumb / 2 + 3.5, layerName(l), { "text-anchor": "end", "font-size": FONT, "class": "attnbook-fg attnbook-layer-label" }), name);
      var shared = s.scale === "shared" ? self.vmax(e, l, 0) : null;
      for (var hd = 0; hd < H; hd++) {
        var x = left + hd * (thumb + gap), vmax = shared === null ? self.vmax(e, l, hd) : shared;
        var pic = image(root, self.picture(e, l, hd, vmax), x, y, thumb, thumb);
        pic.setAttribute("class", "attnbook-thumb");
        pic.setAttribute("data-layer", l); pic.setAttribute("data-head", hd);
        pic.setAttribute("aria-label", layerName(l) + " head " + hd + " (" + name + "): open its heatmap");
        tip(pic, name + " · head " + hd);
        var chosen = l === s.layer && hd === s.head;
        var frame = svg("rect", { x: x - 0.5, y: y - 0.5, width: thumb + 1, height: thumb + 1, fill: "none",
                                  "class": chosen ? "attnbook-chosen" : "attnbook-frame", "stroke-width": chosen ? 2.5 : 0.5, "pointer-events": "none" }, root);
        (function (layer, head, frame) {
          activate(pic, function () {
            s.layer = layer; s.head = head; s.view = "heatmap";
            self.layerSelect.value = layer; self.headRange.value = head; self.draw();
          });
          var hover = function () { self.readout.textContent = layerName(layer) + " (" + e.layers[layer] + ") · head " + head + ": click or press Enter to open its heatmap"; };
          pic.addEventListener("mouseenter", hover);
          pic.addEventListener("focus", function () { frame.classList.add("attnbook-focus"); hover(); });
          pic.addEventListener("blur", function () { frame.classList.remove("attnbook-focus"); });
        })(l, hd, frame);
      }
    });
    return root;
  };

  // -- export ----------------------------------------------------------------------------------
  function background(node) { // the first non-transparent background up the tree (the page's at the end)
    for (var n = node; n && n.nodeType === 1; n = n.parentElement) {
      var c = getComputedStyle(n).backgroundColor;
      if (c && c !== "transparent" && !/rgba\([^)]*,\s*0\)$/.test(c)) return c;
    }
    return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches ? "#121212" : "#ffffff";
  }
  View.prototype.svgText = function () { // a self-standing image: theme colours resolved, a solid background
    var node = this.drawing.querySelector("svg");
    if (!node) return "";
    var copy = node.cloneNode(true), from = node.querySelectorAll("*"), to = copy.querySelectorAll("*");
    for (var i = 0; i < from.length; i++) {
      var tag = from[i].tagName.toLowerCase();
      if (["text", "line", "rect", "polyline", "g"].indexOf(tag) < 0) continue;
      var cs = getComputedStyle(from[i]);
      if (!/^url/.test(cs.fill)) to[i].setAttribute("fill", cs.fill);
      to[i].setAttribute("stroke", cs.stroke);
      if (tag === "text") to[i].setAttribute("font-family", cs.fontFamily);
      to[i].removeAttribute("class"); to[i].removeAttribute("tabindex");
    }
    Array.prototype.forEach.call(copy.querySelectorAll("[class], [tabindex]"), function (n) { n.removeAttribute("class"); n.removeAttribute("tabindex"); });
    copy.removeAttribute("style"); copy.removeAttribute("class");
    var bg = svg("rect", { x: 0, y: 0, width: copy.getAttribute("width"), height: copy.getAttribute("height"), fill: background(this.drawing) });
    copy.insertBefore(bg, copy.firstChild);
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + new XMLSerializer().serializeToString(copy);
  };
  View.prototype.fileName = function (ext) {
    var e = this.entry(), s = this.state;
    return slug([this.data.title].concat(this.where(e), [layerName(s.layer), s.view === "heatmap" ? "head" + s.head : "", s.view]).join(" ")) + "." + ext;
  };
  function save(blob, name) {
    var a = document.createElement("a");
    a.href = URL.createObjectURL(blob); a.download = name;
    document.body.appendChild(a); a.click(); a.remove();
    setTimeout(function () { URL.revokeObjectURL(a.href); }, 10000);
  }
  View.prototype.exportSvg = function () {
    save(new Blob([this.svgText()], { type: "image/svg+xml" }), this.fileName("svg"));
  };
  View.prototype.exportPng = function (scale) {
    var self = this, node = this.drawing.querySelector("svg");
    if (!node) return Promise.resolve(null);
    scale = scale || 2;
    var width = +node.getAttribute("width"), height = +node.getAttribute("height"), img = new Image();
    return new Promise(function (resolve, reject) {
      img.onload = function () {
        var canvas = document.createElement("canvas");
        canvas.width = width * scale; canvas.height = height * scale;
        var ctx = canvas.getContext("2d");
        ctx.imageSmoothingEnabled = false;
        ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
        canvas.toBlob(function (blob) { save(blob, self.fileName("png")); resolve(blob); }, "image/png");
      };
      img.onerror = function () { reject(new Error("the SVG could not be rasterised")); };
      img.src = "data:image/svg+xml;charset=utf-8," + encodeURIComponent(self.svgText());
    });
  };

  function mount(root) {
    if (!root || root.getAttribute("data-mounted")) return null;
    var holder = root.querySelector("script.attnbook-view-data");
    if (!holder) return null;
    root.setAttribute("data-mounted", "true");
    try {
      var view = new View(root, JSON.parse(holder.textContent));
      root.attnbookView = view;
      return view;
    } catch (err) {
      root.setAttribute("data-error", err.message);
      el("div", { "class": "attnbook-error" }, root, "attnbook view: " + err.message);
      return null;
    }
  }
  window.attnbookView = { version: VERSION, mount: mount, decodeWeights: decodeWeights };
})();
