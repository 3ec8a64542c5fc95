// Runs: a faceted, sortable, filterable table of every run; each links to its run page; ticked runs open in Compare.
import { api, el, label, runLink, setQuery, sortRows, table } from "../app.js";

const FACETS = [["model", "model"], ["task", "task"], ["method", "method"], ["threshold", "threshold"],
  ["ablation", "intervention"]];
const COLUMNS = [["id", "run"], ["model", "model"], ["task", "task"], ["method", "method"], ["threshold", "threshold"],
  ["ablation", "intervention"], ["faithfulness", "faithfulness"], ["completeness", "completeness"], ["cpr", "CPR"],
  ["n_nodes", "nodes"], ["n_edges", "edges"], ["cut", "cut"]];

export async function render(view, _arg, query) {
  const { runs } = await api("runs");
  const state = {
    facets: Object.fromEntries(FACETS.map(([key]) => [key, query.get(key) || ""])),
    text: query.get("q") || "",
    sort: { key: query.get("sort") || "", desc: query.get("desc") === "1" },
    picked: new Set(query.getAll("pick")),
  };
  const heading = el("h1");
  const compare = el("a", { id: "compare-picked", href: "#" }, "Compare ticked runs");
  const facetBar = el("div", { class: "facets" });
  const holder = el("div");
  view.replaceChildren(heading, facetBar, holder);

  const values = (key) => [...new Set(runs.map((r) => r[key]))].filter((v) => v !== null).sort((a, b) => (a < b ? -1 : 1));
  for (const [key, title] of FACETS) {
    const select = el("select", { name: key, onchange: (e) => { state.facets[key] = e.target.value; draw(); } },
      el("option", { value: "" }, "any"), values(key).map((v) => el("option", { value: v }, String(v))));
    select.value = state.facets[key];
    facetBar.append(el("label", {}, title, select));
  }
  const search = el("input", { type: "search", name: "q", placeholder: "filter: any text", value: state.text,
    oninput: (e) => { state.text = e.target.value; draw(); } });
  facetBar.append(el("label", {}, "filter", search), compare);

  function shown() {
    const text = state.text.toLowerCase();
    return runs.filter((r) => FACETS.every(([key]) => !state.facets[key] || String(r[key]) === state.facets[key]))
      .filter((r) => !text || Object.values(r).some((v) => String(v).toLowerCase().includes(text)));
  }

  function draw() {
    const rows = sortRows(shown(), state.sort);
    heading.textContent = `${rows.length} of ${runs.length} runs`;
    const picked = [...state.picked];
    compare.setAttribute("href", `/compare?${picked.map((id) => `run=${encodeURIComponent(id)}`).join("&")}`);
    compare.textContent = `Compare ticked runs (${picked.length})`;
    setQuery({ ...state.facets, q: state.text, sort: state.sort.key, desc: state.sort.desc ? "1" : "", pick: picked });
    holder.replaceChildren(table(rows, [["pick", ""], ...COLUMNS], {
      sort: state.sort,
      onSort: (sort) => { state.sort = sort; draw(); },
      cell: (row, key) => {
        if (key === "id") return runLink(row.id, row.id.slice(0, 8));
        if (key === "pick") {
          return el("input", { type: "checkbox", title: label(row), "data-run": row.id, checked: state.picked.has(row.id),
            onchange: (e) => { e.target.checked ? state.picked.add(row.id) : state.picked.delete(row.id); draw(); } });
        }
        return undefined;
      },
    }));
  }
  draw();
}
