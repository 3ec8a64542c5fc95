"""The discovery methods, one registry: each a `Method` record that the one job loop (`jobs.discover`) runs."""

from circuitdb.discovery.methods.base import Method
from circuitdb.discovery.methods.eap import EAP, EAP_IG, PATH
from circuitdb.discovery.methods.prune import PRUNE
from circuitdb.discovery.methods.sae_attr import SAE_ATTR
from circuitdb.discovery.spec import METHOD_CHECKS

METHODS: dict[str, Method] = {m.name: m for m in (PRUNE, PATH, EAP, EAP_IG, SAE_ATTR)}
if set(METHODS) != set(METHOD_CHECKS):  # jobs are checked without torch, by spec.py's table of the same methods
    raise ImportError("discovery.spec.METHOD_CHECKS must name every method of the registry")
