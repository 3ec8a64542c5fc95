"""Sweeps on a Ray cluster (a real local one, started here with 2 CPUs and no GPU) give exactly the runs of the local
executor, survive a worker killed mid-unit, and write into Neo4j from several workers at once without loss."""

from __future__ import annotations

import importlib.util
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from circuitdb import Catalog

if importlib.util.find_spec("ray") is None:  # not imported here: Ray reads its auth token once, when first loaded
    if os.environ.get("CI"):
        pytest.fail("the Ray tests need the ray extra in CI (make test installs it)", pytrace=False)
    pytest.skip("Ray is not installed (pip install 'circuitdb[ray]')", allow_module_level=True)

SWEEP = """models: [toy]
tasks: [digits, numwords, months]
thresholds: [0.97, 0.9, 0.8]
methods: [prune, eap]
edges: none
prompts: 16
"""
UNIT_TITLE = "ray::_ladder"  # the process title Ray gives a worker while it runs a unit


def snapshot(url: str) -> dict[str, tuple]:
    """Every run of a store: id -> (members with scores, edges with weights)."""
    with Catalog(url, read_only=True) as catalog:
        runs = [catalog.run(info.id) for info in catalog.runs()]
    return {run.id: (sorted(run.components.items()), sorted((*e.key, e.weight) for e in run.edges)) for run in runs}


def assert_same_runs(got: dict[str, tuple], want: dict[str, tuple]) -> None:
    """The same runs, members and edges; scores and weights equal up to float noise (a Ray worker runs torch on one
    thread, which sums in another order)."""
    assert sorted(got) == sorted(want)
    for run_id, (members, edges) in want.items():
        got_members, got_edges = got[run_id]
        assert [m[0] for m in got_members] == [m[0] for m in members], run_id
        assert [e[:3] for e in got_edges] == [e[:3] for e in edges], run_id
        values = [(a[1], b[1]) for a, b in zip(got_members, members)] + [(a[3], b[3]) for a, b in zip(got_edges, edges)]
        assert all((a is None and b is None) or abs(a - b) <= 1e-6 for a, b in values), run_id


# a sweep through the Python API, driven from a fresh process as the CLI drives one, its news printed as it comes
DRIVER = """
import sys
from pathlib import Path
from circuitdb import Catalog
from circuitdb.progress import Reporter

class Lines(Reporter):
    def note(self, text): print("note", text, flush=True)
    def status(self, text): print("state", text, flush=True)

with Catalog(sys.argv[1]) as catalog:
    written = catalog.sweep(Path(sys.argv[2]), Lines(), executor="ray", address=sys.argv[3])
print("written", len(written), flush=True)
"""


@dataclass
class Swept:
    """What a sweep reported: news lines, the units' states, how many runs it wrote."""

    notes: list[str] = field(default_factory=list)
    states: list[str] = field(default_factory=list)
    written: int = -1


