"""`circuitdb serve` in a real browser: Debian's Chromium, headless, driven by Selenium through Debian's chromedriver
(nothing downloads a browser), against a server this module starts on a catalog it builds: the fixture runs, a
32,491-edge EAP-IG run (GPT-2 small's full graph), relations and a steering vector. One server and one browser for
the module. Screenshots of every page are written to screenshots/ (not committed), with the measured load times."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner
from fixtures import catalog_runs

from circuitdb import Catalog, CircuitdbError, Selection
from circuitdb.cli import main
from circuitdb.domain import Model, Relation, Run, SteeringVector, Task, graph_edges

ROOT = Path(__file__).parent.parent
SHOTS = ROOT / "screenshots"
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
TIMES: dict[str, float] = {}


def full_graph() -> dict:
    """GPT-2 small's full EAP-IG graph as Graph.to_json writes it, every one of its 32,491 edges in the graph."""
    import random

    rng = random.Random(0)
    edges = {f"{s}->{r}" + (f"<{x}>" if x else ""): {"score": rng.gauss(0, 1), "in_graph": True}
             for s, r, x in graph_edges(12, 12)}
    nodes = {n: {"in_graph": True} for n in ["input", *dict.fromkeys(r for _, r, _ in graph_edges(12, 12))]}
    return {"cfg": {"n_layers": 12, "n_heads": 12, "parallel_attn_mlp": False, "d_model": 768}, "nodes": nodes,
            "edges": edges}


