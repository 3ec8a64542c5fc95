"""The embedded store on either engine (CIRCUITDB_ENGINE): ladybug, the default, and Kuzu 0.11.3, kept to read older
catalogs, give the same catalog; the fork keeps a relationship table whole when a COPY into it is rolled back, which
Kuzu 0.11.3 does not (the reason circuitdb's write on Kuzu never rolls a COPY back); `from-kuzu` copies a Kuzu catalog
into a ladybug file whole, and each engine refuses the other's file with one line that says what to do. The two
cannot share a process, so each runs in a child."""

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
from circuitdb.domain import Relation, SteeringVector
from fixtures import catalog_runs
with Catalog(f"kuzu:{sys.argv[1]}") as catalog:
    if sys.argv[2:] == ["add"]:
        runs = catalog_runs()
        catalog.add(runs)
        names = sorted(runs[0].components)
        catalog.add_relations([Relation("toy", names[0], "toy", names[1], "cosine", 0.75, "test"),
                               Relation("toy", names[2], "toy", names[0], "match", 0.5, "test")])
        vector = SteeringVector("toy", "v", 1, [0.5, -2.0, 3.0], "a vector")
        catalog.add_steering(vector)
        catalog.add_steering(vector, "SHIFTS", [{"name": names[1], "delta": 2.0, "layer": 3, "coef": 1.0}])
    runs = {r.id: catalog.run(r.id) for r in catalog.runs()}
    relations = catalog.query("MATCH (a:Component)-[r:RELATES]->(b:Component) RETURN a.id AS a, b.id AS b, "
                              "r.kind AS kind, r.weight AS weight, r.source AS source")
    print(json.dumps({"engine": catalog.store.engine.__name__, "runs": {
        i: [sorted(r.components.items()), sorted((*e.key, e.weight) for e in r.edges), r.nests_in, r.faithfulness,
            r.threshold, r.method, r.task.name, r.model.name] for i, r in runs.items()},
        "relations": sorted(map(str, relations.records())), "vectors": [catalog.steer_show(v["name"], v["model"]).to_dict()
                                                              for v in catalog.steer_list().rows.to_dict("records")]}))
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


def child(code: str, *args: str, engine: str = "ladybug", fails: bool = False) -> str:
    """Run Python `code` with `args` on `engine`; its last line of output (of stderr when it is to fail)."""
    env = {**os.environ, "CIRCUITDB_ENGINE": engine, "PYTHONPATH": os.pathsep.join([str(HERE), *sys.path])}
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env)
    assert (out.returncode != 0) == fails, out.stderr[-2000:]
    return (out.stderr if fails else out.stdout).strip().splitlines()[-1]


def cli(*args: str, engine: str = "ladybug", fails: bool = False) -> str:
    return child("from circuitdb.cli import main; main()", *args, engine=engine, fails=fails)


@pytest.fixture(scope="module", autouse=True)
def needs_kuzu() -> None:
    if importlib.util.find_spec("kuzu") is None:
        if os.environ.get("CI"):
            pytest.fail("kuzu is part of make test's install")
        pytest.skip("kuzu is not installed (pip install 'circuitdb[kuzu]')")


@pytest.fixture(scope="module")
def kuzu_catalog(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A catalog Kuzu 0.11.3 wrote (runs, feature relations, a steering vector), and what it holds as Kuzu reads it."""
    path = tmp_path_factory.mktemp("kuzu") / "old.kuzu"
    return path, json.loads(child(CATALOG, str(path), "add", engine="kuzu"))


def test_the_catalog_is_the_same_on_either_engine(tmp_path: Path, kuzu_catalog: tuple[Path, dict]) -> None:
    kuzu = kuzu_catalog[1]
    ladybug = json.loads(child(CATALOG, str(tmp_path / "l.kuzu"), "add"))
    assert (kuzu["engine"], ladybug["engine"]) == ("kuzu", "ladybug")
    assert len(kuzu["runs"]) > 5 and len(kuzu["relations"]) == 2 and len(kuzu["vectors"]) == 1
    assert {k: v for k, v in ladybug.items() if k != "engine"} == {k: v for k, v in kuzu.items() if k != "engine"}


def test_from_kuzu_copies_a_kuzu_catalog_whole_into_a_ladybug_file(tmp_path: Path,
                                                                   kuzu_catalog: tuple[Path, dict]) -> None:
    old, held = kuzu_catalog
    said = cli("from-kuzu", str(old), "--store", f"kuzu:{tmp_path / 'new.lbug'}")
    assert said.endswith(f"{len(held['runs'])} runs, {sum(len(r[1]) for r in held['runs'].values())} edges, "
                         f"{said.split(' components')[0].rsplit(' ', 1)[1]} components, 2 feature relations, "
                         f"1 steering vectors")
    copied = json.loads(child(CATALOG, str(tmp_path / "new.lbug")))
    assert copied["engine"] == "ladybug"
    assert {k: v for k, v in copied.items() if k != "engine"} == {k: v for k, v in held.items() if k != "engine"}
    # the copy takes new runs beside the old (Edge ids go on from the copied ones)
    grown = json.loads(child(CATALOG, str(tmp_path / "new.lbug"), "add"))
    assert grown["runs"] == held["runs"]
    assert cli("from-kuzu", str(old), "--store", f"kuzu:{tmp_path / 'new.lbug'}", fails=True).startswith(
        f"error: {tmp_path / 'new.lbug'} already holds ")


def test_each_engine_refuses_the_other_ones_file_with_what_to_do(tmp_path: Path,
                                                                 kuzu_catalog: tuple[Path, dict]) -> None:
    old = kuzu_catalog[0]
    before = old.read_bytes()
    assert cli("runs", "--store", f"kuzu:{old}", fails=True) == (
        f"error: {old} was written by Kuzu 0.11, which circuitdb's engine (ladybug) cannot open: copy it into a new "
        f"file with `circuitdb from-kuzu {old} --store kuzu:NEW_FILE` (needs pip install 'circuitdb[kuzu]'), or keep "
        f"using it with CIRCUITDB_ENGINE=kuzu")
    assert old.read_bytes() == before
    child(CATALOG, str(tmp_path / "l.kuzu"), "add")
    assert cli("runs", "--store", f"kuzu:{tmp_path / 'l.kuzu'}", engine="kuzu", fails=True) == (
        f"error: {tmp_path / 'l.kuzu'} was written by ladybug, which Kuzu 0.11 cannot open: unset CIRCUITDB_ENGINE "
        f"to use ladybug, circuitdb's default engine")
    (tmp_path / "notes.txt").write_text("not a database")
    assert cli("from-kuzu", str(tmp_path / "notes.txt"), "--store", f"kuzu:{tmp_path / 'x.lbug'}",
               fails=True) == f"error: {tmp_path / 'notes.txt'} is not a file Kuzu 0.11 wrote"


def test_a_rolled_back_copy_empties_kuzus_relationship_table_but_not_ladybugs(tmp_path: Path) -> None:
    assert int(child(ROLLBACK, str(tmp_path / "k.db"), "kuzu", engine="kuzu")) == 0
    assert int(child(ROLLBACK, str(tmp_path / "l.db"), "ladybug")) == 5000


def test_an_unknown_engine_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIRCUITDB_ENGINE", "sqlite")
    with pytest.raises(StoreError, match="CIRCUITDB_ENGINE must be one of ladybug, kuzu, not 'sqlite'"):
        open_store(f"kuzu:{tmp_path / 'c.kuzu'}")
