"""`circuitdb serve`: a read-only web view of a catalog. Every API route calls one `Catalog` function and returns its
result's `.to_dict()` (what the CLI's `--json` prints); the pages are static files (plain ES modules and a vendored,
pinned cytoscape.js) that draw those answers. No logic of its own, nothing fetched from outside this machine."""

from __future__ import annotations

import mimetypes
import threading
from collections.abc import Callable
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from circuitdb.catalog import Catalog
from circuitdb.errors import CircuitdbError
from circuitdb.queries.results import Result
from circuitdb.queries.selection import Selection
from circuitdb.store.base import store_url

STATIC = resources.files("circuitdb.serve").joinpath("static")
PAGES = ("runs", "run", "compare", "ladder", "similarity", "features", "steering")
LOOPBACK = ("127.0.0.1", "localhost", "::1")
# the pages may load only what this server serves: no CDN, no font, no request leaves the machine
POLICY = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; connect-src 'self'; "
          "object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
mimetypes.add_type("text/javascript", ".mjs")
mimetypes.add_type("text/javascript", ".js")


class Reader:
    """The one read-only catalog the requests share, one question at a time. The embedded file is let go once no
    question has come for `idle` seconds (a page asks a few in a row), so `circuitdb discover` can write beside the
    server: it waits at most that long, and the server waits for a writer as any reader does."""

    def __init__(self, url: str | None, wait: float = 10, idle: float = 0.5) -> None:
        self.catalog = Catalog(url, read_only=True, create=False, wait=wait, lazy=True)
        self.lock = threading.Lock()
        self.idle = idle
        self.asked = 0  # questions so far: a release is due only if none came since it was planned
        self.timer: threading.Timer | None = None

    def __call__(self, ask: Callable[[Catalog], Result]) -> Result:
        with self.lock:
            self.asked += 1
            try:
                return ask(self.catalog)
            except BaseException:
                self.catalog.release()
                raise
            finally:
                self._release_later(self.asked)

    def _release_later(self, asked: int) -> None:
        def release() -> None:
            with self.lock:
                if self.asked == asked:
                    self.catalog.release()

        self.timer = threading.Timer(self.idle, release)
        self.timer.daemon = True
        self.timer.start()


def _selection(request: Request) -> Selection:
    """A selection from query parameters named as the CLI's options (`?model=toy&task=digits&run=ab12`)."""
    q = request.query_params
    try:
        thresholds = tuple(float(t) for t in q.getlist("threshold"))
    except ValueError:
        raise CircuitdbError(f"threshold must be a number, got {q.getlist('threshold')}") from None
    return Selection(models=tuple(q.getlist("model")), tasks=tuple(q.getlist("task")), thresholds=thresholds,
                     methods=tuple(q.getlist("method")), ablations=tuple(q.getlist("ablation")),
                     metrics=tuple(q.getlist("metric")), directions=tuple(q.getlist("direction")),
                     run_ids=tuple(q.getlist("run")))


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "") not in ("", "0", "false", "no")


def _number(request: Request, name: str, default: float, kind: type = int) -> Any:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    try:
        return kind(raw)
    except ValueError:
        raise CircuitdbError(f"{name} must be a number, got {raw!r}") from None


