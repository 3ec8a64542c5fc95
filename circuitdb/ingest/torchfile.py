"""Read a `torch.save` file without torch: tensors come back as numpy arrays. Only tensors, plain containers and
builtins are accepted, so a file cannot run code the way an unrestricted unpickle lets it (ACDC and auto-circuit save
their circuits this way)."""

from __future__ import annotations

import io
import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

from circuitdb.errors import CircuitdbError
from circuitdb.lazy import np

# torch's storage classes, as its pickles name them, and their element types (bfloat16: raw 16-bit words, widened below)
STORAGES = {"FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2", "BFloat16Storage": "<u2",
            "LongStorage": "<i8", "IntStorage": "<i4", "ShortStorage": "<i2", "CharStorage": "i1", "ByteStorage": "u1",
            "BoolStorage": "?"}


def _rebuild_tensor(storage: np.ndarray, offset: int, size: tuple, stride: tuple, *_: Any) -> np.ndarray:
    """torch._utils._rebuild_tensor_v2: a view of the storage at `offset` with `size` and `stride` (in elements)."""
    view = np.lib.stride_tricks.as_strided(storage[offset:], shape=tuple(size),
                                           strides=tuple(s * storage.itemsize for s in stride))
    return view.copy()


def _rebuild_parameter(data: np.ndarray, *_: Any) -> np.ndarray:
    return data


ALLOWED = {("collections", "OrderedDict"): OrderedDict, ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
           ("torch._utils", "_rebuild_parameter"): _rebuild_parameter, ("builtins", "set"): set,
           ("builtins", "frozenset"): frozenset, ("builtins", "slice"): slice}


class _Unpickler(pickle.Unpickler):
    """Unpickles a torch.save archive's data.pkl with storages read from the archive as numpy arrays."""

    def __init__(self, path: Path, archive: zipfile.ZipFile, prefix: str) -> None:
        super().__init__(archive.open(f"{prefix}data.pkl"))
        self.path, self.archive, self.prefix = path, archive, prefix

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch" and name in STORAGES:
            return name
        if (module, name) in ALLOWED:
            return ALLOWED[(module, name)]
        raise CircuitdbError(f"{self.path}: holds a {module}.{name}; circuitdb reads tensors, numbers, text and plain "
                             "containers only (it never runs code from a file)")

    def persistent_load(self, pid: Any) -> np.ndarray:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and pid[1] in STORAGES):
            raise CircuitdbError(f"{self.path}: an unknown kind of stored tensor data ({str(pid)[:60]})")
        raw = self.archive.read(f"{self.prefix}data/{pid[2]}")
        values = np.frombuffer(raw, dtype=STORAGES[pid[1]])
        if pid[1] == "BFloat16Storage":
            values = (values.astype(np.uint32) << 16).view(np.float32)
        return values


def read_torch_file(path: Path | str, raw: bytes) -> Any:
    """The object the `torch.save` file at `path` holds, given its bytes `raw` (read once by the caller, who also
    hashes them), its tensors as numpy arrays; one clear line for anything else."""
    path = Path(path)
    try:
        archive = zipfile.ZipFile(io.BytesIO(raw))
    except zipfile.BadZipFile:
        raise CircuitdbError(f"{path}: not a torch.save file (torch >= 1.6 writes a zip archive; re-save an older "
                             "file with a current torch)") from None
    with archive:
        pickles = [n for n in archive.namelist() if n.endswith("data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            raise CircuitdbError(f"{path}: a zip file, but not one torch.save wrote (no data.pkl)")
        try:
            return _Unpickler(path, archive, pickles[0][: -len("data.pkl")]).load()
        except CircuitdbError:
            raise
        except (pickle.UnpicklingError, EOFError, KeyError, ValueError, TypeError, zipfile.BadZipFile) as exc:
            raise CircuitdbError(f"{path}: a damaged torch.save file ({exc})") from None
