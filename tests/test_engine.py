"""The embedded store on either engine (CIRCUITDB_ENGINE): Kuzu 0.11.3, the default, and its maintained fork ladybug
give the same catalog; the fork keeps a relationship table whole when a COPY into it is rolled back, which Kuzu 0.11.3
does not (the reason circuitdb's Kuzu write never rolls a COPY back). The two cannot share a process, so each runs
in a child."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from circuitdb.errors import StoreError
from circuitdb.store.base import open_store

HERE = Path(__file__).parent
CATALOG = """
import json, sys
from circuitdb import Catalog
from fixtures import catalog_runs
with Catalog(f"kuzu:{sys.argv[1]}") as catalog:
    catalog.add(catalog_runs())
    runs = {r.id: catalog.run(r.id) for r in catalog.runs()}
    print(json.dumps({"engine": catalog.store.engine.__name__, "runs": {
        i: [sorted(r.components.items()), sorted((*e.key, e.weight) for e in r.edges), r.nests_in]
        for i, r in runs.items()}}))
"""
ROLLBACK = """
import importlib, json, sys
import pyarrow as pa
engine = importlib.import_module(sys.argv[2])
conn = engine.Connection(engine.Database(sys.argv[1]))
conn.execute("CREATE NODE TABLE N(id INT64, PRIMARY KEY(id))")
conn.execute("CREATE REL TABLE R(FROM N TO N)")
conn.execute("COPY N FROM $t", {"t": pa.table({"id": pa.array(range(100), pa.int64())})})
conn.execute("COPY R FROM $t", {"t": pa.table({"from": [i % 100 for i in range(5000)], "to": [i % 97 for i in range(5000)]})})
conn.execute("BEGIN TRANSACTION")
conn.execute("COPY R FROM $t", {"t": pa.table({"from": [1, 2], "to": [3, 4]})})
conn.execute("ROLLBACK")
print(json.dumps(conn.execute("MATCH ()-[r:R]->() RETURN count(r)").get_next()[0]))
"""


def child(code: str, *args: str, engine: str = "kuzu") -> str:
    env = {**os.environ, "CIRCUITDB_ENGINE": engine, "PYTHONPATH": os.pathsep.join([str(HERE), *sys.path])}
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module", autouse=True)
def needs_ladybug() -> None:
    if importlib.util.find_spec("ladybug") is None:
        if os.environ.get("CI"):
            pytest.fail("the ladybug engine is part of make test's install")
        pytest.skip("ladybug is not installed (pip install 'circuitdb[ladybug]')")


def test_the_catalog_is_the_same_on_either_engine(tmp_path: Path) -> None:
    kuzu = json.loads(child(CATALOG, str(tmp_path / "k.kuzu")))
    ladybug = json.loads(child(CATALOG, str(tmp_path / "l.kuzu"), engine="ladybug"))
    assert (kuzu["engine"], ladybug["engine"]) == ("kuzu", "ladybug")
    assert len(kuzu["runs"]) > 5 and ladybug["runs"] == kuzu["runs"]


def test_a_rolled_back_copy_empties_kuzus_relationship_table_but_not_ladybugs(tmp_path: Path) -> None:
    assert int(child(ROLLBACK, str(tmp_path / "k.db"), "kuzu")) == 0
    assert int(child(ROLLBACK, str(tmp_path / "l.db"), "ladybug")) == 5000


def test_an_unknown_engine_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIRCUITDB_ENGINE", "sqlite")
    with pytest.raises(StoreError, match="CIRCUITDB_ENGINE must be one of kuzu, ladybug, not 'sqlite'"):
        open_store(f"kuzu:{tmp_path / 'c.kuzu'}")
