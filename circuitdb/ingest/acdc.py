"""Importer for ACDC circuits: `save_subgraph`'s `torch.save`d {(receiver hook, index, sender hook, index): present}
and `save_edges`' pickled [((receiver hook, TorchIndex, sender hook, TorchIndex), effect size)], read without ACDC or
torch. Edges between nodes become EAP-IG edges; ACDC's edges inside a node (q/k/v input to q/k/v, MLP in to out) are
how it wires a node and are dropped."""

from __future__ import annotations

import io
import pickle
import re
from pathlib import Path
from typing import Any

from circuitdb.domain import Edge, Model, Run, Task
from circuitdb.errors import CircuitdbError
from circuitdb.ingest.files import provenance, read_bytes
from circuitdb.ingest.torchfile import STORAGES, read_torch_file
from circuitdb.lazy import np

SENDER = re.compile(r"^(?:blocks\.(\d+)\.(attn\.hook_result|hook_mlp_out|hook_resid_pre)|hook_embed|hook_pos_embed)$")
RECEIVER = re.compile(r"^blocks\.(\d+)\.hook_(q_input|k_input|v_input|mlp_in|resid_mid|resid_post)$")
INSIDE = re.compile(r"^blocks\.\d+\.(attn\.hook_[qkv]|attn\.hook_result|hook_mlp_out)$")  # receivers inside a node


def read_acdc(path: Path | str, model: Model, task: Task, method: str = "acdc", threshold: float | None = None,
              ablation: str = "patch", metric: str = "kl") -> Run:
    """The present edges of an ACDC subgraph (or its saved edge list, with each edge's effect size as its weight and
    score) as a run."""
    raw = read_bytes(path)
    data = read_torch_file(path, raw) if raw[:2] == b"PK" else _read_pickle(path, raw)
    if isinstance(data, dict):
        items = [(key, bool(present), None) for key, present in data.items()]
    elif isinstance(data, list) and all(isinstance(x, tuple) and len(x) == 2 for x in data):
        items = [(tuple(getattr(part, "hashable_tuple", part) for part in key), True, effect) for key, effect in data]
    else:
        raise CircuitdbError(f"{path}: not an ACDC subgraph (a dict of edge keys -> present) or edge list")
    last = max((int(m.group(1)) for key, *_ in items if isinstance(key, tuple) and key
                and isinstance(key[0], str) and (m := RECEIVER.match(key[0])) and m.group(2) == "resid_post"), default=None)
    if last is None:
        raise CircuitdbError(f"{path}: no blocks.L.hook_resid_post receiver: cannot tell where the logits are")
    edges: dict[tuple[str, str, str], float] = {}
    for key, present, effect in items:
        edge = _edge(path, key, last)
        if edge is not None and present:
            edges.setdefault(edge, _effect(path, key, effect))
    if not edges:
        raise CircuitdbError(f"{path}: no edge between nodes is present; nothing to import")
    heads = 1 + max((int(n.split(".h")[1]) for e in edges for n in e[:2] if n.startswith("a")), default=0)
    shape = Model(model.name, model.n_layers or last + 1, model.n_heads or (heads if isinstance(data, dict) else None),
                  model.d_model, model.source)
    found = [Edge(s, r, w, x) for (s, r, x), w in edges.items()]
    members = {end: None for e in found for end in (e.sender, e.receiver)}
    scored = {e.name: e.weight for e in found} if isinstance(data, list) else {}
    return Run(model=shape, task=task, method=method, threshold=threshold, ablation=ablation, metric=metric,
               components=members, edges=found, params=provenance(path, raw, "ACDC"), scores=scored)


def _edge(path: Path | str, key: Any, last: int) -> tuple[str, str, str] | None:
    """(sender, receiver, q/k/v) of one ACDC key, None for an edge inside a node."""
    if not (isinstance(key, tuple) and len(key) == 4 and isinstance(key[0], str) and isinstance(key[2], str)):
        raise CircuitdbError(f"{path}: {str(key)[:80]} is not an ACDC edge key (receiver, index, sender, index)")
    receiver_hook, receiver_index, sender_hook, sender_index = key
    if INSIDE.match(receiver_hook):
        return None
    into, out = RECEIVER.match(receiver_hook), SENDER.match(sender_hook)
    if into is None or out is None:
        raise CircuitdbError(f"{path}: unknown ACDC hook in {str(key)[:100]}")
    layer, kind = int(into.group(1)), into.group(2)
    if kind == "resid_post":
        if layer != last:
            raise CircuitdbError(f"{path}: blocks.{layer}.hook_resid_post receives edges, but the last block is {last}")
        receiver, qkv = "logits", ""
    elif kind in ("mlp_in", "resid_mid"):  # older ACDC runs call the MLP's input hook_resid_mid
        receiver, qkv = f"m{layer}", ""
    else:
        receiver, qkv = f"a{layer}.h{_head(path, key, receiver_index)}", kind[0]
    if out.group(2) is None or out.group(2) == "hook_resid_pre":
        sender = "input"
    elif out.group(2) == "hook_mlp_out":
        sender = f"m{out.group(1)}"
    else:
        sender = f"a{out.group(1)}.h{_head(path, key, sender_index)}"
    return sender, receiver, qkv


