"""Load times of `circuitdb serve`'s pages in headless Chromium (Debian's, through Selenium): the time from asking a URL
to the page having drawn, best of --repeat, and the server's start (process launched to first answer) beside the
CLI's own start (`circuitdb --version`) and a bare `python -c pass`, measured in the same run. Without --store it
builds a catalog holding GPT-2 small's full EAP-IG graph (32,491 edges, all stored) and an imported EAP-IG score file
(32,491 edges scored, 300 in the circuit) beside the test fixture's runs; with --store (e.g. the demo's) it times
that catalog's pages.

    .venv/bin/python benchmarks/serve.py [--store kuzu:demo/circuitdb.kuzu] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from test_serve import free_port, full_graph, score_file  # noqa: E402

from circuitdb import Catalog  # noqa: E402


def big_catalog(folder: Path) -> str:
    from fixtures import catalog_runs

    url = f"kuzu:{folder / 'catalog.kuzu'}"
    (folder / "full.json").write_text(json.dumps(full_graph()))
    with Catalog(url) as catalog:
        catalog.add(catalog_runs())
        catalog.import_file("eap-ig", folder / "full.json", model="gpt2-small", task="ioi")
        (folder / "scores.json").write_text(json.dumps(score_file()))
        catalog.import_file("eap-ig", folder / "scores.json", model="gpt2-small", task="greater-than")
    return url


def pages(url: str) -> tuple[list[tuple[str, str]], object]:
    """(path, page) of every page, on the catalog's largest run, a run with a score list and its first runs; and
    the largest run."""
    with Catalog(url, read_only=True) as catalog:
        runs = list(catalog.runs())
        scored = next((r for r in sorted(runs, key=lambda r: -r.n_edges) if catalog.subgraph(r.id, top=1).scored_edges),
                      None)  # a run shown from its score list (an imported score file), the largest circuit first
    biggest = max(runs, key=lambda r: r.n_edges)
    first = runs[0]
    same = [r for r in runs if (r.model, r.task) == (first.model, first.task)]
    out = [("/runs", "runs"), (f"/run/{biggest.id}", "run"), (f"/run/{first.id}", "run"),
           ("/compare?" + "&".join(f"run={i}" for i in list(dict.fromkeys(r.id for r in same + runs))[:3]), "compare"),
           (f"/similarity?model={first.model}&task={first.task}", "similarity"),
           (f"/ladder?model={first.model}&task={first.task}&method={first.method}", "ladder"), ("/steering", "steering")]
    if scored:
        out.insert(2, (f"/run/{scored.id}", "run"))
    return out, biggest


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--store")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    os.environ["SE_OFFLINE"] = "true"  # Debian's chromium and driver, nothing fetched
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    with tempfile.TemporaryDirectory() as folder:
        url = args.store or big_catalog(Path(folder))
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        begin = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], cwd=ROOT, env=env, check=True, capture_output=True)
        bare = time.perf_counter() - begin
        begin = time.perf_counter()
        subprocess.run([sys.executable, "-m", "circuitdb", "--version"], cwd=ROOT, env=env, check=True, capture_output=True)
        baseline = time.perf_counter() - begin
        port = free_port()
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "circuitdb", "serve", "--store", url, "--port", str(port)],
                                cwd=ROOT, env=env)
        base = f"http://127.0.0.1:{port}"
        while True:
            try:
                urllib.request.urlopen(base + "/api/about", timeout=5).read()
                break
            except OSError:
                time.sleep(0.02)
        started = time.perf_counter() - start
        print(f"server start: {started:.2f} s (process launched to first answer); `circuitdb --version` {baseline:.2f} s "
              f"(x{started / baseline:.2f}); `python -c pass` {bare:.2f} s")
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
            options.add_argument(flag)
        driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
        try:
            found, biggest = pages(url)
            print(f"catalog: {url}; largest run {biggest.id} ({biggest.n_edges:,} edges)")
            for path, page in found:
                times = []
                for _ in range(args.repeat):
                    driver.get("about:blank")
                    begin = time.perf_counter()
                    driver.get(base + path)
                    drawn = f"return document.body.dataset.loaded === '{page}'"
                    WebDriverWait(driver, 60).until(lambda d, drawn=drawn: d.execute_script(drawn))
                    times.append(time.perf_counter() - begin)
                error = driver.find_elements("css selector", ".error")
                note = f"  ({error[0].text})" if error else ""
                print(f"{min(times):6.2f} s  {path}{note}")
        finally:
            driver.quit()
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    main()
