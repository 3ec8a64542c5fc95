"""The `--device` of a job, checked before any model loads and, where it can be, before torch loads: a device torch
knows, and one this machine has."""

from __future__ import annotations

import ctypes
import re

from circuitdb.errors import CircuitdbError

DEVICE = re.compile(r"(cpu|cuda|mps|xpu)(?::(\d{1,4}))?")
# the CUDA driver (NVIDIA) or HIP runtime (AMD, which torch also calls cuda): without either, torch sees no CUDA device
GPU_LIBRARIES = ("libcuda.so.1", "libcuda.so", "nvcuda.dll", "libamdhip64.so", "libamdhip64.so.6", "amdhip64.dll")


def check_device(device: object) -> str:
    """`device` (cpu, cuda, cuda:N, mps, xpu, xpu:N) if this machine has it; else one line saying what it has."""
    found = DEVICE.fullmatch(device) if isinstance(device, str) else None
    if found is None:
        raise CircuitdbError(f"--device {device!r} is not a device (use cpu, cuda, cuda:N, mps or xpu)")
    kind, index = found.group(1), found.group(2)
    if kind == "cpu":
        return device
    if kind == "cuda" and not _gpu_library():
        raise CircuitdbError(f"--device {device}: this machine has no CUDA GPU (no GPU driver found); use --device cpu")
    import torch  # the job loads it next anyway; only torch knows which devices it can use

    if kind == "mps":
        count = int(torch.backends.mps.is_available())
    else:
        backend = getattr(torch, kind, None)
        try:
            count = backend.device_count() if backend is not None and backend.is_available() else 0
        except RuntimeError:
            count = 0
    if count == 0:
        raise CircuitdbError(f"--device {device}: this machine has no {kind.upper()} device that torch "
                             f"{torch.__version__} can use; use --device cpu")
    if index is not None and int(index) >= count:
        raise CircuitdbError(f"--device {device}: this machine has {count} {kind.upper()} device"
                             f"{'s' if count > 1 else ''} ({kind}:0..{kind}:{count - 1})")
    return device


def _gpu_library() -> bool:
    """Whether a GPU driver library loads (without torch: a missing driver is known in a millisecond)."""
    for name in GPU_LIBRARIES:
        try:
            ctypes.CDLL(name)
        except OSError:
            continue
        return True
    return False
