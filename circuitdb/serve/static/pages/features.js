// Features: the catalog's SAE features to pick from; a feature's stored relations (cosine, cross-model match) and its co-membership in circuits.
import { api, el, setQuery, table } from "../app.js";
import cytoscape from "../vendor/cytoscape.esm.min.mjs";

const KIND_COLOURS = { cosine: "#80b1d3", match: "#fb8072", "co-member": "#b3de69" };

export async function render(view, _arg, query) {
  const params = { feature: query.get("feature") || "", model: query.get("model") || "",
    min_weight: query.get("min_weight") || "", limit: query.get("limit") || "" };
  const form = el("form", { class: "facets", method: "get", action: "/features" },
    el("label", {}, "feature (or any component)", el("input", { name: "feature", value: params.feature, placeholder: "fresid2/17" })),
    el("label", {}, "model", el("input", { name: "model", value: params.model, placeholder: "toy" })),
    el("label", {}, "min weight", el("input", { name: "min_weight", value: params.min_weight, size: 5 })),
    el("button", { type: "submit" }, "show"));
  const picker = el("details", { id: "feature-list", open: params.feature ? null : "" }, el("summary", {}, "SAE features"));
  view.replaceChildren(el("h1", {}, "Feature relations"), form, picker);
  setQuery(params);
  // the catalog's SAE features (of the model named, else all), most runs first: a click shows one's relations
  const listed = await api("features/list", { model: params.model });
  const link = (f) => el("a", { href: `/features?feature=${encodeURIComponent(f.feature)}&model=${encodeURIComponent(f.model)}` },
    f.feature);
  picker.append(listed.features.length
    ? table(listed.features, ["feature", "model", "layer", "runs", "relations"], { cell: (f, key) => (key === "feature" ? link(f) : undefined) })
    : el("p", { class: "muted" }, "No SAE features in this catalog."));
  if (!params.feature) {
    view.append(el("p", { class: "muted" }, "Pick a feature above, name one (or any component), or click one on a run page "
      + "and follow its relations link."));
    return;
  }
  const result = await api("features/related", params);
  const graph = el("div", { class: "graph", id: "graph", style: "height:50vh" });
  view.append(el("h2", {}, `relations of ${result.feature}`), graph, table(result.relations, Object.keys(result.relations[0] || { other: 1 })));
  const others = [...new Set(result.relations.map((r) => r.other))];
  const cy = cytoscape({
    container: graph,
    elements: [{ data: { id: result.feature, colour: "#ffd966" } }, ...others.map((o) => ({ data: { id: o, colour: "#eee" } })),
      ...result.relations.map((r, i) => ({ data: { id: `r${i}`, source: result.feature, target: r.other,
        colour: KIND_COLOURS[r.kind] || "#999", label: `${r.kind} ${Number(r.weight).toFixed(2)}`,
        width: 0.6 + 3 * Math.min(Math.abs(r.weight), 1) } }))],
    layout: { name: "concentric", concentric: (n) => (n.id() === result.feature ? 2 : 1), levelWidth: () => 1 },
    style: [{ selector: "node", style: { label: "data(id)", "background-color": "data(colour)", "border-width": 1,
      "font-size": 10, shape: "round-rectangle", width: 70, height: 22, "text-valign": "center" } },
    { selector: "edge", style: { width: "data(width)", "line-color": "data(colour)", label: "data(label)", "font-size": 8 } }],
  });
  window.cy = cy;
}
