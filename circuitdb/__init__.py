"""circuitdb: a graph catalog of transformer circuits (heads, MLPs, SAE features, weighted edges) and their overlaps."""

from circuitdb.catalog import Catalog
from circuitdb.domain import Component, Edge, Model, Run, Task, canonical, parse_component
from circuitdb.errors import CircuitdbError
from circuitdb.queries.selection import RunInfo, Selection

__all__ = [
    "Catalog",
    "CircuitdbError",
    "Component",
    "Edge",
    "Model",
    "Run",
    "RunInfo",
    "Selection",
    "Task",
    "canonical",
    "parse_component",
]
__version__ = "0.1.0"
