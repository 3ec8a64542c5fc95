// Circuits as layered graphs (cytoscape.js, vendored): input at the bottom, logits at the top, one row per layer and
// kind (heads, then the MLP), a head's column its index; edge width by |weight|, q/k/v on the edge.
import cytoscape from "./vendor/cytoscape.esm.min.mjs";

const KINDS = ["head", "mlp", "neuron", "sae_feature", "error"];
export const INPUT_COLOURS = { q: "#1f77b4", k: "#2ca02c", v: "#d62728", "": "#777777" };
// the Graphviz export's colours for the Venn regions of up to 3 runs (bit i = run i)
export const REGION_COLOURS = { 1: "#8dd3c7", 2: "#fdb462", 3: "#b3de69", 4: "#bebada", 5: "#80b1d3", 6: "#fccde5", 7: "#fb8072" };
export const SINGLE_COLOUR = "#cfe2f3";

function row(node) {
  if (node.kind === "embed") return [-1, 0];
  if (node.kind === "logits") return [1e9, 0];
  return [node.layer ?? 1e8, Math.max(0, KINDS.indexOf(node.kind))];
}

// positions {name: {x, y}}: rows bottom to top, heads at their index, others centred in their row
export function layered(nodes) {
  const rows = new Map();
  for (const n of nodes) {
    const key = row(n).join(",");
    if (!rows.has(key)) rows.set(key, { key: row(n), nodes: [] });
    rows.get(key).nodes.push(n);
  }
  const ordered = [...rows.values()].sort((a, b) => a.key[0] - b.key[0] || a.key[1] - b.key[1]);
  const widest = Math.max(1, ...nodes.filter((n) => n.kind === "head").map((n) => n.index + 1));
  const positions = {};
  ordered.forEach((r, level) => {
    const y = -level * 70;
    const byIndex = r.nodes.every((n) => n.kind === "head" && n.index !== null);
    r.nodes.sort((a, b) => (a.index ?? 0) - (b.index ?? 0) || (a.name < b.name ? -1 : 1));
    r.nodes.forEach((n, i) => {
      const x = byIndex ? (n.index - (widest - 1) / 2) * 80 : (i - (r.nodes.length - 1) / 2) * 80;
      positions[n.name] = { x, y };
    });
  });
  return positions;
}

export const edgeId = (e) => `${e.sender}->${e.receiver}${e.input ? `<${e.input}>` : ""}`;

// nodes: [{name, kind, layer, index, score, colour?}], edges: [{sender, receiver, input, weight, in_circuit?, colour?}]
// (an edge with in_circuit false, scored but outside the circuit, is dashed)
export function drawGraph(container, nodes, edges, { onNode } = {}) {
  const positions = layered(nodes);
  const top = Math.max(1e-12, ...edges.map((e) => Math.abs(e.weight)));
  const elements = [
    ...nodes.map((n) => ({ data: { id: n.name, label: n.name, score: n.score, kind: n.kind, region: n.region ?? 0,
      colour: n.colour || SINGLE_COLOUR }, position: positions[n.name] })),
    ...edges.map((e) => ({ data: { id: edgeId(e), source: e.sender, target: e.receiver, input: e.input || "",
      weight: e.weight, region: e.region ?? 0, width: 0.5 + 5 * Math.abs(e.weight) / top,
      line: e.in_circuit === false ? "dashed" : "solid",
      colour: e.colour || INPUT_COLOURS[e.input || ""] } })),
  ];
  if (container.cy) container.cy.destroy(); // a redraw replaces the graph in this box
  const many = edges.length > 400;
  const cy = cytoscape({
    container, elements, layout: { name: "preset", fit: true, padding: 20 }, wheelSensitivity: 0.3,
    style: [
      { selector: "node", style: { shape: "round-rectangle", width: 58, height: 24, label: "data(label)",
        "font-size": 11, "text-valign": "center", "background-color": "data(colour)", "border-width": 1,
        "border-color": "#666" } },
      { selector: "node:selected", style: { "border-width": 3, "border-color": "#000" } },
      many ? { selector: "edge", style: { width: "data(width)", "line-color": "data(colour)", "line-style": "data(line)", "curve-style": "haystack",
        "haystack-radius": 0, opacity: 0.5 } }
        : { selector: "edge", style: { width: "data(width)", "line-color": "data(colour)", "line-style": "data(line)", "target-arrow-color": "data(colour)",
          "target-arrow-shape": "triangle", "arrow-scale": 0.6, "curve-style": "bezier", opacity: 0.75, label: "data(input)",
          "font-size": 9, color: "#333", "text-background-color": "#fff", "text-background-opacity": 0.7 } },
    ],
    // past a few hundred edges: straight lines without labels or arrows, and no edges while panning (fast enough for
    // thousands; the slider's URL says how many are shown)
    hideEdgesOnViewport: many, textureOnViewport: many,
  });
  if (onNode) cy.on("tap", "node", (event) => onNode(event.target.id()));
  container.cy = cy;
  container.dataset.nodes = String(nodes.length);
  container.dataset.edges = String(edges.length);
  window.cy = cy; // for a person at the console, and for the browser tests
  return cy;
}
