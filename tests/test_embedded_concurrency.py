"""The embedded file with several processes at once (real processes, no threads): simultaneous importers queue and all
their runs arrive; readers run beside each other and beside a discovery job, which holds the file only while it
writes; a reader that cannot get in says why within --wait."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from itertools import pairwise
from pathlib import Path

from fixtures import catalog_runs

from circuitdb import Catalog
from circuitdb.ingest.native import dumps

CLI = [sys.executable, "-c", "from circuitdb.cli import main; main()"]


def cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen([*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_eight_simultaneous_importers_all_arrive(tmp_path: Path) -> None:
    runs = [r for r in catalog_runs() if r.threshold == 0.97 and r.nests_in is None][:8]
    assert len(runs) == 8
    files = []
    for i, run in enumerate(runs):
        files.append(tmp_path / f"run{i}.json")
        files[-1].write_text(dumps([run]))
    store = f"kuzu:{tmp_path / 'c.kuzu'}"
    Catalog(store).close()
    procs = [cli("--wait", "120", "import", "json", str(f), "--store", store) for f in files]
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, [err.strip().splitlines()[-1] for _, err in results if err.strip()]
    with Catalog(store, read_only=True) as catalog:
        assert sorted(catalog.runs().ids) == sorted(r.id for r in runs)


def test_readers_beside_each_other_and_beside_a_discovery_job(tmp_path: Path) -> None:
    store = f"kuzu:{tmp_path / 'c.kuzu'}"
    with Catalog(store) as catalog:
        catalog.add(catalog_runs()[0])
    job = cli("discover", "--model", "toy", "--task", "digits", "--task", "months", "--threshold", "0.97",
              "--threshold", "0.8", "--edges", "none", "--prompts", "24", "--store", store)
    seen: list[list[int]] = []  # runs each reader saw, batch by batch
    while job.poll() is None:
        batch = [cli("--wait", "60", "runs", "--json", "--store", store) for _ in range(3)]  # three at once
        seen.append([])
        for reader in batch:
            out, err = reader.communicate(timeout=120)
            assert reader.returncode == 0, err
            seen[-1].append(len(json.loads(out)["runs"]))
    _, err = job.communicate()
    assert job.returncode == 0, err
    assert len(seen) >= 2
    for before, after in pairwise(seen):  # a batch starts after the one before ended: it sees no fewer runs
        assert max(before) <= min(after), seen
    with Catalog(store, read_only=True) as catalog:
        assert len(catalog.runs()) == 5 and max(seen[-1]) <= 5


def test_a_reader_locked_out_says_why_within_wait(tmp_path: Path) -> None:
    store = f"kuzu:{tmp_path / 'c.kuzu'}"
    with Catalog(store) as writer:  # a writer holding the file open
        writer.add(catalog_runs()[0])
        started = time.monotonic()
        reader = cli("--wait", "1", "runs", "--store", store)
        _, err = reader.communicate(timeout=60)
        assert reader.returncode == 1
        assert err.strip().splitlines()[-1].startswith("error: ") and "in use by another process" in err
        assert "waiting up to 1 s" in err
        assert time.monotonic() - started < 20
