// Plain SVG charts drawn from API answers: Venn (2-3 runs), UpSet (more), a similarity heatmap, a threshold ladder.
import { REGION_COLOURS } from "./graph.js";

const NS = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(NS, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  node.append(...children);
  return node;
}

const text = (x, y, content, attrs = {}) => svg("text", { x, y, "text-anchor": "middle", ...attrs }, String(content));

// regions: [{region (bitmask), sets, count}], names: run labels
export function venn(regions, names) {
  const two = names.length === 2;
  const circles = two ? [[150, 130], [250, 130]] : [[150, 115], [250, 115], [200, 200]];
  const spots = two ? { 1: [105, 135], 2: [295, 135], 3: [200, 135] }
    : { 1: [110, 95], 2: [290, 95], 4: [200, 265], 3: [200, 85], 5: [145, 190], 6: [255, 190], 7: [200, 150] };
  const height = two ? 260 : 330;
  const chart = svg("svg", { width: "100%", viewBox: `0 0 400 ${height}`, style: "max-width:400px", id: "venn",
    "data-runs": names.length });
  circles.forEach(([x, y], i) => {
    chart.append(svg("circle", { cx: x, cy: y, r: 95, fill: REGION_COLOURS[1 << i], "fill-opacity": 0.55, stroke: "#555" }));
    const [lx, ly] = two ? [x + (i ? 40 : -40), 20] : [x + (i === 2 ? 0 : i ? 60 : -60), i === 2 ? 320 : 12];
    chart.append(text(lx, ly, names[i], { "font-weight": "bold" }));
  });
  for (const r of regions) {
    const [x, y] = spots[r.region];
    chart.append(text(x, y, r.count, { "data-region": r.region, "font-size": 16 }));
  }
  return chart;
}

export function upset(regions, names) {
  const rows = regions.filter((r) => r.count > 0).sort((a, b) => b.count - a.count);
  const most = Math.max(1, ...rows.map((r) => r.count));
  const left = 160, width = 26, bars = 154, dots = names.length * 20; // bars end at y = bars, their labels above
  const chart = svg("svg", { width: left + rows.length * width + 20, height: bars + dots + 30, id: "upset" });
  const tallest = bars - 20;
  names.forEach((name, i) => chart.append(text(left - 8, bars + 24 + i * 20, name, { "text-anchor": "end" })));
  rows.forEach((r, j) => {
    const x = left + j * width;
    const h = (tallest * r.count) / most;
    chart.append(svg("rect", { x: x + 4, y: bars - h + 10, width: width - 8, height: h, fill: "#555" }));
    chart.append(text(x + width / 2, bars - h + 6, r.count, { "font-size": 10 }));
    names.forEach((_, i) => chart.append(svg("circle", { cx: x + width / 2, cy: bars + 20 + i * 20, r: 6,
      fill: r.region >> i & 1 ? "#222" : "#ddd" })));
  });
  return chart;
}

// matrix: square list of lists in [0, 1]; onCell(i, j) makes a cell a link target
export function heatmap(matrix, labels, href) {
  const longest = Math.max(4, ...labels.map((name) => name.length));
  const cell = 44, left = Math.min(320, 20 + 7 * longest), topPad = Math.min(280, 20 + 6.5 * longest);
  const chart = svg("svg", { width: left + labels.length * cell + 10, height: topPad + labels.length * cell + 10,
    id: "heatmap" });
  labels.forEach((name, i) => {
    chart.append(text(left - 6, topPad + i * cell + cell / 2 + 4, name, { "text-anchor": "end" }));
    chart.append(text(0, 0, name, { "text-anchor": "start",
      transform: `translate(${left + i * cell + cell / 2 + 4},${topPad - 6}) rotate(-60)` }));
  });
  matrix.forEach((row, i) => row.forEach((value, j) => {
    const v = value ?? 0;
    const shade = Math.round(255 - 200 * v);
    const rect = svg("rect", { x: left + j * cell, y: topPad + i * cell, width: cell - 1, height: cell - 1,
      fill: `rgb(${shade},${Math.round(255 - 120 * v)},255)` });
    const label = text(left + j * cell + cell / 2, topPad + i * cell + cell / 2 + 4, value === null ? "-" : v.toFixed(2),
      { fill: v > 0.6 ? "#fff" : "#000", "font-size": 11 });
    const link = svg("a", { href: href(i, j) }, rect, label);
    chart.append(link);
  }));
  return chart;
}

// rungs: [{threshold, size, faithfulness, contains_stricter, within_stricter}], strictest first
export function ladderChart(rungs) {
  const most = Math.max(1, ...rungs.map((r) => r.size));
  const step = 46, width = 360, left = 70;
  const chart = svg("svg", { width: left + width + 180, height: rungs.length * step + 30, id: "ladder-chart" });
  chart.append(svg("line", { x1: left - 10, y1: 10, x2: left - 10, y2: rungs.length * step + 10, stroke: "#888", "stroke-width": 3 }));
  chart.append(svg("line", { x1: left + width + 10, y1: 10, x2: left + width + 10, y2: rungs.length * step + 10, stroke: "#888",
    "stroke-width": 3 }));
  rungs.forEach((r, i) => {
    const y = rungs.length * step - i * step - 10; // strictest on top: the ladder is climbed towards it
    const w = (width * r.size) / most;
    chart.append(text(left - 18, y + 5, r.threshold, { "text-anchor": "end" }));
    chart.append(svg("a", { href: `/run/${encodeURIComponent(r.run)}` },
      svg("rect", { x: left, y: y - 9, width: w, height: 18, fill: "#80b1d3", "data-threshold": r.threshold }),
      text(left + 4, y + 5, `${r.size} members`, { "text-anchor": "start" })));
    const nest = r.within_stricter === null ? "" : r.within_stricter ? "within the stricter circuit" : "not within the stricter";
    chart.append(text(left + width + 18, y + 5, nest, { "text-anchor": "start", fill: r.within_stricter ? "#2a7" : "#b33" }));
  });
  return chart;
}
