"""The `--device` of a job, checked before any model loads: a device torch knows, and one this machine has."""

from __future__ import annotations

from circuitdb.errors import CircuitdbError

DEVICES = ("cpu", "cuda", "mps", "xpu")


def check_device(device: object) -> str:
    """`device` (cpu, cuda, cuda:N, mps, xpu, xpu:N) if this machine has it; else one line saying what it has."""
    import torch

    if not isinstance(device, str):
        raise CircuitdbError(f"--device must be text such as cpu or cuda:0, got {device!r}")
    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError):
        parsed = None
    if parsed is None or parsed.type not in DEVICES:
        raise CircuitdbError(f"--device {device!r} is not a device (use cpu, cuda, cuda:N, mps or xpu)")
    if parsed.type == "cpu":
        return device
    backend = torch.backends.mps if parsed.type == "mps" else getattr(torch, parsed.type, None)
    count = (1 if backend.is_available() else 0) if parsed.type == "mps" else _count(backend)
    if count == 0:
        raise CircuitdbError(f"--device {device}: this machine has no {parsed.type.upper()} device that torch can use "
                             f"(torch {torch.__version__}); use --device cpu")
    if parsed.index is not None and parsed.index >= count:
        raise CircuitdbError(f"--device {device}: this machine has {count} {parsed.type.upper()} device"
                             f"{'s' if count > 1 else ''} ({parsed.type}:0..{parsed.type}:{count - 1})")
    return device


def _count(backend: object) -> int:
    """How many devices a torch backend module (torch.cuda, torch.xpu) sees; 0 when it is missing or has none."""
    try:
        return backend.device_count() if backend is not None and backend.is_available() else 0
    except RuntimeError:
        return 0