def _head(path: Path | str, key: tuple, index: Any) -> int:
    """The head of a TorchIndex tuple `(None, None, h)`."""
    if isinstance(index, tuple) and len(index) == 3 and isinstance(index[2], int) and index[2] >= 0:
        return index[2]
    raise CircuitdbError(f"{path}: {str(key)[:100]}: a head's index must be (None, None, head)")


def _effect(path: Path | str, key: tuple, effect: Any) -> float:
    """An effect size (a number or 0-d tensor; absent: 0) as a finite float."""
    if effect is None:
        return 0.0
    value = float(np.asarray(effect).reshape(-1)[0]) if isinstance(effect, np.ndarray) else effect
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        raise CircuitdbError(f"{path}: {str(key)[:100]}: effect size {effect!r} is not a finite number")
    return float(value)


class _TorchIndex:
    """ACDC's TorchIndex as its pickle restores it (`hashable_tuple`, `as_index`), without ACDC."""


class _EdgeListUnpickler(pickle.Unpickler):
    """`save_edges`' plain pickle: ACDC's TorchIndex and torch tensors (pickled storages) only."""

    def __init__(self, path: Path | str, raw: bytes) -> None:
        super().__init__(io.BytesIO(raw))
        self.path = path

    def find_class(self, module: str, name: str) -> Any:
        allowed = {("acdc.TLACDCEdge", "TorchIndex"): _TorchIndex, ("builtins", "slice"): slice,
                   ("torch._utils", "_rebuild_tensor_v2"): _tensor, ("torch.storage", "_load_from_bytes"): _storage,
                   ("_codecs", "encode"): lambda text, encoding: text.encode(encoding),
                   ("collections", "OrderedDict"): dict}
        if (module, name) not in allowed:
            raise CircuitdbError(f"{self.path}: holds a {module}.{name}; an ACDC edge list holds TorchIndex keys and "
                                 "effect sizes only (circuitdb never runs code from a file)")
        return allowed[(module, name)]


def _read_pickle(path: Path | str, raw: bytes) -> Any:
    if not raw:
        raise CircuitdbError(f"{path}: an empty file, not an ACDC subgraph or edge list")
    try:
        return _EdgeListUnpickler(path, raw).load()
    except CircuitdbError:
        raise
    except Exception as exc:  # any malformed pickle: one line, never a traceback
        raise CircuitdbError(f"{path}: not an ACDC file (neither a torch.save archive nor a readable pickle: {exc})") from None


def _tensor(storage: np.ndarray, offset: int, size: tuple, *_: Any) -> np.ndarray:
    return storage[offset: offset + int(np.prod(size, dtype=np.int64))].reshape(size)


class _LegacyUnpickler(pickle.Unpickler):
    """One storage as `torch.save(..., _use_new_zipfile_serialization=False)` writes it inside a pickled tensor."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch" and name in STORAGES:
            return name
        raise pickle.UnpicklingError(f"unexpected {module}.{name} in a pickled storage")

    def persistent_load(self, pid: Any) -> tuple[str, str]:
        return pid[1], pid[2]  # storage type, key


def _storage(raw: bytes) -> np.ndarray:
    """The values of a pickled storage: magic, protocol, system info, the storage's id, its keys, then per key the
    element count (int64) and the raw elements."""
    stream = io.BytesIO(raw)
    for _ in range(3):
        pickle.Unpickler(stream).load()
    kind, _key = _LegacyUnpickler(stream).load()
    pickle.Unpickler(stream).load()
    count = int(np.frombuffer(stream.read(8), "<i8")[0])
    dtype = np.dtype(STORAGES[kind])
    return np.frombuffer(stream.read(count * dtype.itemsize), dtype)
