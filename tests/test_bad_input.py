"""Bad input, one table: every case is refused with one specific line on stderr (no traceback, no exception class as
the message), a non-zero exit and nothing written: an existing catalog keeps its bytes, a new store path stays
uncreated, an empty file stays empty. Options are checked before a stored run could be skipped and before torch loads.
The Python API refuses the same input. A busy embedded file names the process that holds it (real processes)."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner

from circuitdb import Catalog, CircuitdbError, Selection
from circuitdb.cli import main
from circuitdb.domain import Model, Run, SteeringVector, Task
from circuitdb.ingest.native import dumps
from circuitdb.store.engine import engine

EXAMPLES = Path(__file__).parent.parent / "examples"
SHAPED = Model("shaped", 2, 2, 8)  # a model whose shape only the catalog knows (not circuitdb's table of shapes)


def stored_toy_run() -> Run:
    """The run `discover --model toy --task digits --threshold 0.9` (prune, mean) would write: a re-run skips it."""
    return Run(Model("toy"), Task("digits"), "prune", 0.9, components={"input": None, "logits": None})


def native_doc(**changes: object) -> str:
    """A circuitdb export of one valid run, with `changes` to its fields (its id dropped so only they are wrong)."""
    run = Run(Model("gpt2-small", 12, 12, 768), Task("months"), "prune", 0.8, components={"a0.h1": 0.5, "m0": None},
              faithfulness=0.81)
    doc = json.loads(dumps([run]))
    doc["runs"][0].pop("id")
    doc["runs"][0].update(changes)
    return json.dumps(doc, allow_nan=True)


def eapig_doc(cfg: bool = True, node: str | None = None, edge: str | None = None) -> str:
    """The shipped EAP-IG example, optionally without its cfg and with one more in-graph node or edge."""
    doc = json.loads((EXAMPLES / "eap-ig" / "ioi_graph.json").read_text())
    if not cfg:
        doc.pop("cfg")
    if node:
        doc["nodes"][node] = {"in_graph": True, "score": 0.5}
    if edge:
        doc["edges"][edge] = {"in_graph": True, "score": 0.5}
    return json.dumps(doc, indent=1)


SEQCONT = '{"heads": [[1, 2]], "mlps": [0]}'
SWEEP = "models: [toy]\ntasks: [digits]\nthresholds: [0.9]\n"

# files the rows name as {d}/NAME; str is written as UTF-8, bytes as they are
FILES: dict[str, str | bytes] = {
    "ok.json": SEQCONT,
    "binary.json": b"\xff\xfe\x00\x01\x00binary",
    "latin1.json": '{"heads": [[1, 2]], "mlps": [], "note": "café"}'.encode("latin-1"),
    "deep.json": "[" * 100_000 + "]" * 100_000,
    "bigint.json": '{"heads": [[1, 99999999999999999999999]], "mlps": []}',
    "digits.json": '{"heads": [[1, ' + "9" * 5000 + "]]}",
    "node_outside.json": eapig_doc(node="a20.h1"),
    "edge_outside.json": eapig_doc(edge="a0.h1->a13.h0<v>"),
    "head_outside.json": eapig_doc(edge="a0.h1->a3.h15<q>"),
    "shaped.json": eapig_doc(cfg=False, node="a5.h0"),
    "nan.json": native_doc(faithfulness=math.nan),
    "inf.json": native_doc(faithfulness=math.inf),
    "params.json": native_doc(params="abc"),
    "created.json": native_doc(created_at=5),
    "seed.json": native_doc(seed=2**70),
    "blank_task.json": native_doc(task={"name": " "}),
    "nested.yaml": SWEEP + 'nested: "abc"\n',
    "store.yaml": SWEEP + "store: 5\n",
    "seed.yaml": SWEEP + "seed: abc\n",
    "robust.yaml": SWEEP + "robust: -1\n",
    "ig.yaml": SWEEP + "methods: [eap-ig]\nig-steps: 0\n",
    "sweep.yaml": SWEEP,
    "gpus_on_cpu.yaml": SWEEP + "num_gpus: 1\n",
    "gpus_negative.yaml": SWEEP + "num_gpus: -1\ndevice: cuda\n",
    "deep.yaml": "models: " + "[" * 100_000 + "]" * 100_000 + "\n",
    "latin1.yaml": (SWEEP + "# café\n").encode("latin-1"),
}


@dataclass
class Case:
    """One bad input: the command line ({store}, {d} filled in), where the store is, and the words its error holds."""

    id: str
    args: list[str]
    fragment: str
    store: str = "existing"  # existing: the shared catalog; new: no file yet; empty: an empty file; foreign: a Kuzu
    # database without a catalog; none: the row names its store itself (or none)
    skip: Callable[[], str | None] = field(default=lambda: None)


def _gpu() -> str | None:
    from circuitdb.discovery.devices import _gpu_library

    if not _gpu_library():  # no driver: certainly no GPU, known without loading torch
        return None
    import torch

    return "this machine has a CUDA GPU" if torch.cuda.is_available() else None


def _root() -> str | None:
    return "root writes into any folder" if os.geteuid() == 0 else None


SEQ = ["import", "seqcont", "{d}/ok.json", "--threshold", "0.8"]
EAP = ["import", "eap-ig"]
DISCOVER = ["discover", "--model", "toy", "--task", "digits", "--threshold", "0.9"]
CASES = [
    # names: empty, blank, control characters
    Case("empty-model", [*SEQ, "--model", "", "--task", "t"], "model name is empty", "new"),
    Case("blank-model", [*SEQ, "--model", "   ", "--task", "t"], "model name ' ' is only whitespace"),
    Case("empty-task", [*SEQ, "--model", "m", "--task", ""], "task name is empty"),
    Case("blank-task", [*SEQ, "--model", "m", "--task", "\t"], "task name '\\t' is only whitespace"),
    Case("newline-task", [*SEQ, "--model", "m", "--task", "a\nb"], "contains a control character (U+000A)"),
    Case("control-task", [*SEQ, "--model", "m", "--task", "a\x01b"], "contains a control character (U+0001)", "new"),
    Case("empty-method", [*SEQ, "--model", "m", "--task", "t", "--method", ""], "method is empty"),
    Case("blank-method", [*EAP, "{d}/node_outside.json", "--model", "m", "--task", "t", "--method", " "],
         "method ' ' is only whitespace"),
    Case("blank-native-task", ["import", "json", "{d}/blank_task.json"], "runs[0]: task name ' ' is only whitespace"),
    Case("empty-vector-name", ["steer", "build", "", "--model", "toy", "--layer", "1", "--plus", "digits", "--minus",
                               "months"], "steering vector name is empty", "new"),
    Case("empty-discover-task", ["discover", "--model", "toy", "--task", "", "--threshold", "0.9"], "--task is empty"),
    # components outside the model's shape (known to circuitdb, from the file's cfg, or from the catalog)
    Case("eapig-node-outside", [*EAP, "{d}/node_outside.json", "--model", "gpt2-small", "--task", "ioi"],
         "node a20.h1 does not exist in gpt2-small, which has 12 layers"),
    Case("eapig-edge-outside", [*EAP, "{d}/edge_outside.json", "--model", "gpt2-small", "--task", "ioi"],
         "edge a0.h1->a13.h0<v>: a13.h0 does not exist in gpt2-small"),
    Case("eapig-head-outside", [*EAP, "{d}/head_outside.json", "--model", "gpt2-small", "--task", "ioi"],
         "a3.h15 does not exist in gpt2-small, which has 12 heads per layer"),
    Case("eapig-cfg-shape", [*EAP, "{d}/node_outside.json", "--model", "mine", "--task", "ioi"],
         "node a20.h1 does not exist in mine, which has 12 layers"),
    Case("eapig-stored-shape", [*EAP, "{d}/shaped.json", "--model", "shaped", "--task", "ioi"],
         "does not exist in shaped, which has 2 layers (0..1) (as the catalog records it)", "existing-opened"),
    # circuitdb's own JSON with values the catalog cannot hold
    Case("native-nan", ["import", "json", "{d}/nan.json"], "runs[0]: faithfulness must be a finite number, got nan"),
    Case("native-inf", ["import", "json", "{d}/inf.json"], "faithfulness must be a finite number, got inf"),
    Case("native-params", ["import", "json", "{d}/params.json"], "params must be a JSON object (a mapping), got 'abc'"),
    Case("native-created-at", ["import", "json", "{d}/created.json"], "created_at must be an ISO 8601 date and time"),
    Case("native-seed-past-64-bits", ["import", "json", "{d}/seed.json"], "seed must be an integer in"),
    # discovery options, refused before a stored run is skipped (the catalog holds toy/digits@0.9) and before torch
    Case("ig-steps-0", [*DISCOVER, "--method", "eap-ig", "--ig-steps", "0"], "'--ig-steps': 0 is not in the range x>=1"),
    Case("ig-steps-negative", [*DISCOVER, "--ig-steps", "-3"], "'--ig-steps': -3 is not in the range x>=1", "new"),
    Case("robust-negative-rerun", [*DISCOVER, "--robust", "-1"], "'--robust': -1 is not in the range x>=0"),
    Case("seed-past-64-bits", [*DISCOVER, "--seed", str(10**23)], "--seed must be an integer in", "new"),
    Case("device-bogus-rerun", [*DISCOVER, "--device", "bogus"], "--device 'bogus' is not a device"),
    Case("device-cuda-without-gpu", [*DISCOVER, "--device", "cuda"], "--device cuda: this machine has no CUDA", "new",
         _gpu),
    Case("features-device", ["features", "discover", "--model", "toy", "--sae", "toy:resid2", "--task", "digits",
                             "--threshold", "0.9", "--device", "gpu0"], "--device 'gpu0' is not a device", "new"),
    Case("evaluate-device", ["evaluate", "--task", "months", "--on", "months", "--device", "bogus", "--save"],
         "--device 'bogus' is not a device"),
    Case("sweep-nested-text", ["sweep", "{d}/nested.yaml"], "nested.yaml: --nested must be true or false, got 'abc'"),
    Case("sweep-store-number", ["sweep", "{d}/store.yaml"], "store.yaml: 'store' must be a store URL", "none"),
    Case("sweep-seed-text", ["sweep", "{d}/seed.yaml"], "seed.yaml: --seed must be an integer, got 'abc'"),
    Case("sweep-robust-rerun", ["sweep", "{d}/robust.yaml"], "robust.yaml: --robust must be 0 (off)"),
    Case("sweep-ig-steps-0", ["sweep", "{d}/ig.yaml"], "ig.yaml: --ig-steps must be at least 1", "new"),
    Case("sweep-gpus-on-cpu", ["sweep", "{d}/gpus_on_cpu.yaml", "--executor", "ray"], "gpus_on_cpu.yaml: num_gpus asks "
         "Ray for GPUs but the jobs run on the CPU (add device: cuda)", "new"),
    Case("sweep-gpus-negative", ["sweep", "{d}/gpus_negative.yaml"], "num_gpus must be a number >= 0, got -1", "new"),
    Case("sweep-address-without-ray", ["sweep", "{d}/sweep.yaml", "--address", "auto"], "--address names a Ray cluster: "
         "it needs --executor ray", "new"),
    Case("sweep-no-ray-cluster", ["sweep", "{d}/sweep.yaml", "--executor", "ray", "--address", "127.0.0.1:1"],
         "no Ray cluster at 127.0.0.1:1", "new"),
    # query and read options
    Case("related-limit-negative", ["features", "related", "a0.h1", "--model", "gpt2-small", "--limit", "-1"],
         "'--limit': -1 is not in the range x>=1"),
    Case("query-unknown-param", ["query", "MATCH (r:Run) RETURN r.id AS id", "--param", "y=1"],
         "--param y: the query has no $y"),
    Case("export-top-negative", ["export", "-o", "{d}/x.svg", "--top", "-1"], "'--top': -1 is not in the range x>=1"),
    Case("missing-option", [*SEQ, "--task", "t"], "Missing option '--model'"),
    Case("wait-nan", ["--wait", "nan", "runs"], "--wait must be a finite number, got nan"),
    Case("timeout-infinite", ["query", "MATCH (r:Run) RETURN r.id AS id", "--timeout", "inf"],
         "--timeout must be a positive number of seconds, got inf"),
    # empty or foreign store files stay as they are
    Case("runs-on-empty-file", ["runs"], "is an empty file, not a catalog", "empty"),
    Case("delete-on-empty-file", ["delete", "abcd"], "is an empty file, not a catalog", "empty"),
    Case("runs-on-a-foreign-kuzu-db", ["runs"], "foreign.kuzu is a database without a circuitdb catalog", "foreign"),
    Case("delete-on-a-foreign-kuzu-db", ["delete", "abcd"], "without a circuitdb catalog in it", "foreign"),
    Case("runs-on-a-json-file", ["runs", "--store", "kuzu:{d}/ok.json"], "ok.json is not a catalog: the file is not a "
         "database", "none"),
    # what used to surface as an exception's name
    Case("binary-file", [*EAP, "{d}/binary.json", "--model", "m", "--task", "t"],
         "binary.json:1: not UTF-8 text (byte 0xff at offset 0; is it a binary file?)"),
    Case("latin1-file", ["import", "seqcont", "{d}/latin1.json", "--model", "m", "--task", "t", "--threshold", "0.8"],
         "latin1.json:1: not UTF-8 text (byte 0xe9 at offset 44; another encoding, e.g. Latin-1? save it as UTF-8)"),
    Case("latin1-sweep", ["sweep", "{d}/latin1.yaml"], "latin1.yaml:4: not UTF-8 text (byte 0xe9", "new"),
    Case("deep-json", ["import", "json", "{d}/deep.json"], "deep.json: JSON nested too deeply to read"),
    Case("deep-yaml", ["sweep", "{d}/deep.yaml"], "deep.yaml: YAML nested too deeply to read"),
    Case("int-past-64-bits", ["import", "seqcont", "{d}/bigint.json", "--model", "m", "--task", "t", "--threshold", "0.8"],
         "component a1.h99999999999999999999999: a layer or index beyond 2**63 - 1 cannot be stored"),
    Case("int-of-5000-digits", ["import", "seqcont", "{d}/digits.json", "--model", "m", "--task", "t", "--threshold",
                                "0.8"], "a number in the file has more than 4300 digits"),
    Case("output-folder-missing", ["export", "-o", "{d}/missing/x.json"], "missing/x.json: the folder"),
    Case("output-folder-is-a-file", ["export", "-o", "{d}/ok.json/x.csv"], "ok.json is not a folder"),
    Case("plot-folder-missing", ["similarity", "-o", "{d}/missing/x.png"], "x.png: the folder"),
    Case("venn-plot-folder-missing", ["venn", "--run", "0000", "--run", "1111", "-o", "{d}/missing/v.png"],
         "v.png: the folder"),
    Case("related-plot-folder-missing", ["features", "related", "a0.h1", "--model", "gpt2-small", "-o",
                                         "{d}/missing/r.svg"], "r.svg: the folder"),
    Case("output-folder-not-writable", ["export", "-o", "{d}/locked/x.json"], "locked/x.json: not writable", skip=_root),
]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The rows' files and the shared catalog: one seqcont run, the toy run a re-run would skip, a shaped model."""
    d = tmp_path_factory.mktemp("bad")
    for name, content in FILES.items():
        (d / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    db = engine().Database(str(d / "foreign.kuzu"))
    engine().Connection(db).execute("CREATE NODE TABLE X(id STRING, PRIMARY KEY(id))")
    db.close()
    (d / "locked").mkdir()
    (d / "locked").chmod(0o500)
    with Catalog(f"kuzu:{d / 'c.kuzu'}") as catalog:
        catalog.import_file("seqcont", EXAMPLES / "seqcont" / "months_circuit_thres_0.8.json", "gpt2-small", "months", 0.8)
        catalog.add([stored_toy_run(), Run(SHAPED, Task("ioi"), "eap-ig", components={"a1.h1": 0.5})])
    return d


def fingerprint(d: Path) -> dict[str, str]:
    """Every file under the folder (catalogs with their WAL and lock files, the rows' inputs) and its content hash."""
    return {str(p.relative_to(d)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.rglob("*")) if p.is_file()}


def stored_runs(store: str) -> list[tuple]:
    with Catalog(store, read_only=True) as catalog:
        return sorted((r.id, r.n_nodes, r.n_edges, r.created_at) for r in catalog.runs())


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_input_is_one_line_and_writes_nothing(case: Case, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reason = case.skip()
    if reason:
        pytest.skip(reason)
    monkeypatch.chdir(folder)  # a command that fell back to the default store would leave ./circuitdb.kuzu here
    monkeypatch.delenv("CIRCUITDB_STORE", raising=False)
    store = {"existing": folder / "c.kuzu", "existing-opened": folder / "c.kuzu", "new": folder / "new.kuzu",
             "empty": folder / "empty.kuzu", "foreign": folder / "foreign.kuzu", "none": None}[case.store]
    if case.store == "empty":
        store.write_bytes(b"")
    args = [a.replace("{d}", str(folder)) for a in case.args]
    if store is not None and "--store" not in args:
        args += ["--store", f"kuzu:{store}"]
    before = fingerprint(folder)
    runs_before = stored_runs(f"kuzu:{store}") if case.store == "existing-opened" else None

    result = CliRunner().invoke(main, args, catch_exceptions=False)

    assert result.exit_code != 0, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and case.fragment in lines[0], lines[0]
    assert not re.match(r"error: \w+(Error|Exception)\b", lines[0]), lines[0]
    assert "Traceback" not in result.stderr + result.stdout and "skipped" not in result.stderr + result.stdout
    assert result.stdout == ""
    if case.store == "existing-opened":  # the command read the catalog (the shapes it holds): no run changed
        assert stored_runs(f"kuzu:{store}") == runs_before
        after = fingerprint(folder)
        assert set(after) == set(before) and {k for k in after if after[k] != before[k]} <= {"c.kuzu"}
    elif case.store == "foreign":  # another program's database: its bytes stay; circuitdb's lock file may appear
        def ours(files: dict[str, str]) -> dict[str, str]:
            return {k: v for k, v in files.items() if k != "foreign.kuzu.lock"}

        assert ours(fingerprint(folder)) == ours(before)
    else:
        assert fingerprint(folder) == before
    if case.store == "empty":
        store.unlink()


API_CASES: list[tuple[str, Callable[[Catalog, Path], object], str]] = [
    ("blank-model", lambda c, d: c.import_file("seqcont", d / "ok.json", " ", "t", 0.8), "model name ' ' is only"),
    ("nul-in-task", lambda c, d: c.add(Run(Model("m"), Task("a\0b"), "prune", 0.8, components={"m0": None})),
     "contains a control character (U+0000)"),
    ("empty-method", lambda c, d: c.import_file("eap-ig", d / "node_outside.json", "m", "t", method=""),
     "method is empty"),
    ("nan-faithfulness", lambda c, d: c.add(Run(Model("m"), Task("t"), "prune", 0.8, components={"m0": None},
                                                faithfulness=math.nan)), "faithfulness must be a finite number"),
    ("string-params", lambda c, d: c.add(Run(Model("m"), Task("t"), "prune", 0.8, params="x")), "params must be a JSON"),
    ("outside-known-shape", lambda c, d: c.add(Run(Model("gpt2-small", 12, 12, 768), Task("t"), "prune", 0.8,
                                                   components={"a12.h0": None})), "a12.h0 does not exist in gpt2-small"),
    ("outside-stored-shape", lambda c, d: c.add(Run(Model("shaped"), Task("t"), "prune", 0.8,
                                                    components={"a1.h2": None})), "which has 2 heads per layer"),
    ("ig-steps-0-rerun", lambda c, d: c.discover("toy", ["digits"], [0.9], ig_steps=0), "--ig-steps must be at least 1"),
    ("robust-negative-rerun", lambda c, d: c.discover("toy", ["digits"], [0.9], robust=-1), "--robust must be 0"),
    ("seed-text", lambda c, d: c.discover("toy", ["digits"], [0.9], seed="abc"), "--seed must be an integer"),
    ("nested-text", lambda c, d: c.discover("toy", ["digits"], [0.9], nested="abc"), "--nested must be true or false"),
    ("device-bogus", lambda c, d: c.discover("toy", ["digits"], [0.9], device="bogus"), "is not a device"),
    ("evaluate-device", lambda c, d: c.evaluate(Selection(), ["months"], device="cuda:x"), "is not a device"),
    ("related-limit", lambda c, d: c.features_related("a0.h1", "gpt2-small", limit=-1), "--limit must be at least 1"),
    ("export-top", lambda c, d: c.export(Selection(), d / "x.svg", top=0), "--top must be at least 1"),
    ("export-folder", lambda c, d: c.export(Selection(), d / "missing" / "x.json"), "the folder"),
    ("query-param", lambda c, d: c.query("MATCH (r:Run) RETURN r.id AS id", {"y": 1}), "the query has no $y"),
    ("empty-vector-name", lambda c, d: c.add_steering(SteeringVector("toy", "", 1, [1.0])), "steering vector name is"),
    ("newline-vector-name", lambda c, d: c.add_steering(SteeringVector("toy", "a\nb", 1, [1.0])), "(U+000A)"),
    ("steer-build-name", lambda c, d: c.steer_build(" ", "toy", 1, "digits", "months"), "steering vector name ' '"),
]


@pytest.mark.parametrize(("call", "fragment"), [c[1:] for c in API_CASES], ids=[c[0] for c in API_CASES])
def test_the_python_api_refuses_the_same(folder: Path, call: Callable[[Catalog, Path], object], fragment: str) -> None:
    store = f"kuzu:{folder / 'c.kuzu'}"
    before = stored_runs(store)
    with Catalog(store) as catalog, pytest.raises(CircuitdbError) as refused:
        call(catalog, folder)
    assert fragment in str(refused.value) and "\n" not in str(refused.value)
    assert stored_runs(store) == before


# The embedded file held by another process: real processes, the CLI in its own process too.
CLI = [sys.executable, "-c", "from circuitdb.cli import main; main()"]
HOLD = """
import sys, time
path, how = sys.argv[1], sys.argv[2]
if how == "kuzu":  # another program: the engine itself, without circuitdb's lock
    from circuitdb.store.engine import engine
    db = engine().Database(path)
else:
    from circuitdb import Catalog
    catalog = Catalog("kuzu:" + path, read_only=how == "read")
print("holding", flush=True)
time.sleep(300)
"""


@pytest.fixture
def holders(tmp_path: Path) -> Iterator[Callable[[str], subprocess.Popen]]:
    """Start processes that hold `tmp_path/c.kuzu` (write, read, or kuzu: Kuzu alone) until the test ends."""
    with Catalog(f"kuzu:{tmp_path / 'c.kuzu'}") as catalog:
        catalog.add(stored_toy_run())
    started: list[subprocess.Popen] = []

    def hold(how: str) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path / "c.kuzu"), how], stdout=subprocess.PIPE,
                                text=True)
        started.append(proc)
        assert proc.stdout.readline().strip() == "holding"
        return proc

    yield hold
    for proc in started:
        proc.kill()
        proc.wait()


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, "--wait", "0", *args], capture_output=True, text=True, timeout=120)