def score_file(in_graph: int = 300) -> dict:
    """An imported EAP-IG score file of GPT-2 small: every one of its 32,491 edges scored, `in_graph` of them (picked
    at random, not the strongest) in the graph, with their ends; a score on some nodes."""
    import random

    graph = full_graph()
    rng = random.Random(1)
    names = list(graph["edges"])
    chosen = set(rng.sample(names, in_graph))
    for name, edge in graph["edges"].items():
        edge["in_graph"] = name in chosen
    kept = {end for name in chosen for end in name.split("<")[0].split("->")}
    graph["nodes"] = {n: {"in_graph": n in kept, "score": rng.gauss(0, 1) if n.startswith("m") else None}
                      for n in graph["nodes"]}
    return graph


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("serve")
    url = f"kuzu:{folder / 'catalog.kuzu'}"
    (folder / "full.json").write_text(json.dumps(full_graph()))
    with Catalog(url) as catalog:
        catalog.add(catalog_runs())
        (big,) = catalog.import_file("eap-ig", folder / "full.json", model="gpt2-small", task="ioi")
        (folder / "scores.json").write_text(json.dumps(score_file()))
        (scored,) = catalog.import_file("eap-ig", folder / "scores.json", model="gpt2-small", task="greater-than")
        catalog.add([Run(Model("gpt2-small", 12, 12, 768), Task("sva"), "sae-attribution", 0.5,
                         components={"fresid9/17": 0.9, "fresid9/4": 0.3, "a9.h1": 0.5})])
        catalog.add_relations([Relation("gpt2-small", "a9.h1", "gpt2-small", "a7.h11", "cosine", 0.8, "test"),
                               Relation("gpt2-small", "a9.h1", "gpt2-small", "a4.h4", "match", 0.6, "test"),
                               Relation("gpt2-small", "fresid9/17", "gpt2-small", "fresid9/4", "cosine", 0.7, "test")])
        vector = SteeringVector("gpt2-small", "days-minus-months", 3, [0.01] * 768, "days - months")
        catalog.add_steering(vector, "DECOMPOSES_INTO", [{"name": "a9.h1", "coef": 0.5, "method": "omp"},
                                                         {"name": "m9", "coef": -0.25, "method": "omp"}])
    return {"url": url, "big": big.id, "scored": scored.id}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(base: str, path: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(base + path, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


@pytest.fixture(scope="module")
def server(store: dict) -> Iterator[str]:
    """`circuitdb serve` on a free port, as a user starts it; the time to its first answer is recorded."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "circuitdb", "serve", "--store", store["url"], "--port", str(port)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        while True:
            try:
                get(base, "/api/about")
                break
            except OSError:
                if proc.poll() is not None or time.perf_counter() - start > 30:
                    raise AssertionError(f"the server did not start: {proc.stdout.read()}") from None
                time.sleep(0.05)
        TIMES["server start (s)"] = time.perf_counter() - start
        yield base
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="module")
def browser(server: str) -> Iterator:
    if not (CHROMIUM and DRIVER):
        if os.environ.get("CI"):
            pytest.fail("the browser tests need Debian's chromium and chromium-driver (make system-deps)")
        pytest.skip("no chromium/chromedriver: `make system-deps` installs Debian's")
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager may not fetch a browser or driver: Debian's are given below
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000",
                 "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(DRIVER))
    driver.requests = []
    SHOTS.mkdir(exist_ok=True)
    yield driver
    driver.quit()
    (SHOTS / "times.json").write_text(json.dumps(TIMES, indent=2))


def visit(driver, base: str, path: str, page: str, shot: str | None = None) -> float:
    """Open a page and wait until it has drawn; its load time in seconds (the URL asked to the page drawn)."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver.execute_script("document.body && delete document.body.dataset.loaded")
    start = time.perf_counter()
    driver.get(base + path)
    WebDriverWait(driver, 20).until(lambda d: d.execute_script("return document.body.dataset.loaded") == page)
    seconds = time.perf_counter() - start
    errors = driver.find_elements("css selector", ".error")
    assert not errors, f"{path}: {errors[0].text}"
    record_requests(driver)
    if shot:
        driver.save_screenshot(str(SHOTS / f"{shot}.png"))
        TIMES[f"{shot}: {path} (s)"] = seconds
    return seconds


def record_requests(driver) -> None:
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            driver.requests.append(message["params"]["request"]["url"])


def wait_for(driver, script: str, timeout: float = 20):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(lambda d: d.execute_script(script))


def slide_to(driver, position: int) -> int:
    """Move the run page's top-N slider and wait for the redrawn graph; the number of edges it now shows."""
    driver.execute_script(f"const s = document.getElementById('top'); s.value = {position}; "
                          "s.dispatchEvent(new Event('input'))")
    return int(wait_for(driver, "const g = document.getElementById('graph');"
                                "return !g.dataset.loading && g.dataset.edges !== '200' && g.dataset.edges"))


def cli_json(*args: str) -> dict:
    result = CliRunner().invoke(main, [*args, "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_the_api_answers_what_the_cli_prints_and_a_writer_gets_in_beside_it(server: str, store: dict) -> None:
    assert get(server, "/api/runs")[1] == cli_json("runs", "--store", store["url"])
    big = store["big"]
    assert get(server, f"/api/subgraph/{big}?top=20")[1] == cli_json("subgraph", big, "--top", "20", "--store", store["url"])
    assert (get(server, f"/api/component/{big}/a9.h1?top=5")[1] ==
            cli_json("component", big, "a9.h1", "--top", "5", "--store", store["url"]))
    status, body = get(server, "/api/subgraph/nosuchrun")
    assert status == 400 and "nosuchrun" in body["error"]
    # the server holds the embedded file only while it answers: a writer gets in between two answers
    extra = catalog_runs(seed=1)[0]
    with Catalog(store["url"], wait=5) as catalog:
        catalog.add(extra)
    assert extra.id in {r["id"] for r in get(server, "/api/runs")[1]["runs"]}
    with Catalog(store["url"], wait=5) as catalog:
        catalog.delete(extra.id)


def test_the_server_starts_without_pandas(store: dict) -> None:
    """Its start (the app built, the catalog opened and asked for its runs) loads no pandas, numpy or pyarrow."""
    code = (f"import sys; from circuitdb.serve import create_app; create_app({store['url']!r}); "
            "print([m for m in ('pandas', 'numpy', 'pyarrow', 'rich', 'torch') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_subgraph_is_the_strongest_edges_cut_in_the_store(store: dict) -> None:
    with Catalog(store["url"], read_only=True) as catalog:
        sub = catalog.subgraph(store["big"], top=200)
        every = sorted((abs(e.weight) for e in catalog.run(store["big"]).edges), reverse=True)
    assert sub.run.n_edges == 32491 and len(sub.edges) == 200
    assert [abs(e["weight"]) for e in sub.edges] == every[:200]
    assert {e[k] for e in sub.edges for k in ("sender", "receiver")} <= {n["name"] for n in sub.nodes}


def test_a_score_files_subgraph_is_its_top_scored_edges_marked_in_the_circuit_or_not(store: dict) -> None:
    graph = score_file()
    kept = {n for n, e in graph["edges"].items() if e["in_graph"]}
    with Catalog(store["url"], read_only=True) as catalog:
        sub = catalog.subgraph(store["scored"], top=200)
        more = catalog.subgraph(store["scored"], top=2000, min_weight=0.5)
    every = sorted((abs(e["score"]) for e in graph["edges"].values()), reverse=True)
    assert sub.run.n_edges == 300 and sub.scored_edges == 32491 and len(sub.edges) == 200
    assert [abs(e["weight"]) for e in sub.edges] == pytest.approx(every[:200])
    name = lambda e: f"{e['sender']}->{e['receiver']}" + (f"<{e['input']}>" if e["input"] else "")  # noqa: E731
    assert all(e["in_circuit"] == (name(e) in kept) for e in sub.edges)
    assert 0 < sum(e["in_circuit"] for e in sub.edges) < 200  # the circuit's edges among others only scored
    assert {e[k] for e in sub.edges for k in ("sender", "receiver")} <= {n["name"] for n in sub.nodes}
    nodes = {n["name"]: n for n in sub.nodes}
    assert all(n["score"] == pytest.approx(graph["nodes"][n["name"]]["score"]) for n in nodes.values()
               if n["name"].startswith("m"))
    assert all(n["in_circuit"] == graph["nodes"][n["name"]]["in_graph"] for n in nodes.values())
    assert len(more.edges) == 2000 > 300 and all(abs(e["weight"]) >= 0.5 for e in more.edges)
    assert sum(e["in_circuit"] for e in more.edges) <= 300
    # the CLI prints the same
    assert cli_json("subgraph", store["scored"], "--top", "20", "--store", store["url"])["edges"] == \
        json.loads(json.dumps(catalog_subgraph(store, 20)["edges"]))


def catalog_subgraph(store: dict, top: int) -> dict:
    with Catalog(store["url"], read_only=True) as catalog:
        return catalog.subgraph(store["scored"], top=top).to_dict()


def test_the_runs_page_lists_sorts_and_filters(browser, server: str) -> None:
    visit(browser, server, "/runs", "runs", "runs")
    total = len(get(server, "/api/runs")[1]["runs"])
    assert len(browser.find_elements("css selector", "tbody tr")) == total
    browser.find_element("css selector", "th[data-key=n_edges]").click()
    browser.find_element("css selector", "th[data-key=n_edges]").click()  # descending: the big run first
    first = browser.find_element("css selector", "tbody tr td:nth-child(2) a")
    assert "sort=n_edges" in browser.current_url and "desc=1" in browser.current_url
    assert first.get_attribute("href").endswith("/run/" + get(server, "/api/runs?task=ioi")[1]["runs"][0]["id"])
    visit(browser, server, "/runs?task=days&method=prune", "runs")  # the URL restores the facets
    rows = browser.find_elements("css selector", "tbody tr")
    assert len(rows) == 3 and all("days" in r.text and "prune" in r.text for r in rows)


def test_the_run_page_draws_the_top_edges_a_node_panel_and_a_slider(browser, server: str, store: dict) -> None:
    big = store["big"]
    visit(browser, server, f"/run/{big}", "run", "run_32491_edges")
    assert wait_for(browser, "return document.getElementById('graph').dataset.edges") == "200"
    assert browser.execute_script("return cy.edges().length") == 200
    # a click on a node (at its place on the canvas) opens its panel
    from selenium.webdriver.common.action_chains import ActionChains

    node = browser.execute_script("const n = cy.nodes().filter(n => n.id() === 'a9.h1')[0] || cy.nodes()[1];"
                                  "cy.zoom(1.5); cy.center(n); return n.id()")
    canvas = browser.find_element("id", "graph")
    box = browser.execute_script("const p = cy.getElementById(arguments[0]).renderedPosition(); return [p.x, p.y]", node)
    size = canvas.size
    ActionChains(browser).move_to_element_with_offset(canvas, box[0] - size["width"] / 2,
                                                      box[1] - size["height"] / 2).click().perform()
    assert wait_for(browser, "return document.getElementById('panel').dataset.node") == node
    detail = get(server, f"/api/component/{big}/{node}")[1]
    panel = browser.find_element("id", "panel").text
    assert detail["edges"][0]["other"] in panel and f"node={node}" in browser.current_url
    assert len(detail["runs"]) >= 1
    browser.save_screenshot(str(SHOTS / "run_node_panel.png"))
    # the slider asks the server for more edges
    start = time.perf_counter()
    shown = slide_to(browser, 140)
    TIMES[f"slider to {shown} edges (s)"] = time.perf_counter() - start
    assert 200 < shown <= 32491 and browser.execute_script("return cy.edges().length") == shown
    assert f"top={shown}" in browser.current_url
    # the URL restores the view: the same number of edges and the node's panel
    visit(browser, server, f"/run/{big}?top=50&node=a9.h1", "run")
    assert wait_for(browser, "return document.getElementById('panel').dataset.node") == "a9.h1"
    assert browser.execute_script("return cy.edges().length") == 50


def test_a_score_files_run_page_opens_with_200_edges_and_the_slider_reaches_past_its_circuit(browser, server: str,
                                                                                           store: dict) -> None:
    scored = store["scored"]
    visit(browser, server, f"/run/{scored}", "run", "run_score_file")
    assert wait_for(browser, "return document.getElementById('graph').dataset.edges") == "200"
    dashed = browser.execute_script("return cy.edges().filter(e => e.data('line') === 'dashed').length")
    assert 0 < dashed < 200  # the scored edges outside the circuit, dashed among the circuit's own
    assert "32491 scored edges" in browser.find_element("id", "edge-count").text
    start = time.perf_counter()
    shown = slide_to(browser, 150)
    TIMES[f"score file: slider to {shown} edges (s)"] = time.perf_counter() - start
    assert 300 < shown <= 32491 and browser.execute_script("return cy.edges().length") == shown


def test_the_features_page_lists_the_catalogs_sae_features_to_pick_from(browser, server: str, store: dict) -> None:
    listed = get(server, "/api/features/list")[1]
    assert listed == cli_json("features", "list", "--store", store["url"])
    assert [(f["feature"], f["runs"], f["relations"]) for f in listed["features"]] == [("fresid9/17", 1, 1),
                                                                                      ("fresid9/4", 1, 1)]
    visit(browser, server, "/features", "features", "features_list")
    links = browser.find_elements("css selector", "#feature-list tbody tr td a")
    assert [a.text for a in links] == ["fresid9/17", "fresid9/4"]
    links[0].click()
    wait_for(browser, "return document.body.dataset.loaded === 'features' && location.search.includes('feature=')")
    headings = wait_for(browser, "const t = [...document.querySelectorAll('h2')].map(h => h.textContent).join('|');"
                                 "return t.includes('relations of') && t")
    assert "fresid9/17" in headings
    assert "gpt2-small/fresid9/4" in browser.execute_script("return cy.nodes().map(n => n.id())")  # its cosine pair


def test_the_compare_page_colours_nodes_by_the_runs_that_include_them(browser, server: str, store: dict) -> None:
    with Catalog(store["url"], read_only=True) as catalog:
        runs = [catalog.select(Selection(tasks=(t,), thresholds=(0.8,), methods=("prune",)))[0] for t in ("days", "months")]
        runs.append(catalog.select(Selection(tasks=("days",), thresholds=(0.8,), methods=("eap",)))[0])
        members, _ = catalog.circuits(runs)
    path = "/compare?" + "&".join(f"run={r.id}" for r in runs)
    order = [r["id"] for r in get(server, "/api/venn?" + path.split("?")[1])[1]["runs"]]  # bit i = the page's run i
    expected: dict[str, int] = {}
    for m in members:
        expected[m["component"]] = expected.get(m["component"], 0) | 1 << order.index(m["run"])
    visit(browser, server, path, "compare", "compare")
    shown = dict(browser.execute_script("return cy.nodes().map(n => [n.id(), n.data('region')])"))
    assert shown and all(shown[n] == expected[n] for n in shown)
    assert set(shown) == set(expected)  # small runs: every member is drawn
    counts = {int(t.get_attribute("data-region")): int(t.text)
              for t in browser.find_elements("css selector", "#venn text[data-region]")}
    assert counts == {region: sum(1 for v in expected.values() if v == region) for region in range(1, 8)}
    assert browser.find_elements("css selector", "#diff tbody tr")


@pytest.mark.parametrize(("path", "page", "check"), [
    ("/similarity?model=gpt2-small&task=days", "similarity", "#heatmap rect"),
    ("/ladder?model=gpt2-small&task=days&method=prune", "ladder", "#ladder-chart rect"),
    ("/features?feature=a9.h1&model=gpt2-small", "features", "tbody tr"),
    ("/steering?name=days-minus-months&model=gpt2-small", "steering", "tbody tr"),
])
def test_every_other_page_renders(browser, server: str, path: str, page: str, check: str) -> None:
    visit(browser, server, path, page, page)
    assert browser.find_elements("css selector", check)


def test_no_request_leaves_this_machine(browser, server: str) -> None:
    visit(browser, server, "/runs", "runs")
    assert len(browser.requests) > 20
    outside = [u for u in browser.requests if not (urlsplit(u).hostname == "127.0.0.1" or u.startswith("data:"))]
    assert not outside, outside


def test_subgraph_and_component_agree_on_both_stores(catalog: Catalog) -> None:
    """The queries the pages ask, on each backend: the strongest edges cut in the store, a component's edges and runs."""
    runs = catalog_runs()[:3]
    catalog.add(runs)
    run = runs[0]
    sub = catalog.subgraph(run.id, top=5)
    strongest = sorted(run.edges, key=lambda e: -abs(e.weight))[:5]
    assert [(e["sender"], e["receiver"], e["input"], e["weight"]) for e in sub.edges] == [
        (e.sender, e.receiver, e.input, e.weight) for e in strongest]
    assert sub.to_dict()["total_edges"] == len(run.edges)
    ends = {e[k] for e in sub.edges for k in ("sender", "receiver")}
    assert ends <= {n["name"] for n in sub.nodes} and all(n["score"] == run.components[n["name"]] for n in sub.nodes)
    detail = catalog.component(run.id, "a9.h1").to_dict()
    assert detail["score"] == run.components["a9.h1"]
    touching = [e for e in run.edges if "a9.h1" in (e.sender, e.receiver)]
    assert sorted(abs(e["weight"]) for e in detail["edges"]) == sorted(abs(e.weight) for e in touching)
    assert {r["run"] for r in detail["runs"]} == {r.id for r in runs if "a9.h1" in r.components}
    with pytest.raises(CircuitdbError, match="not in run"):
        catalog.component(run.id, "a0.h0" if "a0.h0" not in run.components else "a11.h11")
