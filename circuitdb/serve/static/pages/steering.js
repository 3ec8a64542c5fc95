// Steering: the stored steering vectors; one vector's decomposition into SAE features and the features it shifts.
import { api, el, setQuery, table } from "../app.js";

function bars(rows, key, value) {
  const most = Math.max(1e-12, ...rows.map((r) => Math.abs(r[value])));
  return el("div", { class: "bars" }, rows.map((r) => el("div", {},
    el("span", { style: `display:inline-block;width:${Math.round(200 * Math.abs(r[value]) / most)}px;height:10px;`
      + `background:${r[value] < 0 ? "#fb8072" : "#80b1d3"};margin-right:6px` }),
    `${r[key]} ${Number(r[value]).toFixed(3)}`)));
}

export async function render(view, _arg, query) {
  const name = query.get("name") || "";
  const model = query.get("model") || "";
  setQuery({ name, model });
  const { vectors } = await api("steer/list");
  view.replaceChildren(el("h1", {}, "Steering vectors"), table(vectors, ["id", "model", "name", "layer", "description", "norm"], {
    cell: (v, key) => (key === "id" ? el("a", { href: `/steering?name=${encodeURIComponent(v.name)}&model=${encodeURIComponent(v.model)}` }, v.id)
      : undefined) }));
  if (!vectors.length) view.append(el("p", { class: "muted" }, "No steering vectors (`circuitdb steer build`)."));
  if (!name) return;
  const v = await api("steer/show", { name, model });
  view.append(el("h2", {}, `${v.id}: layer ${v.layer}, norm ${v.norm.toFixed(3)} - ${v.description}`),
    el("h2", {}, "decomposition into SAE features"), bars(v.decomposition, "feature", "coef"), table(v.decomposition,
      Object.keys(v.decomposition[0] || { feature: 1 })),
    el("h2", {}, "features it shifts"), table(v.shifts, Object.keys(v.shifts[0] || { feature: 1 })));
}
