"""`circuitdb query` is a read-only window on the catalog, never on the file system: hostile statements on both stores
are refused with one line, leave no file behind, and ordinary reads still work."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import wipe_neo4j
from fixtures import catalog_runs

from circuitdb import Catalog
from circuitdb.cli import main

SECRET = "/etc/hostname"
SECRET_TEXT = Path(SECRET).read_text().strip() if Path(SECRET).exists() else "\x00"


def hostile(out: Path) -> list[tuple[str, str]]:
    """(statement, what the one-line error says), statements writing under `out` or reading SECRET; a statement of
    one dialect may simply fail to parse in the other."""
    return [
        (f"COPY (MATCH (r:Run) RETURN r.id) TO '{out}/x.csv'", "COPY"),
        (f"COPY (MATCH (r:Run) RETURN r.id) TO '{out}/x.parquet'", "COPY"),
        (f"copy (MATCH (r:Run) RETURN r.id) to '{out}/lower.csv'", "COPY"),
        (f"/* hi */ COPY (MATCH (r:Run) RETURN r.id) TO '{out}/c.csv'", "COPY"),
        (f"LOAD FROM '{SECRET}' (file_format='csv', header=false) RETURN *", "LOAD"),
        (f"MATCH (r:Run) WITH count(r) AS n LOAD FROM '{SECRET}' (file_format='csv', header=false) RETURN *", "LOAD"),
        (f"LOAD CSV FROM 'file://{SECRET}' AS line RETURN line", "LOAD"),
        (f"MATCH (r:Run) WITH r LIMIT 1 LOAD CSV FROM 'file://{SECRET}' AS line RETURN line", "LOAD"),
        (f"EXPORT DATABASE '{out}/export'", "EXPORT"),
        (f"IMPORT DATABASE '{out}/export'", "IMPORT"),
        ("INSTALL json", "INSTALL"),
        ("LOAD EXTENSION json", "LOAD"),
        (f"ATTACH '{out}/other.kuzu' AS other (dbtype kuzu)", "ATTACH"),
        ("CHECKPOINT", "CHECKPOINT"),
        ("CALL threads=1", "plan|failed"),
        ("CALL dbms.listConfig() YIELD name RETURN name", "procedure|failed"),
        ("CALL dbms.components() YIELD name RETURN name", "procedure|failed"),
        ("BEGIN TRANSACTION", "BEGIN"),
        ("CREATE (:Model {id: 'x'})", "CREATE"),
        ("MATCH (r:Run) SET r.method = 'x' RETURN r", "writes"),
        ("MATCH (r:Run) DETACH DELETE r", "writes"),
        ("MATCH (r:Run) RETURN r.id; MATCH (r:Run) RETURN r.id", "one statement"),
        (f"MATCH (r:Run) RETURN r.id; COPY (MATCH (r:Run) RETURN r.id) TO '{out}/y.csv'", "one statement"),
        ("MATCH (r:Run) RETURN r.id;;", ""),  # a trailing empty statement is fine: checked below as a read
    ]


@pytest.fixture(params=["kuzu", "neo4j"])
def loaded(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "kuzu":
        url = f"kuzu:{tmp_path / 'c.kuzu'}"
    else:
        url = request.getfixturevalue("neo4j_url")
        wipe_neo4j(url)
    with Catalog(url) as catalog:
        catalog.add(catalog_runs()[:3])
    return url


def test_hostile_statements_are_refused_and_touch_no_file(loaded: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    before = sorted(p.name for p in tmp_path.iterdir())
    for statement, says in hostile(out):
        result = CliRunner().invoke(main, ["query", statement, "--store", loaded])
        if not says:
            assert result.exit_code == 0, result.output
            continue
        lines = result.stderr.strip().splitlines()
        assert result.exit_code == 1 and len(lines) == 1, f"{statement}: {result.output}"
        assert re.match("error: (refused|query failed)", lines[0]) and re.search(says, lines[0]), f"{statement}: {lines[0]}"
        assert SECRET_TEXT not in result.output
    assert list(out.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == before
    with Catalog(loaded, read_only=True) as catalog:  # nothing was written to the graph either
        assert len(catalog.runs()) == 3


def test_ordinary_reads_params_and_timeout(loaded: str) -> None:
    with Catalog(loaded, read_only=True) as catalog:
        ids = sorted(r.id for r in catalog.runs())
        # a value that looks like Cypher stays a value: parameters never become statement text
        trick = "x'}) DETACH DELETE r //"
        assert catalog.query("MATCH (r:Run) WHERE r.id = $id RETURN r.id AS id", {"id": trick}).records() == []
        got = catalog.query("MATCH (r:Run) WHERE r.id IN $ids RETURN r.id AS id ORDER BY id", {"ids": ids}).records()
        assert [r["id"] for r in got] == ids
        assert catalog.query("CALL db.labels() YIELD label RETURN label" if loaded.startswith("bolt")
                             else "CALL show_tables() RETURN name").records()
        start = time.monotonic()
        with pytest.raises(Exception, match="stopped after 1 s"):
            catalog.query("UNWIND range(1, 100000) AS i UNWIND range(1, 100000) AS j WITH i, j WHERE (i * j) % 7 = 3 "
                          "RETURN count(*) AS n", timeout=1)
        assert time.monotonic() - start < 30
        with pytest.raises(Exception, match=r"uses \$nope, which has no value"):
            catalog.query("MATCH (r:Run {id: $nope}) RETURN r")
        assert len(catalog.runs()) == 3
