/* attnbook attention view: one self-contained renderer for notebook outputs and the static site.
 * No network, no dependency. Data: the JSON in the root's <script class="attnbook-view-data">,
 * written by attnbook.views.AttentionView (weights deflated, quantised, base64).
 * Drawings are SVG (heatmaps as embedded pixel images, as matplotlib writes them), so what is
 * drawn exports as SVG as it is, and as PNG through a canvas. */
(function () {
  "use strict";
  var VERSION = 1;
  if (window.attnbookView && window.attnbookView.version >= VERSION) return;
  var SVGNS = "http://www.w3.org/2000/svg";
  var MASK_RGB = [211, 211, 211]; // matplotlib's lightgrey, the book's mask colour
  var VIEW_NAMES = { heatmap: "heatmap", head: "head view", model: "model view" };

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
  function short(label, n) { label = String(label); return label.length > n ? label.slice(0, n - 1) + "…" : label; }
  function slug(text) { return String(text || "attention").toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "") || "attention"; }

  // -- colour ----------------------------------------------------------------------------------
  function palette(hex) {
    var out = new Uint8Array(768);
    for (var i = 0; i < 768; i++) out[i] = parseInt(hex.substr(2 * i, 2), 16);
    return out;
  }
  // one head's map as a data-URL image, one pixel per cell; colour = cmap((w / max)^gamma)
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
  function colourbar(parent, x, y, height, gamma, lut, vmax) {
    var defs = svg("defs", {}, parent), id = "attnbook-grad-" + (++uid);
    var grad = svg("linearGradient", { id: id, x1: 0, y1: 1, x2: 0, y2: 0 }, defs);
    for (var k = 0; k <= 16; k++) {
      var c = Math.round((k / 16) * 255) * 3;
      svg("stop", { offset: (k / 16).toFixed(3), "stop-color": "rgb(" + lut[c] + "," + lut[c + 1] + "," + lut[c + 2] + ")" }, grad);
    }
    svg("rect", { x: x, y: y, width: 12, height: height, fill: "url(#" + id + ")", stroke: "#888", "stroke-width": 0.5 }, parent);
    [0, 0.25, 0.5, 0.75, 1].forEach(function (t) { // tick at weight v sits at (v / vmax)^gamma
      var v = vmax * Math.pow(t, 1 / gamma), yy = y + height * (1 - t);
      svg("line", { x1: x + 12, x2: x + 15, y1: yy, y2: yy, stroke: "#444" }, parent);
      svg("text", { x: x + 17, y: yy + 3, "font-size": 9, fill: "#333" }, parent, fmt(v));
    });
    svg("text", { x: x + 6, y: y - 5, "font-size": 9, "text-anchor": "middle", fill: "#333" }, parent, "weight");
  }

  // -- the view --------------------------------------------------------------------------------
  function View(root, data) {
    this.root = root; this.data = data; this.lut = palette(data.cmap);
    this.state = { facets: data.initial.facets.slice(), layer: 0, head: 0, sample: 0,
                   view: data.initial.view, gamma: data.initial.gamma };
    this.index = {};
    var self = this;
    data.entries.forEach(function (e) { self.index[e.key.join(",")] = e; });
    this.build();
    this.draw();
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
      labelled(bar, f.name, sel);
      sel.value = self.state.facets[i];
      sel.addEventListener("change", function () { self.state.facets[i] = +sel.value; self.refit(); self.draw(); });
      return sel;
    });
    this.layerSelect = el("select", { "class": "attnbook-layer" });
    labelled(bar, "layer", this.layerSelect);
    this.layerSelect.addEventListener("change", function () { self.state.layer = +self.layerSelect.value; self.draw(); });
    this.headRange = el("input", { type: "range", "class": "attnbook-head", min: 0, step: 1, value: 0 });
    labelled(bar, "head", this.headRange);
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

    if (d.live.length) {
      var live = el("div", { "class": "attnbook-live", title: "needs a Python kernel: " + d.live_hint }, root);
      el("span", { "class": "attnbook-live-badge" }, live, "live in JupyterLab");
      d.live.forEach(function (c) {
        var control;
        if (c.kind === "text") control = el("textarea", { rows: 2, placeholder: "needs a kernel: " + d.live_hint });
        else if (c.kind === "file") control = el("input", { type: "file" });
        else if (c.kind === "range") control = el("input", { type: "range" });
        else control = el("button", { type: "button" }, null, c.label);
        control.disabled = true;
        control.setAttribute("data-live", "true");
        labelled(live, c.label + " (live in JupyterLab)", control);
      });
    }
    this.drawing = el("div", { "class": "attnbook-drawing" }, root);
    this.readout = el("div", { "class": "attnbook-value", "aria-live": "polite" }, root);
    this.note = el("div", { "class": "attnbook-note" }, root);
    if (d.caption) el("div", { "class": "attnbook-caption" }, root, d.caption);
    this.refit();
  };
  View.prototype.refit = function () { // control ranges for the current entry, keeping values that fit
    var e = this.entry(), s = this.state, sel = this.layerSelect;
    var name = sel.options.length ? sel.options[s.layer] && sel.options[s.layer].textContent : null;
    sel.innerHTML = "";
    e.layers.forEach(function (n, i) { el("option", { value: i }, sel, n); });
    var same = e.layers.indexOf(name);
    s.layer = same >= 0 ? same : Math.min(s.layer, e.layers.length - 1);
    sel.value = s.layer;
    s.head = Math.min(s.head, e.heads - 1);
    this.headRange.max = e.heads - 1; this.headRange.value = s.head;
    var ss = this.sampleSelect;
    ss.innerHTML = "";
    e.samples.forEach(function (x, i) { el("option", { value: i }, ss, x.label); });
    s.sample = Math.min(s.sample, e.samples.length - 1);
    ss.value = s.sample;
    this.sampleWrap.style.display = e.samples.length > 1 ? "" : "none";
  };
  View.prototype.draw = function () {
    var self = this, e = this.entry(), s = this.state, token = {};
    this.pending = token;
    this.headOut.textContent = String(s.head);
    this.gammaOut.textContent = s.gamma.toFixed(2);
    this.viewButtons.forEach(function (b) { b.setAttribute("aria-pressed", String(b.getAttribute("data-view") === s.view)); });
    this.readout.textContent = s.view === "model" ? "hover a head; click it to open its heatmap"
      : s.view === "head" ? "hover a token to follow its attention" : "hover a cell to read its weight";
    loadEntry(e).then(function () {
      if (self.pending !== token) return; // a newer selection is on its way
      var picture = s.view === "model" ? self.drawModel(e) : s.view === "head" ? self.drawHead(e) : self.drawHeatmap(e);
      self.drawing.innerHTML = "";
      self.drawing.appendChild(picture);
      var hn = e.head_notes ? e.head_notes[s.layer][s.head] : "";
      if (Array.isArray(hn)) hn = hn[s.sample]; // one line per sample
      self.note.textContent = [e.note, hn].filter(Boolean).join(" · ");
      self.root.setAttribute("data-drawn", String((+self.root.getAttribute("data-drawn") || 0) + 1));
    }).catch(function (err) {
      self.drawing.textContent = "attnbook view: " + err.message;
      self.root.setAttribute("data-error", err.message);
    });
  };
  View.prototype.where = function (e) {
    var s = this.state, d = this.data, parts = d.facets.map(function (f, i) { return f.values[s.facets[i]]; });
    if (e.samples.length > 1) parts.push(e.samples[s.sample].label);
    return parts;
  };
  View.prototype.headSlice = function (e, layer, head) { // (offset into weights[sample], nq, nk)
    var smp = e.samples[this.state.sample], nq = smp.queries.length, nk = smp.keys.length;
    return { off: ((layer * e.heads) + head) * nq * nk, nq: nq, nk: nk, smp: smp };
  };
  View.prototype.svgRoot = function (width, height, title) {
    var root = svg("svg", { xmlns: SVGNS, "xmlns:xlink": "http://www.w3.org/1999/xlink", width: width, height: height,
                            viewBox: "0 0 " + width + " " + height, "font-family": "sans-serif", "class": "attnbook-svg" });
    svg("rect", { x: 0, y: 0, width: width, height: height, fill: "white" }, root);
    svg("text", { x: width / 2, y: 16, "text-anchor": "middle", "font-size": 13, "font-weight": "bold", fill: "#222" }, root,
        short(title, Math.floor(width / 7.5)));
    return root;
  };

  View.prototype.drawHeatmap = function (e) {
    var self = this, s = this.state, h = this.headSlice(e, s.layer, s.head), nq = h.nq, nk = h.nk, smp = h.smp;
    var w = e.weights[s.sample], allowed = e.allowed[s.sample];
    var cell = Math.max(2, Math.min(26, Math.floor(520 / Math.max(nq, nk))));
    var charW = 6.2, lq = Math.min(14, Math.max.apply(null, smp.queries.map(function (t) { return String(t).length; }).concat([1])));
    var lk = Math.min(14, Math.max.apply(null, smp.keys.map(function (t) { return String(t).length; }).concat([1])));
    var series = smp.series, stripH = series ? 54 : 0;
    var left = 30 + lq * charW, top = 28 + stripH, W = nk * cell, Hh = nq * cell, bottom = 22 + lk * charW * 0.75;
    var width = Math.max(left + W + 80, 360), height = top + Hh + bottom + 14;
    var title = e.layers[s.layer] + " · head " + s.head + (this.where(e).length ? " · " + this.where(e).join(" · ") : "");
    var root = this.svgRoot(width, height, title), vmax = maxOf(w, h.off, nq * nk, allowed);
    var picture = image(root, mapImage(w, h.off, nq, nk, allowed, s.gamma, this.lut, vmax), left, top, W, Hh);
    picture.setAttribute("class", "attnbook-cells");
    picture.setAttribute("data-queries", nq); picture.setAttribute("data-keys", nk);
    svg("rect", { x: left, y: top, width: W, height: Hh, fill: "none", stroke: "#666", "stroke-width": 0.6 }, root);
    var stepQ = Math.max(1, Math.ceil(nq * 11 / Math.max(Hh, 1))), stepK = Math.max(1, Math.ceil(nk * 11 / Math.max(W, 1)));
    smp.queries.forEach(function (t, i) {
      if (i % stepQ) return;
      svg("text", { x: left - 4, y: top + (i + 0.5) * cell + 3, "text-anchor": "end", "font-size": 9, fill: "#333" }, root, short(t, 14));
    });
    smp.keys.forEach(function (t, j) {
      if (j % stepK) return;
      var x = left + (j + 0.5) * cell, y = top + Hh + 6;
      svg("text", { x: x, y: y, "text-anchor": "end", "font-size": 9, fill: "#333", transform: "rotate(-60 " + x + " " + y + ")" }, root, short(t, 14));
    });
    svg("text", { x: left + W / 2, y: height - 4, "text-anchor": "middle", "font-size": 11, fill: "#222" }, root, "key (attended to)");
    var ly = top + Hh / 2;
    svg("text", { x: 11, y: ly, "text-anchor": "middle", "font-size": 11, fill: "#222", transform: "rotate(-90 11 " + ly + ")" }, root, "query (attending)");
    if (series) { // the signal above its keys
      var lo = Math.min.apply(null, series), hi = Math.max.apply(null, series), span = hi - lo || 1;
      var pts = series.map(function (v, j) { return (left + (j + 0.5) * cell).toFixed(1) + "," + (top - 8 - (v - lo) / span * (stripH - 14)).toFixed(1); });
      svg("polyline", { points: pts.join(" "), fill: "none", stroke: "#377eb8", "stroke-width": 1.2 }, root);
      svg("text", { x: left - 4, y: top - stripH / 2, "text-anchor": "end", "font-size": 9, fill: "#377eb8" }, root, "input");
    }
    colourbar(root, left + W + 18, top, Math.min(Hh, 240), s.gamma, this.lut, vmax);
    var mark = svg("rect", { x: 0, y: 0, width: cell, height: cell, fill: "none", stroke: "#e41a1c", "stroke-width": 1.5, visibility: "hidden" }, root);
    picture.addEventListener("mousemove", function (ev) {
      var box = picture.getBoundingClientRect();
      var j = Math.min(nk - 1, Math.max(0, Math.floor((ev.clientX - box.left) / box.width * nk)));
      var i = Math.min(nq - 1, Math.max(0, Math.floor((ev.clientY - box.top) / box.height * nq)));
      mark.setAttribute("x", left + j * cell); mark.setAttribute("y", top + i * cell); mark.setAttribute("visibility", "visible");
      var masked = allowed && !allowed[i * nk + j];
      self.readout.setAttribute("data-query", i); self.readout.setAttribute("data-key", j);
      self.readout.textContent = "query " + i + " “" + smp.queries[i] + "” → key " + j + " “" + smp.keys[j] + "”: " +
        (masked ? "masked" : "weight " + fmt(w[h.off + i * nk + j]));
    });
    picture.addEventListener("mouseleave", function () { mark.setAttribute("visibility", "hidden"); });
    return root;
  };

  View.prototype.drawHead = function (e) { // BertViz-style: query tokens left, key tokens right, lines weighted by attention
    var self = this, s = this.state, h = this.headSlice(e, s.layer, s.head), nq = h.nq, nk = h.nk, smp = h.smp;
    var w = e.weights[s.sample], allowed = e.allowed[s.sample], n = Math.max(nq, nk);
    var row = Math.max(4, Math.min(18, Math.floor(640 / n))), everyLabel = row >= 9;
    var xl = 150, xr = 390, top = 34, width = 540, height = top + n * row + 16;
    var title = e.layers[s.layer] + " · head " + s.head + (this.where(e).length ? " · " + this.where(e).join(" · ") : "");
    var root = this.svgRoot(width, height, title), vmax = maxOf(w, h.off, nq * nk, allowed) || 1;
    svg("text", { x: xl, y: 28, "text-anchor": "end", "font-size": 10, fill: "#555" }, root, "queries");
    svg("text", { x: xr, y: 28, "font-size": 10, fill: "#555" }, root, "keys");
    var lines = svg("g", { "class": "attnbook-lines" }, root), colour = "#2166ac";
    var floor = 0.01 * vmax;
    for (var i = 0; i < nq; i++) {
      for (var j = 0; j < nk; j++) {
        var v = w[h.off + i * nk + j];
        if (v < floor || (allowed && !allowed[i * nk + j])) continue;
        svg("line", { x1: xl + 6, y1: top + (i + 0.5) * row, x2: xr - 6, y2: top + (j + 0.5) * row, stroke: colour,
                      "stroke-width": 1.8, "stroke-opacity": Math.pow(v / vmax, s.gamma).toFixed(3), "data-q": i, "data-k": j }, lines);
      }
    }
    function tokens(list, x, anchor, side) {
      list.forEach(function (t, i) {
        var y = top + (i + 0.5) * row;
        var hit = svg("rect", { x: anchor === "end" ? x - 130 : x, y: y - row / 2, width: 130, height: row, fill: "transparent",
                                "class": "attnbook-token", "data-side": side, "data-index": i }, root);
        if (everyLabel || i % Math.ceil(9 / row) === 0) {
          svg("text", { x: x, y: y + 3, "text-anchor": anchor, "font-size": Math.min(11, row - 1 > 6 ? row - 1 : 7), fill: "#222",
                        "pointer-events": "none" }, root, short(t, 20));
        }
        hit.addEventListener("mouseenter", function () { self.focusHead(lines, side, i, e, h, w, allowed); });
        hit.addEventListener("mouseleave", function () { self.focusHead(lines, null); });
      });
    }
    tokens(smp.queries, xl, "end", "q");
    tokens(smp.keys, xr, "start", "k");
    return root;
  };
  View.prototype.focusHead = function (lines, side, index, e, h, w, allowed) {
    var all = lines.querySelectorAll("line");
    for (var n = 0; n < all.length; n++) {
      var on = side === null || all[n].getAttribute("data-" + side) === String(index);
      all[n].setAttribute("visibility", on ? "visible" : "hidden");
    }
    if (side === null) return;
    var smp = h.smp, nk = h.nk, nq = h.nq, pairs = [];
    if (side === "q") for (var j = 0; j < nk; j++) { if (!allowed || allowed[index * nk + j]) pairs.push([w[h.off + index * nk + j], smp.keys[j]]); }
    else for (var i = 0; i < nq; i++) { if (!allowed || allowed[i * nk + index]) pairs.push([w[h.off + i * nk + index], smp.queries[i]]); }
    pairs.sort(function (a, b) { return b[0] - a[0]; });
    var who = side === "q" ? "query " + index + " “" + smp.queries[index] + "” attends to " : "key " + index + " “" + smp.keys[index] + "” is attended by ";
    this.readout.textContent = who + pairs.slice(0, 3).map(function (p) { return "“" + p[1] + "” " + fmt(p[0]); }).join(", ");
  };

  View.prototype.drawModel = function (e) { // layers × heads grid; a click opens that head's heatmap
    var self = this, s = this.state, L = e.layers.length, H = e.heads;
    var thumb = Math.max(36, Math.min(84, Math.floor(620 / H))), gap = 6, left = 118, top = 44;
    var width = left + H * (thumb + gap) + 10, height = top + L * (thumb + gap) + 10;
    var where = this.where(e);
    var root = this.svgRoot(width, height, "all heads" + (where.length ? " · " + where.join(" · ") : ""));
    var w = e.weights[s.sample], allowed = e.allowed[s.sample];
    for (var hh = 0; hh < H; hh++) {
      svg("text", { x: left + hh * (thumb + gap) + thumb / 2, y: top - 6, "text-anchor": "middle", "font-size": 10, fill: "#333" }, root, "head " + hh);
    }
    e.layers.forEach(function (name, l) {
      var y = top + l * (thumb + gap);
      svg("text", { x: left - 6, y: y + thumb / 2 + 3, "text-anchor": "end", "font-size": 9, fill: "#333" }, root, short(name, 20));
      for (var hd = 0; hd < H; hd++) {
        var sl = self.headSlice(e, l, hd), x = left + hd * (thumb + gap);
        var vmax = maxOf(w, sl.off, sl.nq * sl.nk, allowed);
        var pic = image(root, mapImage(w, sl.off, sl.nq, sl.nk, allowed, s.gamma, self.lut, vmax), x, y, thumb, thumb);
        pic.setAttribute("class", "attnbook-thumb");
        pic.setAttribute("data-layer", l); pic.setAttribute("data-head", hd);
        var chosen = l === s.layer && hd === s.head;
        svg("rect", { x: x - 0.5, y: y - 0.5, width: thumb + 1, height: thumb + 1, fill: "none",
                      stroke: chosen ? "#e41a1c" : "#999", "stroke-width": chosen ? 2.5 : 0.5, "pointer-events": "none" }, root);
        (function (layer, head) {
          pic.addEventListener("click", function () {
            s.layer = layer; s.head = head; s.view = "heatmap";
            self.layerSelect.value = layer; self.headRange.value = head; self.draw();
          });
          pic.addEventListener("mouseenter", function () {
            self.readout.textContent = e.layers[layer] + " · head " + head + ": click to open its heatmap";
          });
        })(l, hd);
      }
    });
    return root;
  };

  // -- export ----------------------------------------------------------------------------------
  View.prototype.svgText = function () {
    var node = this.drawing.querySelector("svg");
    return node ? '<?xml version="1.0" encoding="UTF-8"?>\n' + new XMLSerializer().serializeToString(node) : "";
  };
  View.prototype.fileName = function (ext) {
    var e = this.entry(), s = this.state;
    return slug([this.data.title].concat(this.where(e), [e.layers[s.layer], "head" + s.head, s.view]).join(" ")) + "." + ext;
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
