"""The command line: --json is exact and the same on both stores; errors are one line, exit 1, nothing written."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from conftest import wipe_neo4j

from circuitdb import Catalog, Selection
from circuitdb.cli import main

EX = "examples/seqcont"


def cli(*args: str, store: str | None = None) -> Result:
    full = list(args) + (["--store", store] if store else [])
    return CliRunner().invoke(main, full, catch_exceptions=False)


def load_three(store: str) -> None:
    for task in ("numerals", "numwords", "months"):
        for threshold in ("0.9", "0.8"):
            result = cli(
                "import",
                "seqcont",
                f"{EX}/{task}_circuit_thres_{threshold}.json",
                "--model",
                "gpt2-small",
                "--task",
                task,
                "--threshold",
                threshold,
                store=store,
            )
            assert result.exit_code == 0, result.output


@pytest.fixture
def kuzu_store(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(workdir)
    url = f"kuzu:{workdir / 'c.kuzu'}"
    monkeypatch.setenv("CIRCUITDB_STORE", url)
    return url


QUERIES = [
    ["shared", "--task", "numerals", "--task", "numwords", "--task", "months", "--threshold", "0.8"],
    ["shared", "--task", "numerals", "--task", "months", "--threshold", "0.8", "--edges"],
    ["venn", "--task", "numerals", "--task", "numwords", "--task", "months", "--threshold", "0.8"],
    ["diff", "--task", "numerals", "--task", "months", "--threshold", "0.8"],
    ["similarity"],
    ["similarity", "--weighted"],
    ["ladder", "--model", "gpt2-small", "--task", "months"],
    ["runs"],
    ["query", "MATCH (c:Component) RETURN count(c) AS n"],
]


@pytest.mark.parametrize("args", QUERIES, ids=lambda a: "-".join(a[:2]))
def test_json_output_is_exact(kuzu_store: str, args: list[str]) -> None:
    load_three(kuzu_store)
    result = cli(*args, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    with Catalog(kuzu_store) as cat:
        if args[0] == "shared":
            result = cat.shared(
                Selection(tasks=tuple(args[2:-2:2] if "--edges" not in args else args[2:-3:2]), thresholds=(0.8,)),
                edges="--edges" in args,
            )
            assert data == result.to_dict()
        elif args[0] == "venn":
            assert sum(r["count"] for r in data["regions"]) == len(
                set().union(*(set(cat.run(r["id"]).components) for r in data["runs"]))
            )
        elif args[0] == "diff":
            assert {r["side"] for r in data["rows"]} == {"only_a", "only_b", "both"}
            assert data["a"]["task"] == "numerals" and data["b"]["task"] == "months"
        elif args[0] == "similarity":
            assert len(data["labels"]) == 6 and all(data["matrix"][i][i] == 1.0 for i in range(6))
        elif args[0] == "ladder":
            assert [r["threshold"] for r in data["thresholds"]] == [0.9, 0.8]
        elif args[0] == "runs":
            assert sorted(r["id"] for r in data["runs"]) == sorted(r.id for r in cat.runs())
            assert set(data["runs"][0]) >= {"id", "model", "task", "method", "threshold", "faithfulness", "n_nodes", "n_edges"}
        else:
            assert data == {"rows": [{"n": len({c for r in cat.runs() for c in cat.run(r.id).components})}]}


def one_line_error(result: Result, pattern: str) -> None:
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert re.search(pattern, lines[0]), lines[0]


def test_errors_are_one_line_and_write_nothing(kuzu_store: str, workdir: Path) -> None:
    load_three(kuzu_store)
    one_line_error(cli("shared", "--task", "nope"), "unknown task nope")
    one_line_error(cli("shared", "--task", "months", "--threshold", "0.5"), "no run matches")
    one_line_error(cli("shared", "--task", "months", "--threshold", "1.5"), r"threshold must be in \(0, 1\]")
    one_line_error(cli("diff", "--task", "months", "--threshold", "0.8"), "needs 2")
    one_line_error(cli("show", "ffffffff"), "matches 0 runs")
    one_line_error(cli("query", "CREATE (:Model {id: 'x'})"), "refused: `CREATE` is not a read query")
    one_line_error(cli("runs", "--store", "bolt://127.0.0.1:1"), "cannot reach Neo4j at bolt://127.0.0.1:1")
    one_line_error(cli("runs", "--store", f"kuzu:{workdir / 'missing.kuzu'}"), "no catalog at")
    bad = workdir / "bad.json"
    bad.write_text('{"heads": [[1, 2],\n [3, 4, 5]], "mlps": []}')
    before = cli("runs", "--json").output
    one_line_error(
        cli("import", "seqcont", str(bad), "--model", "gpt2-small", "--task", "x", "--threshold", "0.8"),
        r"bad.json:2: head entry \[3, 4, 5\]",
    )
    one_line_error(
        cli(
            "import", "seqcont", f"{EX}/months_circuit_thres_0.8.json", "--model", "gpt2-small", "--task", "x", "--threshold", "0"
        ),
        "threshold must be in",
    )
    assert cli("runs", "--json").output == before


def test_neo4j_store_through_the_cli_matches_kuzu(kuzu_store: str, neo4j_url: str) -> None:
    wipe_neo4j(neo4j_url)
    load_three(kuzu_store)
    load_three(neo4j_url)

    def stable(text: str) -> str:  # the two imports ran at different seconds
        return re.sub(r'"created_at": "[^"]*"', "", text)

    for args in QUERIES[:7]:
        assert stable(cli(*args, "--json").output) == stable(cli(*args, "--json", store=neo4j_url).output)


BAD_JOBS = [
    (["discover", "--model", "toy", "--task", "digits", "--threshold", "1.5"], r"threshold must be in \(0, 1\]"),
    (["discover", "--model", "toy", "--task", "digits", "--threshold", "0.8", "--edges", "bogus"], "unknown edge method"),
    (["discover", "--model", "toy", "--task", "digits", "--threshold", "0.8", "--method", "bogus"], "unknown method"),
    (["features", "discover", "--model", "toy", "--task", "digits", "--threshold", "0.8", "--sae", "resid2",
      "--min-edge", "-1"], "--min-edge must be >= 0"),
    (["sweep", "SWEEP"], "unknown ablation 'bogus'"),
    (["discover", "--model", "toy", "--task", "digits", "--threshold", "0.8", "--metric", "bogus"], "unknown --metric"),
    (["discover", "--model", "toy", "--task", "digits", "--threshold", "0.8", "--ablation", "zero", "--means",
      "per-template"], "--means per-template applies to --ablation mean"),
]


def test_bad_job_options_are_refused_before_torch_and_before_any_file(tmp_path: Path) -> None:
    """Each bad job is refused in a process that never imports torch, and no store file appears."""
    sweep = tmp_path / "bad.yaml"
    sweep.write_text("models: [toy]\ntasks: [digits]\nthresholds: [0.8]\nablation: bogus\n")
    cases = [[str(sweep) if a == "SWEEP" else a for a in args] + ["--store", f"kuzu:{tmp_path / 'c.kuzu'}"]
             for args, _ in BAD_JOBS]
    code = (
        "import json, sys\nfrom click.testing import CliRunner\nfrom circuitdb.cli import main\n"
        f"out = [CliRunner().invoke(main, args) for args in {cases!r}]\n"
        "print(json.dumps([[r.exit_code, r.stderr] for r in out] + ['torch' in sys.modules]))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    *results, torch_loaded = json.loads(done.stdout)
    for (code_, stderr), (_, pattern) in zip(results, BAD_JOBS):
        assert code_ == 1 and len(stderr.strip().splitlines()) == 1 and re.search(pattern, stderr), stderr
    assert torch_loaded is False
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml"]


def test_an_unknown_model_leaves_no_store_file(tmp_path: Path) -> None:
    result = cli("discover", "--model", "nosuch", "--task", "digits", "--threshold", "0.8",
                 store=f"kuzu:{tmp_path / 'c.kuzu'}")
    one_line_error(result, "unknown model 'nosuch'")
    assert list(tmp_path.iterdir()) == []
