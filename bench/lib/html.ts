// The self-contained HTML report: the report JSON embedded, a ~100-line SVG chart renderer
// inlined (no chart library to fetch, no network), works from file:// offline.
import type { Report } from './report.js';
import { renderMarkdown } from './report.js';

const CHART_JS = String.raw`
(function () {
  var report = JSON.parse(document.getElementById('report-data').textContent);
  var COLORS = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#4b5563', '#ca8a04'];
  var NS = 'http://www.w3.org/2000/svg';
  function el(name, attrs, parent) {
    var e = document.createElementNS(NS, name);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }
  function nice(max) {
    if (!(max > 0)) return 1;
    var p = Math.pow(10, Math.floor(Math.log10(max)));
    var m = max / p;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
  }
  function fmt(v) {
    if (Math.abs(v) >= 1e6) return (v / 1e6).toFixed(1) + 'M';
    if (Math.abs(v) >= 1e3) return (v / 1e3).toFixed(1) + 'k';
    return Math.abs(v) < 10 && v !== 0 ? v.toFixed(2) : v.toFixed(0);
  }
  // series: [{name, points: [[x, y], ...]}]; xTicks: optional [[x, label]]
  function lineChart(container, title, series, xLabel, yLabel, xTicks) {
    var W = 640, H = 300, L = 64, R = 16, T = 28, B = 44;
    var box = document.createElement('figure');
    box.className = 'chart';
    container.appendChild(box);
    var svg = el('svg', { viewBox: '0 0 ' + W + ' ' + H, width: W, height: H, role: 'img', 'aria-label': title }, box);
    el('text', { x: L, y: 18, class: 'title' }, svg).textContent = title;
    var xs = [], ys = [];
    series.forEach(function (s) { s.points.forEach(function (p) { xs.push(p[0]); ys.push(p[1]); }); });
    if (xs.length === 0) { el('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle' }, svg).textContent = 'no data'; return 0; }
    var x0 = Math.min.apply(null, xs), x1 = Math.max.apply(null, xs);
    if (x1 === x0) x1 = x0 + 1;
    var y1 = nice(Math.max.apply(null, ys));
    var sx = function (x) { return L + ((x - x0) / (x1 - x0)) * (W - L - R); };
    var sy = function (y) { return H - B - (y / y1) * (H - T - B); };
    el('line', { x1: L, y1: H - B, x2: W - R, y2: H - B, class: 'axis' }, svg);
    el('line', { x1: L, y1: T, x2: L, y2: H - B, class: 'axis' }, svg);
    for (var i = 0; i <= 4; i++) {
      var yv = (y1 * i) / 4;
      el('line', { x1: L, y1: sy(yv), x2: W - R, y2: sy(yv), class: 'grid' }, svg);
      el('text', { x: L - 6, y: sy(yv) + 4, 'text-anchor': 'end', class: 'tick' }, svg).textContent = fmt(yv);
    }
    var ticks = xTicks || [0, 1, 2, 3, 4].map(function (k) { var v = x0 + ((x1 - x0) * k) / 4; return [v, fmt(v)]; });
    ticks.forEach(function (t) {
      el('text', { x: sx(t[0]), y: H - B + 16, 'text-anchor': 'middle', class: 'tick' }, svg).textContent = t[1];
    });
    el('text', { x: (L + W - R) / 2, y: H - 8, 'text-anchor': 'middle', class: 'label' }, svg).textContent = xLabel;
    el('text', { x: 14, y: (T + H - B) / 2, transform: 'rotate(-90 14 ' + (T + H - B) / 2 + ')', 'text-anchor': 'middle', class: 'label' }, svg).textContent = yLabel;
    var drawn = 0;
    series.forEach(function (s, k) {
      if (!s.points.length) return;
      var d = s.points.map(function (p, j) { return (j ? 'L' : 'M') + sx(p[0]).toFixed(1) + ' ' + sy(p[1]).toFixed(1); }).join(' ');
      el('path', { d: d, fill: 'none', stroke: COLORS[k % COLORS.length], 'stroke-width': 2, class: 'series', 'data-series': s.name, 'data-points': s.points.length }, svg);
      var ly = T + 4 + k * 14;
      el('rect', { x: W - R - 150, y: ly - 8, width: 10, height: 10, fill: COLORS[k % COLORS.length] }, svg);
      el('text', { x: W - R - 136, y: ly + 1, class: 'legend' }, svg).textContent = s.name;
      drawn++;
    });
    return drawn;
  }
  var charts = document.getElementById('charts');
  var total = 0;
  function over(field, scale) {
    return report.runs.map(function (r) {
      return { name: r.target, points: r.timeline.map(function (p) { return [p.t, p[field] * (scale || 1)]; }) };
    });
  }
  total += lineChart(charts, 'Replies or upgrades per second', over('okRate'), 'seconds', 'per second');
  if (report.runs.some(function (r) { return r.timeline.some(function (p) { return p.deliveriesRate > 0; }); }))
    total += lineChart(charts, 'Deliveries over time', over('deliveriesRate'), 'seconds', 'deliveries/s');
  total += lineChart(charts, 'Connections held by the generator', over('open'), 'seconds', 'connections');
  // Percentile curves on a "nines" axis: x = -log10(1 - p).
  var nines = function (p) { return -Math.log10(1 - Math.min(p, 99.99) / 100); };
  var lat = [];
  report.runs.forEach(function (r) {
    Object.keys(r.latency).forEach(function (k) {
      lat.push({ name: r.target + ' ' + k, points: r.latency[k].curve.filter(function (c) { return c[0] < 100; }).map(function (c) { return [nines(c[0]), c[1]]; }) });
    });
  });
  total += lineChart(charts, 'Latency by percentile (coordinated-omission corrected where paced)', lat, 'percentile', 'ms', [[nines(0), '0'], [nines(90), '90'], [nines(99), '99'], [nines(99.9), '99.9'], [nines(99.99), '99.99']]);
  total += lineChart(charts, 'Server CPU over time', over('cpu'), 'seconds', 'cores');
  total += lineChart(charts, 'Server RSS over time', over('rssMB'), 'seconds', 'MB');
  document.documentElement.setAttribute('data-rendered', String(total));
})();
`;

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function renderHtml(r: Report): string {
  // </script> inside the JSON must not end the data block.
  const data = JSON.stringify(r).replace(/</g, '\\u003c');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>wsgate bench: ${esc(r.scenario)}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1340px;color:#111}
pre{background:#f6f8fa;padding:12px;overflow:auto;white-space:pre-wrap}
#charts{display:flex;flex-wrap:wrap;gap:12px}
figure.chart{margin:0;border:1px solid #ddd;border-radius:6px;padding:4px}
.axis{stroke:#333}.grid{stroke:#eee}.tick,.legend{font-size:11px;fill:#444}.label{font-size:12px;fill:#222}.title{font-size:13px;font-weight:600}
</style></head>
<body>
<h1>wsgate bench: ${esc(r.scenario)}</h1>
<div id="charts"></div>
<h2>Summary</h2>
<pre>${esc(renderMarkdown(r))}</pre>
<script type="application/json" id="report-data">${data}</script>
<script>${CHART_JS}</script>
</body></html>
`;
}
