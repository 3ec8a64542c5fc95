"""Start a real, throw-away Neo4j 5.26 community server for the test suite.

The server runs in a JVM (tests/neo4j/Launcher.java, using the neo4j-harness
jars resolved by Maven from tests/neo4j/pom.xml) with Bolt on a free loopback
port and auth disabled: connect with ``auth=None``.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path

HERE = Path(__file__).resolve().parent
POM = HERE / "neo4j" / "pom.xml"
LAUNCHER = HERE / "neo4j" / "Launcher.java"
DEFAULT_CACHE_DIR = HERE.parent / ".cache" / "neo4j"

_scratch_dirs: dict[int, Path] = {}


def java_available() -> bool:
    """True if java, javac and mvn are all on PATH."""
    return all(shutil.which(tool) for tool in ("java", "javac", "mvn"))


def _fingerprint() -> str:
    digest = hashlib.sha256()
    for path in (POM, LAUNCHER):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _tail(text: str, lines: int = 12) -> str:
    """Last non-empty lines of text, joined into one line."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)  # mvn may emit colour codes even with -B
    kept = [line.strip() for line in text.splitlines() if line.strip() not in ("", "[ERROR]")]
    return " | ".join(kept[-lines:])


def _run(cmd: list[str], what: str) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        output = _tail(result.stdout + "\n" + result.stderr)
        raise RuntimeError(f"{what} failed (exit {result.returncode}): {output}")


def build(cache_dir: Path = DEFAULT_CACHE_DIR) -> Path:
    """Resolve the Neo4j jars into cache_dir/lib and compile the launcher into
    cache_dir/classes, unless already done for the current pom.xml + Launcher.java.
    Safe to call concurrently (file lock). Returns cache_dir."""
    cache_dir = Path(cache_dir).resolve()
    cache_dir.mkdir(parents=True, exist_ok=True)
    stamp, lib, classes = cache_dir / "build.stamp", cache_dir / "lib", cache_dir / "classes"
    fingerprint = _fingerprint()
    with open(cache_dir / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.is_file() and stamp.read_text().strip() == fingerprint and (classes / "Launcher.class").is_file():
            return cache_dir
        if not java_available():
            raise RuntimeError("cannot build the Neo4j test server: java, javac and mvn must be on PATH")
        stamp.unlink(missing_ok=True)
        for folder in (lib, classes):
            shutil.rmtree(folder, ignore_errors=True)
        _run(
            [
                "mvn",
                "-q",
                "-B",
                "-Dstyle.color=never",
                "-f",
                str(POM),
                "dependency:copy-dependencies",
                f"-DoutputDirectory={lib}",
            ],
            "mvn dependency:copy-dependencies",
        )
        _run(["javac", "-d", str(classes), "-cp", str(lib / "*"), str(LAUNCHER)], "javac Launcher.java")
        stamp.write_text(fingerprint + "\n")
    return cache_dir


def start(cache_dir: Path = DEFAULT_CACHE_DIR, timeout: float = 120) -> tuple[str, subprocess.Popen]:
    """Build if needed, start a server and return (bolt uri, process) once Bolt is up."""
    cache_dir = build(cache_dir)
    # Private java.io.tmpdir: the harness puts its server folder (and a stray log4j xml) there.
    scratch = Path(tempfile.mkdtemp(prefix="circuitdb-neo4j-"))
    classpath = os.pathsep.join([str(cache_dir / "classes"), str(cache_dir / "lib" / "*")])
    proc = subprocess.Popen(
        [
            "java",
            f"-Xmx{os.environ.get('CIRCUITDB_TEST_NEO4J_HEAP', '512m')}",
            f"-Djava.io.tmpdir={scratch}",
            f"-Dcircuitdb.pagecache.mb={os.environ.get('CIRCUITDB_TEST_NEO4J_PAGECACHE_MB', '64')}",
            "-cp",
            classpath,
            "Launcher",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=scratch,
    )
    _scratch_dirs[proc.pid] = scratch
    stdout, stderr = proc.stdout, proc.stderr
    assert stdout is not None and stderr is not None

    stderr_tail: deque[str] = deque(maxlen=20)
    stderr_reader = threading.Thread(target=lambda: stderr_tail.extend(stderr), daemon=True)
    stderr_reader.start()
    ready: queue.Queue[str] = queue.Queue()

    def read_stdout() -> None:
        for line in stdout:
            if line.startswith("BOLT "):
                ready.put(line.split(" ", 1)[1].strip())
        ready.put("")  # EOF: the process is exiting

    threading.Thread(target=read_stdout, daemon=True).start()
    try:
        uri = ready.get(timeout=timeout)
    except queue.Empty:
        uri, reason = "", f"did not report Bolt within {timeout:.0f}s"
    else:
        reason = "exited before Bolt was ready"
    if uri:
        return uri, proc
    if proc.poll() is None:
        proc.kill()  # hung during startup: closing stdin would not stop it
    stop(proc)
    stderr_reader.join(timeout=5)
    raise RuntimeError(f"Neo4j test server {reason} (exit code {proc.returncode}): {_tail(''.join(stderr_tail))}")


def stop(proc: subprocess.Popen) -> None:
    """Close the server's stdin (clean shutdown), wait up to 30 s, kill otherwise."""
    try:
        if proc.stdin and not proc.stdin.closed:
            proc.stdin.close()
    except OSError:
        pass
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    scratch = _scratch_dirs.pop(proc.pid, None)
    if scratch is not None:
        shutil.rmtree(scratch, ignore_errors=True)


def _smoke(uri: str) -> None:
    try:
        import neo4j
    except ImportError:
        print("neo4j driver not installed; skipping smoke check")
        return
    with neo4j.GraphDatabase.driver(uri, auth=None) as driver:
        records, _, _ = driver.execute_query("RETURN 1 AS one")
        if records[0]["one"] != 1:
            raise RuntimeError(f"smoke check failed: {records}")
    print("smoke check passed: RETURN 1")


if __name__ == "__main__":
    began = time.monotonic()
    build()
    built = time.monotonic()
    uri, server = start()
    print(uri)
    print(f"build {built - began:.1f}s, start {time.monotonic() - built:.1f}s", file=sys.stderr)
    try:
        _smoke(uri)
    finally:
        stop(server)
