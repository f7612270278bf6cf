// creditgate console: draws the charts of a page with uPlot from the JSON
// the server rendered next to them. Without JavaScript the tables beside
// the charts carry the same numbers.
(function () {
  "use strict";
  var palette = ["#2f6fed", "#e67e22", "#16a085", "#8e44ad", "#c0392b", "#7f8c8d", "#2c3e50", "#d35400"];
  window.consoleCharts = {};
  function width(el) { return Math.max(300, el.clientWidth - 2); }
  function data(id) {
    var el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }
  var usageEl = document.getElementById("usage-chart"), u = data("usage-data");
  if (usageEl && u && typeof uPlot !== "undefined") {
    var series = [{}], cols = [u.x];
    u.series.forEach(function (s, i) {
      series.push({ label: s.route, stroke: palette[i % palette.length], fill: palette[i % palette.length] + "22",
        paths: uPlot.paths.bars({ size: [0.8 / Math.max(1, u.series.length), 40] }), points: { show: false } });
      cols.push(s.credits);
    });
    if (u.refund_total) {
      // Refunds: credits given back, drawn below the axis.
      series.push({ label: "refunds", stroke: "#7f8c8d", fill: "#7f8c8d44",
        paths: uPlot.paths.bars({ size: [0.8 / Math.max(1, u.series.length), 40] }), points: { show: false } });
      cols.push(u.refunds.map(function (v) { return -v; }));
    }
    if (u.series.length === 0) { series.push({ label: "credits", stroke: palette[0] }); cols.push(u.x.map(function () { return 0; })); }
    window.consoleCharts.usage = new uPlot({ width: width(usageEl), height: 260, series: series,
      axes: [{}, { label: "credits" }],
      // Half a bucket on each side, so the first and last bars show whole.
      scales: { x: { time: true, range: function (p, min, max) { return [min - u.step / 2, max + u.step / 2]; } } } }, cols, usageEl);
    var details = usageEl.parentNode.querySelector("details.table");
    if (details) details.removeAttribute("open");
  }
  var balEl = document.getElementById("balance-chart"), b = data("balance-data");
  if (balEl && b && b.x.length > 1 && typeof uPlot !== "undefined") {
    window.consoleCharts.balance = new uPlot({ width: width(balEl), height: 160,
      series: [{}, { label: "balance after", stroke: "#1e8e3e", paths: uPlot.paths.stepped({ align: 1 }) }],
      axes: [{}, { label: "credits" }],
      // Movements of one second still get a readable time axis.
      scales: { x: { time: true, range: function (u, min, max) { return min === max ? [min - 60, max + 60] : [min, max]; } } } },
      [b.x, b.balance], balEl);
  }
})();
