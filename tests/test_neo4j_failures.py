"""Neo4j failures a team meets (bad URLs, a server that never answers, a server lost mid-write) are one line naming the
cause, within the stated times, with the driver's retry notices kept off stderr."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from conftest import wipe_neo4j

from circuitdb.errors import CircuitdbError, StoreError
from circuitdb.store.base import open_store

HERE = Path(__file__).parent


class Proxy:
    """A TCP forwarder to the test server that can be cut, standing for a server that dies or a network that drops."""

    def __init__(self, target: tuple[str, int], answer: bool = True) -> None:
        self.target, self.answer = target, answer
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.sockets: list[socket.socket] = [self.server]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            self.sockets.append(client)
            if self.answer:
                upstream = socket.create_connection(self.target)
                self.sockets.append(upstream)
                for a, b in ((client, upstream), (upstream, client)):
                    threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass

    def cut(self) -> None:
        for s in self.sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()


@pytest.fixture
def silent() -> Iterator[Proxy]:
    proxy = Proxy(("127.0.0.1", 1), answer=False)
    yield proxy
    proxy.cut()


@pytest.mark.parametrize(("url", "says"), [
    ("bolt://127.0.0.1:99999", "port must be a number in 1..65535"),
    ("bolt://127.0.0.1:0", "port must be a number in 1..65535"),
    ("bolt://127.0.0.1:7687?x=1", "bad Neo4j URL"),
    ("bolt://127.0.0.1:1", "cannot reach Neo4j at bolt://127.0.0.1:1"),
])
def test_bad_or_unreachable_urls(url: str, says: str) -> None:
    started = time.monotonic()
    with pytest.raises(CircuitdbError, match=says.replace(".", r"\.")):
        open_store(url)
    assert time.monotonic() - started < 10


def test_a_server_that_never_answers_fails_within_seconds(silent: Proxy) -> None:
    started = time.monotonic()
    with pytest.raises(StoreError, match="cannot reach Neo4j"):
        open_store(f"bolt://127.0.0.1:{silent.port}")
    assert time.monotonic() - started < 10  # the driver's own default waits 60 s


def test_a_server_lost_mid_write_is_one_line_and_no_half_run(neo4j_url: str) -> None:
    """The connection is cut while a big run is being written: the writer says so in one line, the run is absent."""
    wipe_neo4j(neo4j_url)
    parts = urlsplit(neo4j_url)
    proxy = Proxy((parts.hostname, parts.port))
    url = f"bolt://127.0.0.1:{proxy.port}"
    open_store(url).close()  # schema in place, so the write itself is what breaks
    proc = subprocess.Popen([sys.executable, str(HERE / "big_run.py"), url, "150000"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    time.sleep(0.5)
    started = time.monotonic()
    proxy.cut()
    out, err = proc.communicate(timeout=90)
    print(f"writer failed {time.monotonic() - started:.1f} s after the cut")
    assert time.monotonic() - started < 45  # the driver's retry budget (DRIVER_RETRY_S) plus its back-off and the exit
    assert proc.returncode != 0 and "done" not in out
    lines = err.strip().splitlines()
    assert lines and ("cannot reach Neo4j" in lines[-1] or "broke during the commit" in lines[-1]), err
    assert not any("retried" in line for line in lines), err  # driver retry notices stay off stderr
    store = open_store(neo4j_url)
    try:
        assert store.read("MATCH (r:Run) RETURN count(r) AS n")[0]["n"] == 0
    finally:
        store.close()