# each route: the Catalog call of one CLI command, its arguments read from the URL as the command reads its options
ROUTES: dict[str, Callable[[Catalog, Request], Result]] = {
    "runs": lambda c, r: c.runs(_selection(r)),
    "subgraph": lambda c, r: c.subgraph(r.path_params["run"], _number(r, "top", 200), _number(r, "min_weight", 0.0, float)),
    "component": lambda c, r: c.component(r.path_params["run"], r.path_params["name"], _number(r, "top", 50)),
    "shared": lambda c, r: c.shared(_selection(r), _flag(r, "edges"), not _flag(r, "by_name")),
    "venn": lambda c, r: c.venn(_selection(r), _flag(r, "edges"), None, not _flag(r, "by_name")),
    "diff": lambda c, r: c.diff(_selection(r), _flag(r, "edges"), not _flag(r, "by_name")),
    "similarity": lambda c, r: c.similarity(_selection(r), _flag(r, "edges"), _flag(r, "weighted"), None,
                                            not _flag(r, "by_name")),
    "curve": lambda c, r: c.curve(_selection(r)),
    "ladder": lambda c, r: c.ladder(r.query_params.get("model", ""), r.query_params.get("task", ""),
                                    tuple(r.query_params.getlist("method"))),
    "features/list": lambda c, r: c.features_list(r.query_params.get("model") or None, _number(r, "limit", 200)),
    "features/related": lambda c, r: c.features_related(r.query_params.get("feature", ""), r.query_params.get("model") or None,
                                                        tuple(r.query_params.getlist("kind")),
                                                        _number(r, "min_weight", 0.0, float), _number(r, "limit", 20)),
    "steer/list": lambda c, r: c.steer_list(),
    "steer/show": lambda c, r: c.steer_show(r.query_params.get("name", ""), r.query_params.get("model", "")),
}
PATHS = {"subgraph": "/api/subgraph/{run}", "component": "/api/component/{run}/{name:path}"}


class Policy:
    """Adds the content security policy to every response: the browser itself refuses anything from elsewhere."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        async def with_policy(message: dict) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"content-security-policy", POLICY.encode()),
                                      (b"x-content-type-options", b"nosniff")]
            await send(message)

        await self.app(scope, receive, with_policy if scope["type"] == "http" else send)


def create_app(url: str | None = None, wait: float = 10, hosts: tuple[str, ...] = LOOPBACK) -> Starlette:
    """The web app over the catalog at `url`, opened read-only (refused at once when there is no catalog there)."""
    reader = Reader(url, wait)
    reader(lambda c: c.runs())  # a missing or broken store is an error now, not on the first page

    def endpoint(name: str) -> Callable[[Request], Response]:
        def answer(request: Request) -> Response:
            try:
                return JSONResponse(reader(lambda c: ROUTES[name](c, request)).to_dict())
            except CircuitdbError as exc:
                return JSONResponse({"error": " ".join(str(exc).split())}, status_code=400)
            except Exception as exc:  # an unforeseen failure: one line for the page, as the CLI says it
                return JSONResponse({"error": f"{type(exc).__name__}: {' '.join(str(exc).split())}"}, status_code=500)

        return answer

    def page(request: Request) -> Response:
        return FileResponse(str(STATIC.joinpath("index.html")), media_type="text/html")

    def about(request: Request) -> Response:
        return JSONResponse({"store": store_url(url), "read_only": True, "pages": list(PAGES)})

    routes = [Route("/", lambda r: RedirectResponse("/runs")), Route("/api/about", about),
              *(Route(PATHS.get(name, f"/api/{name}"), endpoint(name)) for name in ROUTES),
              *(Route(f"/{p}" + ("/{run}" if p == "run" else ""), page) for p in PAGES),
              Mount("/static", StaticFiles(directory=str(STATIC)), name="static")]
    return Starlette(routes=routes, middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=list(hosts)),
                                                Middleware(Policy)])


def serve(url: str | None = None, host: str = "127.0.0.1", port: int = 8765, wait: float = 10) -> None:
    """Serve the web view until interrupted; only this machine can reach it unless `host` says otherwise."""
    import uvicorn

    hosts = LOOPBACK if host in LOOPBACK else ("*",)
    app = create_app(url, wait, hosts)
    print(f"circuitdb: {store_url(url)} (read-only) at http://{'127.0.0.1' if host == '0.0.0.0' else host}:{port}/"
          " - Ctrl-C stops", flush=True)
    # no websockets (the pages only fetch JSON): uvicorn then loads no websocket library at start
    uvicorn.run(app, host=host, port=port, log_level="warning", ws="none", lifespan="off")
