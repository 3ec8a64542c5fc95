"""Who holds a lock on a file, for one truthful line when the embedded catalog is busy: the processes with a lock on it
(Linux's /proc/locks, flock and POSIX locks alike) and their command lines. Elsewhere nothing is known and the line
says less."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROC_LOCKS = Path("/proc/locks")


@dataclass(frozen=True)
class Holder:
    """A process holding a lock on the file: its pid, whether it writes (an exclusive lock), its command line."""

    pid: int
    writes: bool
    command: str

    def __str__(self) -> str:
        return f"process {self.pid}" + (f" ({self.command})" if self.command else "")


def holders(path: Path | str) -> list[Holder]:
    """The processes other than this one that hold a lock on `path`, writers first; empty when unknown."""
    try:
        st = os.stat(path)
        lines = PROC_LOCKS.read_text().splitlines()
    except OSError:
        return []
    exact = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    found: dict[int, bool] = {}
    for exact_only in (True, False):  # some file systems (overlays) report another device number: then the inode alone
        for line in lines:
            parts = line.split()
            if len(parts) < 6 or parts[1] == "->":  # `N: -> FLOCK ...` is a process waiting, not holding
                continue
            mode, pid, where = parts[3], parts[4], parts[5]
            matches = where == exact if exact_only else where.rsplit(":", 1)[-1] == str(st.st_ino)
            if matches and pid.lstrip("-").isdigit() and int(pid) not in (os.getpid(), -1, 0):
                found[int(pid)] = found.get(int(pid), False) or mode == "WRITE"
        if found:
            break
    return sorted((Holder(pid, writes, command_of(pid)) for pid, writes in found.items()), key=lambda h: (not h.writes, h.pid))


def command_of(pid: int, width: int = 70) -> str:
    """A short command line of process `pid` (`python -c … import json runs.json`), or '' when it cannot be read."""
    try:
        argv = [a for a in (Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")) if a]
    except OSError:
        return ""
    if not argv:
        return ""
    words = [os.path.basename(argv[0])]
    rest = argv[1:]
    if rest[:1] == ["-c"] and len(rest) > 1:  # a `python -c CODE ...`: the code is noise, its arguments are not
        words.append("-c …")
        rest = rest[2:]
    text = " ".join(words + rest)
    return text if len(text) <= width else text[: width - 1] + "…"


def situation(path: Path | str, lock: Path | str) -> str:
    """What holds the embedded catalog `path`, in words: circuitdb processes on its sidecar `lock`, or another program
    holding the database file itself."""
    ours = holders(lock)
    writers = [h for h in ours if h.writes]
    if writers:
        return f"circuitdb {writers[0]} is writing it"
    if ours:
        more = f" and {len(ours) - 1} more" if len(ours) > 1 else ""
        return f"circuitdb {ours[0]}{more} {'are' if more else 'is'} reading it (a write waits for readers)"
    theirs = holders(path)
    if theirs:
        return f"{theirs[0]} has the database open without circuitdb's lock (another program, not circuitdb)"
    return "another process holds it"