def one_line(result: subprocess.CompletedProcess) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Could not set lock" not in lines[0] and "exception" not in lines[0].lower(), lines[0]
    return lines[0]


def test_a_circuitdb_writer_holding_the_file_is_named(tmp_path: Path, holders: Callable[[str], subprocess.Popen]) -> None:
    writer = holders("write")
    line = one_line(run_cli("runs", "--store", f"kuzu:{tmp_path / 'c.kuzu'}"))
    assert "in use by another process" in line and f"circuitdb process {writer.pid} (" in line, line
    assert "is writing it" in line


def test_readers_holding_the_file_are_named_to_a_writer(tmp_path: Path,
                                                         holders: Callable[[str], subprocess.Popen]) -> None:
    readers = [holders("read"), holders("read")]
    (tmp_path / "run.json").write_text(dumps([Run(Model("m"), Task("t"), "prune", 0.5, components={"m0": None})]))
    line = one_line(run_cli("import", "json", str(tmp_path / "run.json"), "--store", f"kuzu:{tmp_path / 'c.kuzu'}"))
    assert f"circuitdb process {min(r.pid for r in readers)} (" in line and "and 1 more are reading it" in line, line


def test_another_program_holding_the_engines_own_lock_is_named(tmp_path: Path,
                                                               holders: Callable[[str], subprocess.Popen]) -> None:
    """A second writer is refused by the engine's own lock. (ladybug, unlike Kuzu 0.11.3, lets a read-only open
    through beside another program's writer; circuitdb's readers and writers also share the sidecar lock.)"""
    other = holders("kuzu")
    line = one_line(run_cli("init", "--store", f"kuzu:{tmp_path / 'c.kuzu'}"))
    assert f"process {other.pid} (" in line and "without circuitdb's lock (another program, not circuitdb)" in line, line


def test_a_lock_left_by_a_killed_writer_does_not_block(tmp_path: Path,
                                                       holders: Callable[[str], subprocess.Popen]) -> None:
    writer = holders("write")
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    assert (tmp_path / "c.kuzu.lock").exists()  # the lock file stays behind; the lock itself died with the process
    run = Run(Model("m"), Task("t"), "prune", 0.5, components={"m0": None})
    (tmp_path / "run.json").write_text(dumps([run]))
    store = f"kuzu:{tmp_path / 'c.kuzu'}"
    result = run_cli("import", "json", str(tmp_path / "run.json"), "--store", store)
    assert result.returncode == 0, result.stderr
    assert {r[0] for r in stored_runs(store)} == {run.id, stored_toy_run().id}


def test_every_file_of_the_table_is_used_by_a_row() -> None:
    named = {m for c in CASES for a in c.args for m in re.findall(r"\{d\}/(\w+\.(?:json|yaml))\b", a)}
    assert set(FILES) == named, sorted(set(FILES) ^ named)
