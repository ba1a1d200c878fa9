/* raftlab run report: latency and throughput plots, the cluster timeline, the failure views.
 * All data comes from the JSON block #report-data and is drawn on canvases or inserted with
 * textContent; nothing from the run is ever parsed as HTML. */
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var ops = data.ops;
  var END = Math.max(data.end, 1);
  var TYPES = ["ok", "fail", "info"];
  var TYPE_COL = ["#2563eb", "#dc2626", "#d97706"];
  var ROLE_COL = { follower: "#cbd5e1", "pre-candidate": "#fef08a", candidate: "#facc15", leader: "#16a34a", learner: "#a5b4fc" };
  var M = { l: 70, r: 18, t: 12, b: 30 };
  var lin = window.raftlabLin;

  function fmtSecs(us) { return (us / 1e6).toFixed(3) + " s"; }
  function fmtLat(us) {
    if (us >= 1e6) return +(us / 1e6).toPrecision(3) + " s";
    if (us >= 1000) return +(us / 1000).toPrecision(3) + " ms";
    return +us.toPrecision(3) + " \u00b5s";
  }

  function setup(canvas, height) {
    var dpr = window.devicePixelRatio || 1;
    var w = Math.max(320, canvas.parentElement.clientWidth - 8);
    canvas.width = Math.round(w * dpr); canvas.height = Math.round(height * dpr);
    canvas.style.height = height + "px";
    var ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, height);
    ctx.font = "12px system-ui, sans-serif";
    return { ctx: ctx, w: w, h: height, x: function (us) { return M.l + (us / END) * (w - M.l - M.r); } };
  }

  function niceStep(range, target) {
    var raw = range / target, p = Math.pow(10, Math.floor(Math.log10(raw)));
    var steps = [1, 2, 2.5, 5, 10];
    for (var i = 0; i < steps.length; i++) if (steps[i] * p >= raw) return steps[i] * p;
    return 10 * p;
  }

  function timeAxis(c, top, bottom) {
    var ctx = c.ctx, secs = END / 1e6, step = niceStep(secs, Math.max(2, Math.floor(c.w / 110)));
    ctx.strokeStyle = "#e5e7eb"; ctx.fillStyle = "#6b7280"; ctx.textAlign = "center";
    for (var s = 0; s <= secs + 1e-9; s += step) {
      var x = c.x(s * 1e6);
      ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, bottom); ctx.stroke();
      ctx.fillText(+s.toFixed(3) + " s", x, bottom + 14);
    }
    ctx.textAlign = "left";
  }

  // fault names at the top of their bands, in the plot's font, where there is room; a band
  // too narrow for its name keeps the name for the next wider band of the same kind
  function labelFaults(c, top, labels) {
    var ctx = c.ctx, lastEnd = -Infinity;
    ctx.font = "bold 12px system-ui, sans-serif";
    labels.forEach(function (l) {
      var w = ctx.measureText(l[2]).width + 6;
      if (l[1] - l[0] < w || l[0] < lastEnd) return;
      ctx.fillStyle = "rgba(255,255,255,.85)"; ctx.fillRect(l[0] + 1, top + 6, w, 16);
      ctx.fillStyle = "#1f2937"; ctx.fillText(l[2], l[0] + 4, top + 18);
      lastEnd = l[0] + w;
    });
    ctx.font = "12px system-ui, sans-serif";
  }

  function shadeFaults(c, top, bottom, hits) {
    var ctx = c.ctx, labels = [];
    // [applying, in force, stopping, healed, kind, colour, detail]: solid while in force,
    // faint while it was being applied or healed
    data.faults.forEach(function (f) {
      var xa = c.x(f[0]), x0 = c.x(f[1]), x1 = Math.max(c.x(f[2]), x0 + 2), xe = Math.max(c.x(f[3]), x1);
      ctx.fillStyle = f[5];
      ctx.globalAlpha = 0.07; ctx.fillRect(xa, top, x0 - xa, bottom - top); ctx.fillRect(x1, top, xe - x1, bottom - top);
      ctx.globalAlpha = 0.2; ctx.fillRect(x0, top, x1 - x0, bottom - top);
      ctx.globalAlpha = 0.95; ctx.fillRect(x0, top, x1 - x0, 5);
      ctx.globalAlpha = 1;
      if (labels) labels.push([x0, x1, f[4], f[5]]);
      if (hits) hits.push([xa, xe, top, top + 8, f[4] + ": in force " + fmtSecs(f[1]) + " \u2013 " + fmtSecs(f[2]) +
        " (applied from " + fmtSecs(f[0]) + ", healed by " + fmtSecs(f[3]) + ")\n" + f[6]]);
    });
    data.errors.forEach(function (e) {  // where a non-linearizable operation began
      var x = c.x(e[0]);
      ctx.strokeStyle = "#dc2626"; ctx.lineWidth = 1.5; ctx.setLineDash([5, 3]);
      ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, bottom); ctx.stroke(); ctx.setLineDash([]); ctx.lineWidth = 1;
      if (data.errors.length <= 10) {  // more would only be clutter: hover tells which key
        ctx.fillStyle = "#b91c1c"; ctx.font = "bold 12px system-ui, sans-serif";
        ctx.fillText("\u2717 " + e[1], x + 3, top + 14); ctx.font = "12px system-ui, sans-serif";
      }
      if (hits) hits.push([x - 4, x + 4, top, bottom, "key " + e[1] + ": the first operation that cannot be linearized began at " + fmtSecs(e[0])]);
    });
    if (hits) labelFaults(c, top, labels);  // the cluster timeline names faults per node
    data.points.forEach(function (p) {
      var x = c.x(p[0]);
      ctx.strokeStyle = p[2]; ctx.lineWidth = 2; ctx.setLineDash([4, 3]); ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, bottom); ctx.stroke(); ctx.setLineDash([]); ctx.lineWidth = 1;
      if (hits) hits.push([x - 3, x + 3, top, bottom, p[1] + " at " + fmtSecs(p[0]) + "\n" + p[3]]);
    });
  }

  function legend(id, items) {
    var box = document.getElementById(id); if (!box) return;
    box.textContent = "";
    items.forEach(function (it) {
      var s = document.createElement("span"), sw = document.createElement("span");
      sw.className = "sw"; sw.style.background = it[1];
      if (it[2]) sw.style.opacity = it[2];
      s.appendChild(sw); s.appendChild(document.createTextNode(it[0])); box.appendChild(s);
    });
  }

  function faultLegendItems() {
    return Object.keys(data.palette).map(function (k) { return [k, data.palette[k], 0.6]; });
  }

  function hover(canvas, find) {
    canvas.addEventListener("mousemove", function (ev) {
      var r = canvas.getBoundingClientRect();
      var text = find(ev.clientX - r.left, ev.clientY - r.top);
      if (text) lin.showTip(ev, text); else lin.hideTip();
    });
    canvas.addEventListener("mouseleave", lin.hideTip);
  }

  function regionFinder(hits) {
    return function (x, y) {
      var found = [];
      for (var i = hits.length - 1; i >= 0; i--) {
        var h = hits[i];
        if (x >= h[0] && x <= h[1] && y >= h[2] && y <= h[3]) found.push(h[4]);
      }
      return found.slice(0, 4).join("\n\n");
    };
  }

  // the finest time bin with at most 150 bins and about 10 completions each (or only ~20 bins)
  function binSeconds() {
    var secs = END / 1e6, n = ops.t.length;
    return [0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300].find(function (b) {
      return secs / b <= 150 && (n * b / secs >= 10 || secs / b <= 20);
    }) || 600;
  }

  // p50/p95/p99 of ok latencies per time bin (by invocation), as Jepsen's quantile plot
  var QUANTILES = [[0.5, "#0f172a"], [0.95, "#7c3aed"], [0.99, "#db2777"]];
  function latencyQuantiles() {
    var binS = binSeconds(), bins = Math.max(1, Math.ceil(END / (binS * 1e6))), per = [];
    for (var k = 0; k < bins; k++) per.push([]);
    for (var i = 0; i < ops.t.length; i++) {
      if (ops.type[i] === 0) per[Math.min(bins - 1, Math.floor(ops.t[i] / (binS * 1e6)))].push(ops.lat[i]);
    }
    return { binS: binS, lines: QUANTILES.map(function (q) {
      return per.map(function (xs) {
        if (!xs.length) return null;
        xs.sort(function (a, b) { return a - b; });
        return xs[Math.min(xs.length - 1, Math.floor(q[0] * xs.length))];
      });
    }) };
  }

  // one operation in words: who, what, where, how it ended
  function opText(i) {
    var node = ops.node[i] >= 0 ? " on " + ops.nodes[ops.node[i]] : "";
    var val = ops.val.length ? ops.val[i] : "";
    return "process " + ops.procs[ops.proc[i]] + node + " \u00b7 " + ops.fnames[ops.f[i]] +
      (ops.keys[ops.key[i]] ? " key " + ops.keys[ops.key[i]] : "") + (val ? " " + val : "") +
      " \u00b7 " + TYPES[ops.type[i]] +
      (ops.err[i] >= 0 ? " (" + ops.errs[ops.err[i]] + (ops.ans[i] ? ": an answer, not an outage" : "") + ")" : "") +
      "\ninvoked " + fmtSecs(ops.t[i]) + ", " + (ops.type[i] === 2 ? "gave up after " : "latency ") + fmtLat(ops.lat[i]);
  }

  // ------------------------------------------------------------------ availability
  // per time bin: the share of completions that were answers (ok, or a fail that is the
  // system's answer); a bin where clients waited and nothing completed is 0, not a gap
  function drawAvailability() {
    var canvas = document.getElementById("availability"); if (!canvas) return;
    var c = setup(canvas, 170), ctx = c.ctx, n = ops.t.length, hits = [];
    var top = M.t + 4, bottom = c.h - M.b;
    var binS = binSeconds(), bin = binS * 1e6, bins = Math.max(1, Math.ceil(END / bin));
    var good = new Float64Array(bins), all = new Float64Array(bins), busy = new Uint8Array(bins);
    for (var i = 0; i < n; i++) {
      var end = ops.t[i] + ops.lat[i], b = Math.min(bins - 1, Math.floor(end / bin));
      all[b] += 1; if (ops.type[i] === 0 || ops.ans[i]) good[b] += 1;
      for (var k = Math.floor(ops.t[i] / bin); k <= b; k++) busy[k] = 1;
    }
    function y(v) { return bottom - v * (bottom - top); }
    shadeFaults(c, top, bottom, hits);
    timeAxis(c, top, bottom);
    ctx.textAlign = "right"; ctx.fillStyle = "#6b7280";
    [0, 0.5, 1].forEach(function (v) {
      ctx.strokeStyle = "#e5e7eb"; ctx.beginPath(); ctx.moveTo(M.l, y(v)); ctx.lineTo(c.w - M.r, y(v)); ctx.stroke();
      ctx.fillText(Math.round(v * 100) + "%", M.l - 6, y(v) + 4);
    });
    ctx.textAlign = "left";
    var drawn = 0;
    for (var k2 = 0; k2 < bins; k2++) {
      if (!busy[k2] && !all[k2]) continue;  // no client was asking: nothing to judge
      var v = all[k2] ? good[k2] / all[k2] : 0;
      var x0 = c.x(k2 * bin), x1 = Math.max(x0 + 1, c.x((k2 + 1) * bin) - 0.5);
      if (!all[k2]) {  // clients waiting and nothing completed: an outage, drawn as one
        ctx.fillStyle = "rgba(220,38,38,.18)"; ctx.fillRect(x0, top, x1 - x0, bottom - top);
      }
      ctx.fillStyle = v >= 0.99 ? "#16a34a" : v >= 0.5 ? "#ca8a04" : "#dc2626";
      ctx.fillRect(x0, y(Math.max(v, 0.03)), x1 - x0, bottom - y(Math.max(v, 0.03)));
      hits.push([x0, x1, top, bottom, fmtSecs(k2 * bin) + " \u2013 " + fmtSecs((k2 + 1) * bin) + ": " +
        (all[k2] ? Math.round(100 * v) + "% answered (" + good[k2] + " of " + all[k2] + " completions)" : "clients waiting, nothing completed")]);
      drawn++;
    }
    data.stalls.forEach(function (st) {
      var x0 = c.x(st[0]), x1 = Math.max(x0 + 2, c.x(st[1]));
      ctx.strokeStyle = "#991b1b"; ctx.lineWidth = 2; ctx.strokeRect(x0, top, x1 - x0, bottom - top); ctx.lineWidth = 1;
      var label = "stall " + ((st[1] - st[0]) / 1e6).toFixed(1) + " s";
      ctx.font = "bold 12px system-ui, sans-serif"; ctx.fillStyle = "#991b1b";
      ctx.fillText(label, Math.min(x0 + 3, c.w - M.r - ctx.measureText(label).width), bottom - 6);
      ctx.font = "12px system-ui, sans-serif";
      hits.push([x0, x1, top, bottom, "no answer for " + ((st[1] - st[0]) / 1e6).toFixed(2) + " s (" + fmtSecs(st[0]) + " \u2013 " + fmtSecs(st[1]) + ") while clients kept asking"]);
    });
    canvas.dataset.bins = String(drawn);
    canvas.dataset.stalls = String(data.stalls.length);
    hover(canvas, regionFinder(hits));
    legend("av-legend", [["\u2265 99% answered", "#16a34a"], ["50\u201399%", "#ca8a04"], ["< 50% (an outage)", "#dc2626"],
      ["stall: clients asking, no answer for \u2265 1 s", "#991b1b"]]);
  }

  // ------------------------------------------------------------------ operation timeline
  // Jepsen's timeline.html: a column per client worker, time running down, a bar per op
  var opsScale = null;
  function drawOpTimeline() {
    var canvas = document.getElementById("optimeline"); if (!canvas) return;
    var n = ops.t.length, secs = END / 1e6;
    var workers = data.concurrency || ops.procs.length || 1;
    var procNum = ops.procs.map(function (p) { var v = parseInt(p, 10); return isNaN(v) ? 0 : v; });
    if (opsScale === null) opsScale = Math.min(400, Math.max(20, 9000 / Math.max(secs, 1)));
    var TOP = 28, GUT = 96, BOTTOM = 10;
    var height = Math.min(30000, Math.ceil(TOP + secs * opsScale + BOTTOM));
    var scale = (height - TOP - BOTTOM) / Math.max(secs, 1e-6);
    var dpr = window.devicePixelRatio || 1;
    var avail = Math.max(320, canvas.parentElement.clientWidth - 20);
    var colW = Math.max(56, Math.floor((avail - GUT) / workers)), w = GUT + colW * workers;
    canvas.width = Math.round(w * dpr); canvas.height = Math.round(height * dpr);
    canvas.style.width = w + "px"; canvas.style.height = height + "px";
    var ctx = canvas.getContext("2d"); ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, height); ctx.font = "12px system-ui, sans-serif";
    function y(us) { return TOP + (us / 1e6) * scale; }
    var hits = [];
    data.faults.forEach(function (f, k) {  // fault bands in the gutter, faint across the columns
      var y0 = y(f[1]), y1 = Math.max(y0 + 2, y(f[2])), x = 4 + (k % 4) * 10;
      ctx.fillStyle = f[5]; ctx.globalAlpha = 0.12; ctx.fillRect(GUT, y0, w - GUT, y1 - y0);
      ctx.globalAlpha = 1; ctx.fillRect(x, y0, 8, y1 - y0);
      hits.push([x, x + 8, y0, y1, f[4] + ": in force " + fmtSecs(f[1]) + " \u2013 " + fmtSecs(f[2]) + "\n" + f[6]]);
    });
    var step = niceStep(secs, Math.max(2, Math.floor(height / 90)));
    ctx.fillStyle = "#6b7280"; ctx.strokeStyle = "#eef0f3"; ctx.textAlign = "right";
    for (var s2 = 0; s2 <= secs + 1e-9; s2 += step) {
      var yy = y(s2 * 1e6);
      ctx.beginPath(); ctx.moveTo(GUT - 4, yy); ctx.lineTo(w, yy); ctx.stroke();
      ctx.fillText(+s2.toFixed(3) + " s", GUT - 8, yy + 4);
    }
    ctx.textAlign = "center"; ctx.fillStyle = "#111827"; ctx.font = "bold 12px system-ui, sans-serif";
    for (var wk = 0; wk < workers; wk++) ctx.fillText("worker " + wk, GUT + wk * colW + colW / 2, 18);
    ctx.font = "11px system-ui, sans-serif"; ctx.textAlign = "left";
    // each bar at least one label high, unless the worker's next op starts sooner
    var order = [], nextStart = new Float64Array(n).fill(Infinity), lastOf = {};
    for (var i0 = 0; i0 < n; i0++) order.push(i0);
    order.sort(function (a, b) { return ops.t[a] - ops.t[b]; });
    order.forEach(function (i1) {
      var col1 = procNum[ops.proc[i1]] % workers;
      if (lastOf[col1] !== undefined) nextStart[lastOf[col1]] = ops.t[i1];
      lastOf[col1] = i1;
    });
    var cols = [];
    for (var i = 0; i < n; i++) {
      var col = procNum[ops.proc[i]] % workers, x0 = GUT + col * colW + 3, bw = colW - 6;
      var y0 = y(ops.t[i]), room = isFinite(nextStart[i]) ? y(nextStart[i]) - 1 : height;
      var y1 = Math.max(y0 + 2, Math.min(Math.max(y0 + 14, y(ops.t[i] + ops.lat[i])), room));
      ctx.fillStyle = TYPE_COL[ops.type[i]]; ctx.globalAlpha = ops.ans[i] ? 0.45 : 0.85;
      ctx.fillRect(x0, y0, bw, y1 - y0 - 0.5); ctx.globalAlpha = 1;
      if (y1 - y0 >= 13) {
        var label = ops.fnames[ops.f[i]].slice(0, 5) + " " + ops.keys[ops.key[i]] + (ops.val.length ? " " + ops.val[i] : "");
        ctx.fillStyle = "#fff"; ctx.save(); ctx.beginPath(); ctx.rect(x0, y0, bw, y1 - y0); ctx.clip();
        ctx.fillText(label, x0 + 3, y0 + 11); ctx.restore();
      }
      cols.push([x0, x0 + bw, y0, y1, i]);
    }
    canvas.dataset.ops = String(n);
    canvas.dataset.workers = String(workers);
    var scaleBox = document.getElementById("ops-scale");
    if (scaleBox) scaleBox.textContent = Math.round(scale) + " px per second";
    drawOpTimeline.cols = cols; drawOpTimeline.hits = hits;  // what the hover reads
    if (!canvas.dataset.hooked) {
      canvas.dataset.hooked = "1";
      hover(canvas, function (mx, my) {
        var cs = drawOpTimeline.cols;
        for (var j = cs.length - 1; j >= 0; j--) {
          var h = cs[j];
          if (mx >= h[0] && mx <= h[1] && my >= h[2] - 1 && my <= h[3] + 1) return opText(h[4]);
        }
        return regionFinder(drawOpTimeline.hits)(mx, my);
      });
    }
  }

  // ------------------------------------------------------------------ latency
  var latPx = null;
  function drawLatency() {
    var canvas = document.getElementById("latency"); if (!canvas) return;
    var c = setup(canvas, 300), ctx = c.ctx, n = ops.t.length, hits = [];
    var top = M.t, bottom = c.h - M.b;
    var lo = Infinity, hi = 0;
    for (var i = 0; i < n; i++) { var l = ops.lat[i]; if (l > 0 && l < lo) lo = l; if (l > hi) hi = l; }
    if (!isFinite(lo)) { lo = 1; hi = 10; }
    var d0 = Math.floor(Math.log10(lo)), d1 = Math.max(d0 + 1, Math.ceil(Math.log10(Math.max(hi, lo * 10))));
    function y(us) { var v = Math.log10(Math.max(us, Math.pow(10, d0))); return bottom - ((v - d0) / (d1 - d0)) * (bottom - top); }
    shadeFaults(c, top, bottom, hits);
    timeAxis(c, top, bottom);
    ctx.fillStyle = "#6b7280"; ctx.textAlign = "right";
    for (var d = d0; d <= d1; d++) {
      var yy = y(Math.pow(10, d));
      ctx.strokeStyle = "#e5e7eb"; ctx.beginPath(); ctx.moveTo(M.l, yy); ctx.lineTo(c.w - M.r, yy); ctx.stroke();
      ctx.fillText(fmtLat(Math.pow(10, d)), M.l - 6, yy + 4);
    }
    ctx.textAlign = "left";
    latPx = { x: new Float32Array(n), y: new Float32Array(n) };
    var drawn = 0;
    [0, 2, 1].forEach(function (type) {
      ctx.fillStyle = TYPE_COL[type];
      for (var i = 0; i < n; i++) {
        if (ops.type[i] !== type) continue;
        var px = c.x(ops.t[i]), py = y(ops.lat[i]);
        latPx.x[i] = px; latPx.y[i] = py;
        ctx.fillRect(px - 1.25, py - 1.25, 2.5, 2.5);
        drawn++;
      }
    });
    canvas.dataset.points = String(drawn);
    var qs = latencyQuantiles();
    qs.lines.forEach(function (line, j) {
      ctx.strokeStyle = QUANTILES[j][1]; ctx.lineWidth = 1.4; ctx.globalAlpha = 0.85; ctx.beginPath();
      var pen = false;
      line.forEach(function (v, k) {
        if (v === null) { pen = false; return; }
        var x = c.x((k + 0.5) * qs.binS * 1e6), yy = y(v);
        if (pen) ctx.lineTo(x, yy); else ctx.moveTo(x, yy);
        pen = true;
      });
      ctx.stroke(); ctx.lineWidth = 1; ctx.globalAlpha = 1;
    });
    hover(canvas, function (mx, my) {
      var best = -1, bd = 36;
      for (var i = 0; i < n; i++) {
        var dx = latPx.x[i] - mx, dy = latPx.y[i] - my, dd = dx * dx + dy * dy;
        if (dd < bd) { bd = dd; best = i; }
      }
      if (best >= 0) {
        return opText(best);
      }
      return regionFinder(hits)(mx, my);
    });
    var counts = [0, 0, 0];
    for (var j = 0; j < n; j++) counts[ops.type[j]]++;
    legend("lat-legend", TYPES.map(function (t, k) { return [t + " (" + counts[k].toLocaleString() + ")", TYPE_COL[k]]; })
      .concat(QUANTILES.map(function (q) { return ["p" + Math.round(q[0] * 100) + " of ok", q[1]]; })));
  }

  // ------------------------------------------------------------------ throughput
  function drawThroughput() {
    var canvas = document.getElementById("throughput"); if (!canvas) return;
    var c = setup(canvas, 220), ctx = c.ctx, n = ops.t.length, hits = [];
    var top = M.t, bottom = c.h - M.b;
    var binS = binSeconds();
    var bins = Math.max(1, Math.ceil(END / (binS * 1e6)));
    var series = [new Float64Array(bins), new Float64Array(bins), new Float64Array(bins)];
    for (var i = 0; i < n; i++) {
      var b = Math.min(bins - 1, Math.floor((ops.t[i] + ops.lat[i]) / (binS * 1e6)));
      series[ops.type[i]][b] += 1 / binS;
    }
    var hi = 1;
    series.forEach(function (s) { for (var k = 0; k < bins; k++) if (s[k] > hi) hi = s[k]; });
    var step = niceStep(hi, 4); hi = Math.ceil(hi / step) * step;
    function y(v) { return bottom - (v / hi) * (bottom - top); }
    shadeFaults(c, top, bottom, hits);
    timeAxis(c, top, bottom);
    ctx.textAlign = "right"; ctx.fillStyle = "#6b7280";
    for (var v = 0; v <= hi + 1e-9; v += step) {
      ctx.strokeStyle = "#e5e7eb"; ctx.beginPath(); ctx.moveTo(M.l, y(v)); ctx.lineTo(c.w - M.r, y(v)); ctx.stroke();
      ctx.fillText(Math.round(v) + "/s", M.l - 6, y(v) + 4);
    }
    ctx.textAlign = "left";
    series.forEach(function (s, type) {
      ctx.strokeStyle = TYPE_COL[type]; ctx.lineWidth = 1.6; ctx.beginPath();
      for (var k = 0; k < bins; k++) {
        var x = c.x((k + 0.5) * binS * 1e6);
        if (k === 0) ctx.moveTo(x, y(s[k])); else ctx.lineTo(x, y(s[k]));
      }
      ctx.stroke(); ctx.lineWidth = 1;
    });
    canvas.dataset.points = String(bins);
    canvas.dataset.binSeconds = String(binS);
    hover(canvas, function (mx, my) {
      var k = Math.floor(((mx - M.l) / (c.w - M.l - M.r)) * END / (binS * 1e6));
      var region = regionFinder(hits)(mx, my);
      if (k < 0 || k >= bins || my > bottom) return region;
      var t = fmtSecs(k * binS * 1e6) + " \u2013 " + fmtSecs((k + 1) * binS * 1e6);
      return t + "\n" + TYPES.map(function (name, j) { return name + " " + series[j][k].toFixed(1) + "/s"; }).join("  ") + (region ? "\n\n" + region : "");
    });
    legend("tp-legend", TYPES.map(function (t, k) { return [t + " per second", TYPE_COL[k]]; }));
    legend("fault-legend", [["faults:", "transparent"]].concat(faultLegendItems()));
  }

  // ------------------------------------------------------------------ cluster timeline
  function drawTimeline() {
    var canvas = document.getElementById("timeline"); if (!canvas) return;
    var lanes = data.lanes, LANE = 70;
    if (!lanes.length) {
      var p = document.createElement("p"); p.className = "hint";
      p.textContent = "This run has no node logs and no node-level faults to draw.";
      canvas.parentElement.replaceChild(p, canvas); return;
    }
    var c = setup(canvas, M.t + lanes.length * LANE + M.b), ctx = c.ctx, hits = [];
    var bottom = M.t + lanes.length * LANE;
    lanes.forEach(function (lane, li) {  // each lane's strip: clock offsets above, marks below
      ctx.fillStyle = li % 2 ? "#ffffff" : "#f8fafc";
      ctx.fillRect(0, M.t + li * LANE, c.w, LANE);
    });
    shadeFaults(c, M.t, bottom, null);
    timeAxis(c, M.t, bottom);
    var segCount = 0;
    lanes.forEach(function (lane, li) {
      var y0 = M.t + li * LANE + 16, h = 24;
      ctx.fillStyle = "#111827"; ctx.font = "bold 12px system-ui, sans-serif"; ctx.textAlign = "right";
      ctx.fillText(lane.node, M.l - 8, y0 + h / 2 + 4); ctx.textAlign = "left"; ctx.font = "12px system-ui, sans-serif";
      ctx.fillStyle = "#f3f4f6"; ctx.fillRect(M.l, y0, c.w - M.l - M.r, h);
      lane.segs.forEach(function (s) {
        var x0 = c.x(s[0]), x1 = Math.max(x0 + 1, c.x(s[1]));
        ctx.fillStyle = ROLE_COL[s[2]] || "#e5e7eb"; ctx.fillRect(x0, y0, x1 - x0, h);
        ctx.strokeStyle = "rgba(255,255,255,.9)"; ctx.beginPath(); ctx.moveTo(x0, y0); ctx.lineTo(x0, y0 + h); ctx.stroke();
        var label = ({ leader: "leader ", candidate: "cand. ", "pre-candidate": "pre-cand. " }[s[2]] || "") + (s[3] === null || s[3] === undefined ? "" : "T" + s[3]);
        if (x1 - x0 > ctx.measureText(label).width + 6) {
          ctx.fillStyle = s[2] === "leader" ? "#fff" : "#1f2937"; ctx.fillText(label, x0 + 3, y0 + h / 2 + 4);
        }
        hits.push([x0, x1, y0, y0 + h, lane.node + ": " + s[2] + (s[3] === null || s[3] === undefined ? " (starting)" : " in term " + s[3]) + (s[4] ? ", leader " + s[4] : "") + "\n" + fmtSecs(s[0]) + " \u2013 " + fmtSecs(s[1])]);
        segCount++;
      });
      var underEnd = -Infinity;  // where the last label under the lane ends: labels never overlap
      lane.effects.forEach(function (e) {
        var x0 = c.x(e[0]), x1 = Math.max(x0 + 2, c.x(e[1])), kind = e[2];
        var text = lane.node + ": " + e[4] + "\n" + fmtSecs(e[0]) + " \u2013 " + fmtSecs(e[1]);
        if (kind === "kill") {
          ctx.fillStyle = "#1f2937"; ctx.fillRect(x0, y0, x1 - x0, h);
          ctx.strokeStyle = e[3]; ctx.lineWidth = 2; ctx.beginPath(); ctx.moveTo(x0, y0); ctx.lineTo(x0 + 8, y0 + h); ctx.moveTo(x0 + 8, y0); ctx.lineTo(x0, y0 + h); ctx.stroke(); ctx.lineWidth = 1;
          if (x1 - x0 > 50) { ctx.fillStyle = "#fff"; ctx.fillText("crashed", x0 + 12, y0 + h / 2 + 4); }
          hits.push([x0, x1, y0, y0 + h, text]);
        } else if (kind === "pause") {
          ctx.save(); ctx.beginPath(); ctx.rect(x0, y0, x1 - x0, h); ctx.clip();
          ctx.strokeStyle = e[3]; ctx.lineWidth = 2;
          for (var sx = x0 - h; sx < x1; sx += 7) { ctx.beginPath(); ctx.moveTo(sx, y0 + h); ctx.lineTo(sx + h, y0); ctx.stroke(); }
          ctx.restore();
          if (x1 - x0 > 44) { ctx.fillStyle = "#1e3a8a"; ctx.font = "bold 12px system-ui"; ctx.fillText("paused", x0 + 4, y0 + h / 2 + 4); ctx.font = "12px system-ui, sans-serif"; }
          hits.push([x0, x1, y0, y0 + h, text]);
        } else if (kind === "clock") {
          ctx.fillStyle = e[3]; ctx.fillRect(x0, y0 - 4, x1 - x0, 3);
          ctx.fillStyle = "#5b21b6"; ctx.fillText(e[4], x0 + 2, y0 - 6);
          hits.push([x0, x1, y0 - 15, y0, text]);
        } else {  // a partition, loss or delay: a bar under the lane, named where there is room
          ctx.fillStyle = e[3]; ctx.fillRect(x0, y0 + h + 1, x1 - x0, 6);
          var w = ctx.measureText(e[4]).width;
          if (x1 - x0 >= Math.min(w, 60) && x0 > underEnd) {
            ctx.fillStyle = "#7f1d1d"; ctx.fillText(e[4], x0 + 1, y0 + h + 19);
            underEnd = x0 + w + 8;
          }
          hits.push([x0, x1, y0 + h, y0 + h + 20, text]);
        }
      });
      lane.marks.forEach(function (m) {
        var x = c.x(m[0]);
        if (m[1] === "election") {  // frequent (pre-votes while cut off): a thin tick
          ctx.fillStyle = "#a16207"; ctx.fillRect(x - 0.5, y0 + h, 1, 5);
          hits.push([x - 2, x + 2, y0 + h, y0 + h + 7, lane.node + " at " + fmtSecs(m[0]) + ": " + m[2]]);
          return;
        }
        ctx.fillStyle = m[1] === "error" ? "#dc2626" : "#374151";
        ctx.beginPath(); ctx.moveTo(x, y0 + h); ctx.lineTo(x - 4, y0 + h + 6); ctx.lineTo(x + 4, y0 + h + 6); ctx.fill();
        hits.push([x - 5, x + 5, y0 + h, y0 + h + 7, lane.node + " at " + fmtSecs(m[0]) + ": " + m[2]]);
      });
    });
    canvas.dataset.segments = String(segCount);
    hover(canvas, regionFinder(hits));
    legend("tl-legend", [["follower", ROLE_COL.follower], ["pre-candidate", ROLE_COL["pre-candidate"]],
      ["candidate", ROLE_COL.candidate], ["leader", ROLE_COL.leader], ["learner", ROLE_COL.learner],
      ["crashed", "#1f2937"]].concat(faultLegendItems()));
  }

  function drawAll() { drawAvailability(); drawLatency(); drawThroughput(); drawTimeline(); drawOpTimeline(); }
  ["in", "out"].forEach(function (dir) {
    var b = document.getElementById("ops-" + dir); if (!b) return;
    b.addEventListener("click", function () { opsScale = (opsScale || 100) * (dir === "in" ? 2 : 0.5); drawOpTimeline(); });
  });
  if (lin && data.lin.length) lin.render(document.getElementById("lin-views"), data.lin);
  drawAll();
  var pending = null;
  window.addEventListener("resize", function () { clearTimeout(pending); pending = setTimeout(drawAll, 150); });
  window.raftlabReport = { data: data, redraw: drawAll };
})();
