// Similarity: the Jaccard heatmap of a model x task's runs (or any selection); a cell opens the two runs in Compare.
import { api, el, setQuery } from "../app.js";
import { heatmap } from "../charts.js";
import { selector } from "./ladder.js";

export async function render(view, _arg, query) {
  const params = { model: query.getAll("model"), task: query.getAll("task"), method: query.getAll("method"),
    edges: query.get("edges") === "1" ? "1" : "", weighted: query.get("weighted") === "1" ? "1" : "" };
  const { runs } = await api("runs");
  view.replaceChildren(el("h1", {}, "Similarity"), selector(runs, params, "/similarity", true));
  setQuery(params);
  // the runs the choice names (several methods at one threshold included): the heatmap compares them all
  const chosen = runs.filter((r) => ["model", "task", "method"].every((key) => !params[key].length || params[key].includes(r[key])));
  if (!chosen.length) throw new Error("no runs match this choice");
  const result = await api("similarity", { run: chosen.map((r) => r.id), edges: params.edges, weighted: params.weighted });
  view.append(el("p", { class: "muted" }, `${params.weighted ? "weighted " : ""}Jaccard of ${params.edges ? "edges" : "components"} `
    + `(${result.identity}); a cell opens the two runs in Compare`),
  heatmap(result.matrix, result.labels, (i, j) => `/compare?run=${result.run_ids[i]}&run=${result.run_ids[j]}`));
}
