"""Fixtures: a real Kuzu file per test and one real Neo4j 5.26 server per session, wiped between tests."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
sys.path.insert(0, str(Path(__file__).parent))

import neo4j_server

from circuitdb import Catalog


@pytest.fixture(scope="session")
def neo4j_url() -> Iterator[str]:
    """A throw-away Neo4j; without Java it skips locally, but in CI a missing server is a failure."""
    if not neo4j_server.java_available():
        if os.environ.get("CI"):
            pytest.fail("Neo4j tests need java, javac and mvn in CI")
        pytest.skip("no Java/Maven on this machine: the Neo4j tests need them")
    uri, proc = neo4j_server.start()
    os.environ.pop("CIRCUITDB_NEO4J_PASSWORD", None)
    yield uri
    neo4j_server.stop(proc)


def wipe_neo4j(url: str, schema: bool = False) -> None:
    """Empty the server's database (community edition has one) so each test starts clean; `schema` drops the
    constraints and indexes too, as on a server nobody has used yet."""
    import neo4j

    with neo4j.GraphDatabase.driver(url, auth=None) as driver, driver.session() as session:
        session.run("MATCH ()-[r]->() CALL (r) { DELETE r } IN TRANSACTIONS OF 50000 ROWS").consume()
        session.run("MATCH (n) CALL (n) { DELETE n } IN TRANSACTIONS OF 50000 ROWS").consume()
        if schema:
            for name in session.run("SHOW CONSTRAINTS YIELD name").value():
                session.run(f"DROP CONSTRAINT {name}").consume()
            for name in session.run("SHOW INDEXES YIELD name, type WHERE type <> 'LOOKUP' RETURN name").value():
                session.run(f"DROP INDEX {name}").consume()


@pytest.fixture(params=["kuzu", "neo4j"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty store of each backend."""
    if request.param == "kuzu":
        return f"kuzu:{tmp_path / 'catalog.kuzu'}"
    url = request.getfixturevalue("neo4j_url")
    wipe_neo4j(url)
    return url


@pytest.fixture
def catalog(store_url: str) -> Iterator[Catalog]:
    with Catalog(store_url) as cat:
        yield cat


@pytest.fixture(scope="module")
def lm():
    """The shipped toy model, loaded once per test module (torch is imported only by the modules that ask)."""
    from circuitdb.discovery.models import load_model

    return load_model("toy")


@pytest.fixture(scope="module")
def digits(lm):
    """32 digits prompts the toy model solves."""
    from circuitdb.discovery.tasks import build_task

    return build_task("digits", lm, n_prompts=32)


@pytest.fixture(scope="session")
def examples() -> Path:
    return Path(__file__).parent.parent / "examples"


@pytest.fixture
def workdir(tmp_path: Path, examples: Path) -> Path:
    """A scratch folder holding a copy of the shipped examples."""
    shutil.copytree(examples, tmp_path / "examples")
    return tmp_path
