"""Rows a store writes for feature relations and steering vectors, checked before any transaction opens."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from circuitdb.domain import Relation, SteeringVector, check_int, check_name, parse_component
from circuitdb.errors import CircuitdbError

LINK_KINDS = ("DECOMPOSES_INTO", "SHIFTS")


@dataclass
class RelationRows:
    """Relations to write; stored relations with one of `sources` are replaced (a re-run replaces its own output)."""

    components: list[dict]
    relations: list[dict]
    sources: list[str]


@dataclass
class SteeringRows:
    """A steering vector node and, optionally, its links of one kind (replacing that kind's earlier links)."""

    vector: dict
    components: list[dict]
    links: list[dict]
    kind: str | None


def _finite(value: float, what: str) -> float:
    """`value` as a float, or CircuitdbError naming `what`."""
    if not (isinstance(value, (int, float)) and math.isfinite(value)):
        raise CircuitdbError(f"{what} must be a finite number, got {value!r}")
    return float(value)


def _prop(key: str, value: object, name: str) -> object:
    """A link property as stored: `method` text, `layer` an integer, anything else a finite float."""
    if key == "method":
        return str(value)
    if key == "layer":
        return int(value)
    return _finite(value, f"link {name} {key}")


def _component(model: str, name: str) -> dict:
    """The Component row of a (canonicalised) name in `model`."""
    return parse_component(name).row(model)


def _unique(rows: list[dict]) -> list[dict]:
    """Rows with distinct ids, last one wins."""
    return list({r["id"]: r for r in rows}.values())


def relation_rows(relations: list[Relation]) -> RelationRows:
    """Canonical ids, one row per (sender, receiver, kind, source), components each once."""
    components, out = [], {}
    for row, rel in enumerate(relations):
        if not rel.kind or not rel.source:
            raise CircuitdbError(f"relation {row}: kind and source must be set")
        for what in ("sender_model", "receiver_model", "kind", "source"):
            check_name(getattr(rel, what), f"relation {row} {what}")
        ends = [_component(rel.sender_model, rel.sender), _component(rel.receiver_model, rel.receiver)]
        components += ends
        key = (ends[0]["id"], ends[1]["id"], rel.kind, rel.source)
        out[key] = {"from": key[0], "to": key[1], "kind": rel.kind, "source": rel.source,
                    "weight": _finite(rel.weight, f"relation {row} weight")}
    return RelationRows(_unique(components), list(out.values()), sorted({r.source for r in relations}))


def steering_rows(vector: SteeringVector, kind: str | None = None, links: list[dict] | None = None) -> SteeringRows:
    """The vector node, and links of `kind` given as dicts with `name` (a component of the vector's model) and the
    link's properties: `coef`, `method` for DECOMPOSES_INTO; `delta`, `layer`, `coef` for SHIFTS."""
    check_name(vector.model, "model name")
    check_name(vector.name, "steering vector name")
    check_int(vector.layer, f"steering vector {vector.name} layer")
    if not isinstance(vector.description, str):
        raise CircuitdbError(f"steering vector {vector.name}: description must be text, got {vector.description!r}")
    if not vector.values or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in vector.values):
        raise CircuitdbError(f"steering vector {vector.name}: values must be a non-empty list of finite numbers")
    if kind is not None and kind not in LINK_KINDS:
        raise CircuitdbError(f"unknown steering link kind {kind!r}")
    node = {"id": vector.id, "model_id": vector.model, "name": vector.name, "layer": vector.layer,
            "description": vector.description, "dim": len(vector.values), "norm": vector.norm,
            "vector": json.dumps([round(float(v), 7) for v in vector.values])}
    components, rows = [], []
    for link in links or []:
        comp = _component(vector.model, link["name"])
        components.append(comp)
        rows.append({"to": comp["id"], **{k: _prop(k, v, link["name"]) for k, v in link.items() if k != "name"}})
    return SteeringRows(node, _unique(components), rows, kind)