def sweep_in_child(url: str, sweep_file: Path, address: str, on_note: Callable[[str], None] = lambda _: None) -> Swept:
    """Run the sweep in a child process, reading its news line by line (`on_note` sees each note as it arrives)."""
    child = subprocess.Popen([sys.executable, "-c", DRIVER, url, str(sweep_file), address], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    swept, other = Swept(), []
    for line in child.stdout:
        kind, _, text = line.rstrip("\n").partition(" ")
        if kind == "note":
            swept.notes.append(text)
            on_note(text)
        elif kind == "state":
            swept.states.append(text)
        elif kind == "written":
            swept.written = int(text)
        else:
            other.append(line)
    assert child.wait(timeout=900) == 0, "".join(other[-20:])
    return swept


@pytest.fixture(scope="module")
def sweep_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sweep") / "sweep.yaml"
    path.write_text(SWEEP)
    return path


@pytest.fixture(scope="module")
def local(sweep_file: Path) -> dict[str, tuple]:
    """The runs of the local executor: what every Ray sweep must reproduce."""
    url = f"kuzu:{sweep_file.parent / 'local.kuzu'}"
    with Catalog(url) as catalog:
        catalog.sweep(sweep_file)
    runs = snapshot(url)
    assert len(runs) == 18
    return runs


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A local Ray cluster of 2 CPUs, started with `ray start` as on a real head node, with token authentication (the
    token in RAY_AUTH_TOKEN, as a team would hand it to its drivers); its address."""
    saved = {key: os.environ.get(key) for key in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")}
    os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(16))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ray_bin = shutil.which("ray", path=str(Path(sys.executable).parent))
    temp = tmp_path_factory.mktemp("ray")
    # --block: this one process owns the cluster, and stopping it stops that cluster only (`ray stop` would stop all)
    head = subprocess.Popen([ray_bin, "start", "--head", "--block", "--num-cpus", "2", "--num-gpus", "0", "--port",
                             str(port), "--node-ip-address", "127.0.0.1", "--include-dashboard", "false",
                             "--disable-usage-stats", "--temp-dir", str(temp)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not _listening(port):
        assert head.poll() is None and time.monotonic() < deadline, "the Ray head did not start"
        time.sleep(0.2)
    yield f"127.0.0.1:{port}"
    head.terminate()
    head.wait(timeout=120)
    for key, value in saved.items():
        os.environ.pop(key, None) if value is None else os.environ.update({key: value})


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def test_a_ray_sweep_from_the_cli_gives_the_local_executors_runs(cluster: str, local: dict, sweep_file: Path) -> None:
    url = f"kuzu:{sweep_file.parent / 'cli.kuzu'}"
    done = subprocess.run([sys.executable, "-m", "circuitdb", "sweep", str(sweep_file), "--executor", "ray",
                           "--address", cluster, "--store", url], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith(f"{len(local)} runs written")
    assert_same_runs(snapshot(url), local)
    # a second sweep skips every stored run and writes nothing
    again = subprocess.run([sys.executable, "-m", "circuitdb", "sweep", str(sweep_file), "--executor", "ray",
                            "--address", cluster, "--store", url], capture_output=True, text=True, timeout=900)
    assert again.returncode == 0 and again.stdout.count("skipped") == len(local), again.stdout
    assert_same_runs(snapshot(url), local)


def kill_a_running_unit() -> int | None:
    """SIGKILL a worker process that is running a unit; its pid, or None when none is running right now."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            title = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # the process has ended
            continue
        if title.startswith(UNIT_TITLE):
            os.kill(int(cmdline.parent.name), signal.SIGKILL)
            return int(cmdline.parent.name)
    return None


def test_a_worker_killed_mid_unit_still_yields_the_whole_sweep(cluster: str, local: dict, sweep_file: Path) -> None:
    url = f"kuzu:{sweep_file.parent / 'killed.kuzu'}"
    killed: list[int] = []

    def after_a_write(note: str) -> None:  # the sweep has stored a run: kill a unit mid-ladder
        if note.startswith("wrote ") and not killed:
            killed.extend(pid for pid in [kill_a_running_unit()] if pid)

    swept = sweep_in_child(url, sweep_file, cluster, after_a_write)
    assert killed, "no worker was caught running a unit"
    assert any("retried" in state for state in swept.states), swept.states[-3:]
    assert swept.written == len(local)
    assert_same_runs(snapshot(url), local)
    # the retry skipped what the killed attempt had stored: no run was written twice
    wrote = [text.split()[1] for text in swept.notes if text.startswith("wrote ")]
    assert len(wrote) == len(set(wrote)) and set(wrote) <= set(local)


def test_workers_write_into_neo4j_at_once_without_loss(cluster: str, local: dict, sweep_file: Path,
                                                       neo4j_url: str) -> None:
    from conftest import wipe_neo4j

    wipe_neo4j(neo4j_url)
    swept = sweep_in_child(neo4j_url, sweep_file, cluster)
    assert swept.written == len(local)
    assert any("2 running" in state for state in swept.states), "the two workers never wrote side by side"
    assert_same_runs(snapshot(neo4j_url), local)
