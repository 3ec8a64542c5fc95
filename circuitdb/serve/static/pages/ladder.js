// Ladder: circuit size per threshold of one model x task, and whether each sits within the stricter circuit.
import { api, el, runLink, setQuery, table } from "../app.js";
import { ladderChart } from "../charts.js";

// model / task / method choosers that reload the page with the choice in its URL
export function selector(runs, params, path, optional = false) {
  const form = el("form", { class: "facets", method: "get", action: path });
  for (const key of ["model", "task", "method"]) {
    const values = [...new Set(runs.map((r) => r[key]))].sort();
    const select = el("select", { name: key, onchange: () => form.submit() },
      optional || key === "method" ? el("option", { value: "" }, "any") : null, values.map((v) => el("option", { value: v }, v)));
    select.value = [].concat(params[key] || [])[0] || (optional || key === "method" ? "" : values[0]);
    form.append(el("label", {}, key, select));
  }
  if (optional) {
    for (const key of ["edges", "weighted"]) {
      form.append(el("label", {}, key, el("input", { type: "checkbox", name: key, value: "1", checked: params[key] === "1",
        onchange: () => form.submit() })));
    }
  }
  return form;
}

export async function render(view, _arg, query) {
  const { runs } = await api("runs");
  const model = query.get("model") || (runs[0] && runs[0].model) || "";
  const task = query.get("task") || (runs.find((r) => r.model === model) || runs[0] || {}).task || "";
  // several methods on one model x task make a ladder ambiguous: the first run's method unless one is chosen
  const method = query.get("method") || ((runs.find((r) => r.model === model && r.task === task) || {}).method ?? "");
  const params = { model, task, method };
  view.replaceChildren(el("h1", {}, `Threshold ladder of ${model} x ${task}`), selector(runs, params, "/ladder"));
  setQuery(params);
  const result = await api("ladder", params);
  view.append(ladderChart(result.thresholds), table(result.thresholds,
    ["threshold", "run", "size", "faithfulness", "contains_stricter", "within_stricter", "members"],
    { cell: (r, key) => (key === "run" ? runLink(r.run, r.run.slice(0, 8)) : undefined) }));
}
