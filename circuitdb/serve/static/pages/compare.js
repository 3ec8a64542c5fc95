// Compare: 2-3 runs overlaid in one layered graph, coloured by membership as the Graphviz export colours them; the
// Venn diagram (UpSet past 3 runs) and the diff table of the first two.
import { api, el, label, runLink, setQuery, table } from "../app.js";
import { drawGraph, REGION_COLOURS } from "../graph.js";
import { upset, venn } from "../charts.js";

export async function render(view, _arg, query) {
  const ids = query.getAll("run");
  const top = Number(query.get("top")) || 200;
  const edges = query.get("edges") === "1";
  if (ids.length < 2) return picker(view, ids);
  const result = await api("venn", { run: ids, edges: edges ? 1 : "" });
  const names = result.runs.map((r) => r.label);
  const full = await Promise.all(result.runs.map((r) => api(`subgraph/${encodeURIComponent(r.id)}`, { top })));
  const toggle = new URLSearchParams(location.search);
  if (edges) toggle.delete("edges"); else toggle.set("edges", "1");
  view.replaceChildren(el("h1", {}, `Compare ${names.join(" | ")}`),
    el("a", { href: `/compare?${toggle}`, id: "toggle-edges" }, edges ? "regions of components" : "regions of edges"));
  setQuery({ run: result.runs.map((r) => r.id), top, edges: edges ? "1" : "" });

  const legend = el("p", { class: "legend", id: "legend" });
  const charts = el("div", { class: "charts" });
  if (result.runs.length <= 3) {
    const region = new Map(); // component -> bitmask, from the venn answer (the full memberships)
    if (!edges) for (const r of result.regions) for (const m of r.members) region.set(m, r.region);
    const nodes = new Map();
    const links = new Map();
    full.forEach((sub, i) => {
      for (const n of sub.nodes) {
        const seen = nodes.get(n.name) || { ...n, bits: 0 };
        seen.bits |= 1 << i;
        nodes.set(n.name, seen);
      }
      for (const e of sub.edges) {
        const key = `${e.sender}->${e.receiver}<${e.input}>`;
        const seen = links.get(key) || { ...e, region: 0 };
        seen.region |= 1 << i;
        seen.weight = Math.max(Math.abs(seen.weight), Math.abs(e.weight));
        links.set(key, seen);
      }
    });
    const shownNodes = [...nodes.values()].map((n) => {
      const bits = region.get(n.name) ?? n.bits;
      return { ...n, region: bits, colour: REGION_COLOURS[bits] };
    });
    const shownEdges = [...links.values()].map((e) => ({ ...e, colour: REGION_COLOURS[e.region] }));
    const graph = el("div", { class: "graph", id: "graph" });
    for (const bits of [...new Set(shownNodes.map((n) => n.region))].sort((a, b) => a - b)) {
      const sets = names.filter((_, i) => bits >> i & 1).join(" & ");
      legend.append(el("span", { style: `background:${REGION_COLOURS[bits]}`, "data-region": bits }, sets));
    }
    view.append(el("p", { class: "muted" }, `each run's top ${top} edges by |weight|; nodes coloured by the runs that include them`),
      legend, el("div", { class: "split" }, graph, el("div", { class: "panel" }, venn(result.regions, names))));
    drawGraph(graph, shownNodes, shownEdges);
  } else {
    charts.append(upset(result.regions, names));
  }
  view.append(el("h2", {}, `${result.kind}: regions (${result.identity})`), charts);
  charts.append(table(result.regions, ["sets", "count", "members"]));
  const diff = await api("diff", { run: result.runs.slice(0, 2).map((r) => r.id), edges: edges ? 1 : "" });
  const keys = Object.keys(diff.rows[0] || { component: 1, side: 1 });
  view.append(el("h2", {}, `diff: A = ${label(diff.a)}, B = ${label(diff.b)}`), el("div", { id: "diff" }, table(diff.rows, keys)));
}

async function picker(view, ids) {
  const { runs } = await api("runs");
  const chosen = new Set(ids);
  const go = el("a", { href: "#", id: "go" }, "Compare");
  const update = () => go.setAttribute("href", `/compare?${[...chosen].map((id) => `run=${encodeURIComponent(id)}`).join("&")}`);
  view.replaceChildren(el("h1", {}, "Compare: tick 2 or more runs"), go,
    table(runs, ["pick", "id", "model", "task", "method", "threshold", "n_nodes", "n_edges"], {
      cell: (r, key) => {
        if (key === "id") return runLink(r.id, r.id.slice(0, 8));
        if (key !== "pick") return undefined;
        return el("input", { type: "checkbox", "data-run": r.id, checked: chosen.has(r.id),
          onchange: (e) => { e.target.checked ? chosen.add(r.id) : chosen.delete(r.id); update(); } });
      },
    }));
  update();
}
