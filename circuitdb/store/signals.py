"""Ctrl-C and SIGTERM never cut a write in half: while a store commits, both signals are only noted; once the write is
done the process stops with `Interrupted`, which says truthfully what was written."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

HELD = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """A signal arrived during a write; raised after the write committed (or rolled back on its own error)."""

    def __init__(self, signum: int, what: str) -> None:
        self.signum = signum
        super().__init__(f"interrupted by {signal.Signals(signum).name} while {what}: that write finished first, and "
                         "everything written before the interrupt is complete")


@contextmanager
def signals_held(what: str) -> Iterator[None]:
    """Note SIGINT/SIGTERM during the block instead of acting; raise `Interrupted` after it ends normally."""
    if threading.current_thread() is not threading.main_thread():  # handlers can only be set in the main thread
        yield
        return
    caught: list[int] = []
    previous = {s: signal.signal(s, lambda signum, frame: caught.append(signum)) for s in HELD}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if caught:
        raise Interrupted(caught[0], what)
