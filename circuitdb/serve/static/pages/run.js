// Run: the circuit as a layered graph. The slider asks the server for the top N edges by |weight| (the store cuts,
// so a run of 30,000 edges sends only those; a run with a score list: its top N scored edges, those outside the
// circuit dashed); a clicked node shows its score, its edges and the other runs holding it.
import { api, el, fmt, runLink, setQuery, table } from "../app.js";
import { drawGraph, INPUT_COLOURS } from "../graph.js";

const STEPS = 200; // slider positions, spread logarithmically over 1 ... all edges

export async function render(view, runId, query) {
  const state = { top: Number(query.get("top")) || 200, node: query.get("node") || "",
    minWeight: Number(query.get("min_weight")) || 0 };
  const heading = el("h1", {}, runId);
  const count = el("span", { id: "edge-count" });
  const slider = el("input", { type: "range", id: "top", min: 0, max: STEPS, step: 1 });
  const floor = el("input", { type: "number", id: "min-weight", min: 0, step: "any", size: 6, value: state.minWeight || "",
    onchange: (e) => { state.minWeight = Math.max(0, Number(e.target.value) || 0); load(); } });
  const graph = el("div", { class: "graph", id: "graph" });
  const panel = el("div", { class: "panel", id: "panel" }, el("p", { class: "muted" }, "Click a node."));
  const legend = el("span", { class: "legend" },
    Object.entries(INPUT_COLOURS).map(([input, colour]) => el("span", { style: `border-color:${colour};color:${colour}` },
      input || "other")));
  view.replaceChildren(heading, el("div", { class: "controls" }, el("label", {}, "edges ", slider),
    el("label", {}, "|weight| at least ", floor), count, legend),
    el("div", { class: "split" }, graph, panel));

  let total = 1;
  let model = "";
  const toTop = (step) => Math.max(1, Math.round(Math.exp((Math.log(total) * step) / STEPS)));
  const toStep = (top) => Math.round((STEPS * Math.log(Math.max(1, top))) / Math.log(Math.max(2, total)));

  async function load() {
    graph.dataset.loading = "1";
    const sub = await api(`subgraph/${encodeURIComponent(runId)}`, { top: state.top, min_weight: state.minWeight || "" });
    total = Math.max(1, sub.scored_edges || sub.total_edges); // a score list's edges: the slider reaches them all
    model = sub.run.model;
    heading.replaceChildren(sub.label, el("span", { class: "muted" }, `  ${sub.run.id}`));
    slider.value = toStep(Math.min(state.top, total));
    const floorText = state.minWeight ? `, |weight| >= ${state.minWeight}` : "";
    const inCircuit = sub.edges.filter((e) => e.in_circuit).length;
    count.textContent = sub.scored_edges
      ? `${sub.edges.length} of ${sub.scored_edges} scored edges (top ${state.top} by |score|${floorText}; ${inCircuit} of `
        + `them in the circuit of ${sub.total_edges}, the rest dashed), ${sub.nodes.length} nodes`
      : `${sub.edges.length} of ${sub.total_edges} edges (top ${state.top} by |weight|${floorText}), `
        + `${sub.nodes.length} of ${sub.total_nodes} nodes`;
    drawGraph(graph, sub.nodes, sub.edges, { onNode: (name) => { state.node = name; show(); } });
    delete graph.dataset.loading;
    save();
  }

  function save() { setQuery({ top: state.top, min_weight: state.minWeight || "", node: state.node }); }

  async function show() {
    save();
    if (!state.node) return;
    if (window.cy) { window.cy.nodes().unselect(); window.cy.getElementById(state.node).select(); }
    panel.dataset.node = "";
    try {
      const c = await api(`component/${encodeURIComponent(runId)}/${encodeURIComponent(state.node)}`);
      panel.replaceChildren(...[
        el("h2", {}, c.name),
        el("p", {}, `${c.kind ?? ""} layer ${fmt(c.layer)}, score `, el("b", { id: "node-score" }, fmt(c.score))),
        c.kind === "sae_feature" ? el("p", {}, el("a", { href: `/features?feature=${encodeURIComponent(c.name)}&model=${encodeURIComponent(model)}` },
          "relations")) : null,
        el("h2", {}, `edges (${c.edges.length}, strongest first)`),
        table(c.edges, ["direction", "other", "input", "weight"]),
        el("h2", {}, `runs including ${c.name} (${c.runs.length})`),
        table(c.runs, ["label", "score"], { cell: (r, key) => (key === "label"
          ? runLink(r.run, r.label, `?node=${encodeURIComponent(c.name)}`) : undefined) }),
      ].filter(Boolean));
      panel.dataset.node = c.name;
    } catch (error) {
      panel.replaceChildren(el("p", { class: "error" }, error.message));
    }
  }

  let timer;
  slider.addEventListener("input", () => {
    state.top = toTop(Number(slider.value));
    count.textContent = `top ${state.top} ...`;
    clearTimeout(timer);
    timer = setTimeout(load, 250);
  });
  await load();
  await show();
}
