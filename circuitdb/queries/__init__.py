"""Named Cypher queries (the .cypher files beside this module) and the functions that run and shape them."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

from circuitdb.store.base import Store


@cache
def cypher(name: str, backend: str = "") -> str:
    """The text of query `name`: `cypher/<name>.<backend>.cypher` where the dialects differ, else `<name>.cypher`."""
    folder = resources.files("circuitdb.queries").joinpath("cypher")
    special = folder.joinpath(f"{name}.{backend}.cypher")
    return (special if backend and special.is_file() else folder.joinpath(f"{name}.cypher")).read_text()


def run_query(store: Store, name: str, **params: Any) -> list[dict[str, Any]]:
    """Run the named query on `store` with `params` passed as Cypher parameters."""
    return store.read(cypher(name, store.backend), params)
