// The router and the helpers every page uses. Each page is a module exporting `render(view, arg, query)`; it asks the
// JSON API (the CLI's --json answers) and draws them. The URL holds every choice, so a copied URL restores the view.
const PAGES = ["runs", "run", "compare", "ladder", "similarity", "features", "steering"];

export async function api(path, params = {}) {
  const url = new URL(`/api/${path}`, location.origin);
  for (const [key, value] of Object.entries(params)) {
    for (const v of [].concat(value)) if (v !== undefined && v !== null && v !== "") url.searchParams.append(key, v);
  }
  const response = await fetch(url);
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== undefined && value !== null && value !== false) node.setAttribute(key, value === true ? "" : value);
  }
  node.append(...children.flat().filter((c) => c !== undefined && c !== null));
  return node;
}

export function fmt(value) {
  if (value === null || value === undefined || value === "") return "-";
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : value.toPrecision(4);
  if (Array.isArray(value)) return value.join(", ");
  return String(value);
}

// A table of `rows` with `columns` ([key, title] or key); `cell(row, key)` may return a node; sortable by header click.
export function table(rows, columns, { cell, sort, onSort } = {}) {
  const cols = columns.map((c) => (Array.isArray(c) ? c : [c, c]));
  const head = el("tr", {}, cols.map(([key, title]) => {
    const classes = ["sortable", sort && sort.key === key ? "sorted" : "", sort && sort.key === key && sort.desc ? "desc" : ""];
    return el("th", { class: classes.join(" ").trim(), "data-key": key,
      onclick: () => onSort && onSort({ key, desc: sort && sort.key === key ? !sort.desc : false }) }, title);
  }));
  const body = rows.map((row) => el("tr", {}, cols.map(([key]) => {
    const value = cell ? cell(row, key) : undefined;
    const content = value instanceof Node ? value : fmt(value === undefined ? row[key] : value);
    return el("td", { class: typeof row[key] === "number" ? "num" : "" }, content);
  })));
  return el("table", {}, el("thead", {}, head), el("tbody", {}, body));
}

export function sortRows(rows, sort) {
  if (!sort || !sort.key) return rows;
  const sign = sort.desc ? -1 : 1;
  return [...rows].sort((a, b) => {
    const x = a[sort.key], y = b[sort.key];
    if (x === y) return 0;
    if (x === null || x === undefined) return 1;
    if (y === null || y === undefined) return -1;
    return (x < y ? -1 : 1) * sign;
  });
}

// Replace the URL's query with `params` (arrays repeat a key), without reloading: the URL always restores the view.
export function setQuery(params) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    for (const v of [].concat(value)) if (v !== undefined && v !== null && v !== "" && v !== false) query.append(key, v);
  }
  const text = query.toString();
  history.replaceState(null, "", location.pathname + (text ? `?${text}` : ""));
}

export const runLink = (id, text, query = "") => el("a", { href: `/run/${encodeURIComponent(id)}${query}` }, text || id);

export function label(run) {
  const threshold = run.threshold === null ? "" : `@${run.threshold}`;
  return `${run.model}/${run.task}${threshold} (${run.method})${run.cut ? ` [${run.cut}]` : ""}`;
}

async function route() {
  const [, page = "runs", arg] = location.pathname.split("/");
  const view = document.getElementById("view");
  const name = PAGES.includes(page) ? page : "runs";
  document.body.dataset.page = name;
  try {
    const module = await import(`./pages/${name}.js`);
    await module.render(view, arg ? decodeURIComponent(arg) : "", new URLSearchParams(location.search));
  } catch (error) {
    view.append(el("p", { class: "error" }, String(error.message || error)));
  }
  document.body.dataset.loaded = name;
}

api("about").then((about) => { document.getElementById("store").textContent = `${about.store} (read-only)`; });
route();
