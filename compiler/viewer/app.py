"""The viewer's web app: a small Starlette application over one store file, read-only.

Pages (server-rendered HTML, every value escaped by Jinja2's autoescaping, inline CSS, no script and
no external resource):

- ``/``: every corpus and its versions;
- ``/corpus/{corpus}/{version}``: the version's rows, kept and dropped, with a text search, filters
  (variant, stage and reason of a drop, cost range) and pages of :data:`queries.PAGE_SIZE`;
- ``/corpus/{corpus}/{version}/row/{row_id}``: one row's lineage, stage by stage, with the LLM calls
  that served it.

``/api/...`` answers the same in JSON. The store is attached read-only while requests read it and
detached as soon as none is (:mod:`compiler.viewer.access`): a connection held open would keep
``distillc compile`` from opening the file for writing. While a compile holds it, a request retries
for ``retry_seconds``, then answers 503 with ``Retry-After`` and a page that refreshes itself. Endpoints are plain functions, which
Starlette runs in its thread pool, so a slow query does not stall the event loop.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any, Callable, TypeVar
from urllib.parse import quote, urlencode

import pyarrow as pa
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from compiler.errors import StoreError
from compiler.store.db import Store
from compiler.viewer import queries
from compiler.viewer.access import StoreAccess
from compiler.viewer.render import value_text

T = TypeVar("T")
BUSY = "a compile is writing this store; retrying…"


class Busy(Exception):
    """The store stayed in use by a writer for the whole retry window."""


class BadRequest(Exception):
    """A query parameter the rows page cannot use."""


class Viewer:
    """The state shared by requests: the store's access, and what never changes for a version (its
    row costs and its filter values), computed on first use."""

    def __init__(self, store_path: str, retry_seconds: float, refresh_seconds: int):
        self.store_path, self.retry_seconds, self.refresh_seconds = store_path, retry_seconds, refresh_seconds
        self.access = StoreAccess(store_path)
        self.cost_jobs: dict[str, CostJob] = {}
        self.facets: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()
        self.templates = Environment(loader=PackageLoader("compiler.viewer", "templates"),
                                     autoescape=select_autoescape(default=True, default_for_string=True))
        self.templates.filters["value"] = value_text
        self.templates.filters["usd"] = lambda x: "" if x is None else f"${x:.6f}"
        self.templates.filters["path"] = lambda x: quote(str(x), safe="")

    def read(self, fn: Callable[[Store], T]) -> T:
        """``fn(store)`` with the store attached read-only for this call only; retried while a
        compile holds the file."""
        deadline = time.monotonic() + self.retry_seconds
        while True:
            try:
                with self.access.open() as store:
                    return fn(store)
            except StoreError as exc:
                if not queries.store_error_is_busy(exc):
                    raise
                if time.monotonic() >= deadline:
                    raise Busy(str(exc)) from None
                time.sleep(0.1)

    def costs_of(self, version, wait: bool) -> pa.Table | None:
        """The version's row costs (a version never changes: computed once, in the background,
        since it takes seconds on a large version). None while they are being computed, unless
        ``wait`` (a cost filter needs them): then the request waits for them."""
        with self.lock:
            job = self.cost_jobs.get(version.fingerprint)
            if job is None:
                job = self.cost_jobs[version.fingerprint] = CostJob(self, version)
        if wait:
            job.join()
        if job.error is not None:
            with self.lock:
                self.cost_jobs.pop(version.fingerprint, None)    # the next request tries again
            if wait:
                raise job.error
        return job.result

    def facets_of(self, store: Store, version) -> dict[str, Any]:
        if version.fingerprint not in self.facets:
            self.facets[version.fingerprint] = queries.facets(store, version)
        return self.facets[version.fingerprint]

    def page(self, template: str, status: int = 200, headers: dict[str, str] | None = None, **context: Any) -> HTMLResponse:
        html = self.templates.get_template(template).render(**context)
        return HTMLResponse(html, status_code=status, headers=headers)


class CostJob(threading.Thread):
    """Computes a version's row costs with its own read of the store."""

    def __init__(self, viewer: Viewer, version):
        super().__init__(daemon=True, name=f"costs-{version.fingerprint}")
        self.viewer, self.version = viewer, version
        self.result: pa.Table | None = None
        self.error: Exception | None = None
        self.start()

    def run(self) -> None:
        try:
            self.result = self.viewer.read(lambda store: queries.row_costs(store, self.version))
        except Exception as exc:  # handed to the request that asks next
            self.error = exc


def _float(params, name: str) -> float | None:
    raw = params.get(name, "").strip()
    if not raw:
        return None
    try:
        return float(raw.lstrip("$"))
    except ValueError:
        raise BadRequest(f"{name}: expected a number of dollars, got {raw!r}") from None


def row_query(params) -> queries.RowQuery:
    """The rows page's query string as a :class:`queries.RowQuery`."""
    status = params.get("status", "all") or "all"
    if status not in queries.STATUSES:
        raise BadRequest(f"status: expected one of {', '.join(queries.STATUSES)}, got {status!r}")
    page = params.get("page", "1") or "1"
    if not page.isdigit() or int(page) < 1:
        raise BadRequest(f"page: expected a page number, got {page!r}")
    return queries.RowQuery(q=params.get("q", "").strip(), status=status, variant=params.get("variant", ""),
                            stage=params.get("stage", ""), reason=params.get("reason", ""),
                            min_usd=_float(params, "min_usd"), max_usd=_float(params, "max_usd"), page=int(page))


def _version_number(request: Request) -> tuple[str, int]:
    return request.path_params["corpus"], int(request.path_params["version"])


def rows_data(viewer: Viewer, corpus: str, number: int, query: queries.RowQuery) -> dict[str, Any]:
    def fetch(store: Store) -> dict[str, Any]:
        version = queries.get_version(store, corpus, number)
        costs = viewer.costs_of(version, wait=query.min_usd is not None or query.max_usd is not None)
        found = queries.search_rows(store, version, query, costs)
        return {"corpus": corpus, "version": number, "ref": version.ref, "fingerprint": version.fingerprint,
                "facets": viewer.facets_of(store, version), "costs_ready": costs is not None, **found}
    return viewer.read(fetch)


def row_data(viewer: Viewer, corpus: str, number: int, row_id: str) -> dict[str, Any]:
    def fetch(store: Store) -> dict[str, Any]:
        version = queries.get_version(store, corpus, number)
        return {"corpus": corpus, "version": number, **queries.lineage(store, version, row_id)}
    return viewer.read(fetch)


def _page_links(request: Request, pages: int, page: int) -> dict[str, str | None]:
    def at(n: int) -> str:
        params = dict(request.query_params)
        params["page"] = str(n)
        return "?" + urlencode(params)
    return {"first": at(1) if page > 1 else None, "prev": at(page - 1) if page > 1 else None,
            "next": at(page + 1) if page < pages else None, "last": at(pages) if page < pages else None}


def _calls_by_stage(data: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    by: dict[str, list[dict[str, Any]]] = {}
    names = {s["name"] for s in data["stages"]}
    for call in data["calls"]:
        stage = (call["stage"] or "").split(":")[0]
        by.setdefault(stage if stage in names else "", []).append(call)
    return by


def build_routes(viewer: Viewer) -> list[Route]:
    def index(request: Request) -> Response:
        return viewer.page("index.html", corpora=viewer.read(queries.corpora), store=viewer.store_path)

    def rows(request: Request) -> Response:
        query = row_query(request.query_params)
        data = rows_data(viewer, *_version_number(request), query)
        return viewer.page("rows.html", d=data, query=query, links=_page_links(request, data["pages"], query.page))

    def row(request: Request) -> Response:
        data = row_data(viewer, *_version_number(request), request.path_params["row_id"])
        calls = _calls_by_stage(data)
        total = sum(c["usd"] or 0 for c in data["calls"])
        return viewer.page("row.html", d=data, calls=calls, total_usd=total)

    def api_corpora(request: Request) -> Response:
        return _json({"store": viewer.store_path, "corpora": viewer.read(queries.corpora)})

    def api_rows(request: Request) -> Response:
        return _json(rows_data(viewer, *_version_number(request), row_query(request.query_params)))

    def api_row(request: Request) -> Response:
        return _json(row_data(viewer, *_version_number(request), request.path_params["row_id"]))

    version = "/corpus/{corpus}/{version:int}"
    return [Route("/", index), Route(version, rows), Route(version + "/row/{row_id:path}", row),
            Route("/api/corpora", api_corpora), Route("/api" + version + "/rows", api_rows),
            Route("/api" + version + "/row/{row_id:path}", api_row)]


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(data, default=str, ensure_ascii=False), status_code=status,
                    media_type="application/json", headers=headers)


def _error(viewer: Viewer, request: Request, status: int, title: str, message: str,
           headers: dict[str, str] | None = None, refresh: int | None = None) -> Response:
    if request.url.path.startswith("/api/"):
        return _json({"error": title, "detail": message}, status, headers)
    return viewer.page("message.html", status, headers, title=title, message=message, refresh=refresh)


def _handlers(viewer: Viewer) -> dict[Any, Callable]:
    retry = str(viewer.refresh_seconds)

    def busy(request: Request, exc: Exception) -> Response:
        return _error(viewer, request, 503, "store in use", BUSY, {"Retry-After": retry}, viewer.refresh_seconds)

    def not_found(request: Request, exc: Exception) -> Response:
        detail = str(exc) if isinstance(exc, queries.NotFound) else f"no page at {request.url.path}"
        return _error(viewer, request, 404, "not found", detail)

    def bad(request: Request, exc: Exception) -> Response:
        return _error(viewer, request, 400, "bad request", str(exc))

    def store_error(request: Request, exc: Exception) -> Response:
        return _error(viewer, request, 500, "store unavailable", str(exc))

    def http(request: Request, exc: Exception) -> Response:
        if isinstance(exc, HTTPException) and exc.status_code == 404:
            return not_found(request, exc)
        code = exc.status_code if isinstance(exc, HTTPException) else 500
        return _error(viewer, request, code, "error", str(getattr(exc, "detail", exc)))

    return {Busy: busy, queries.NotFound: not_found, BadRequest: bad, StoreError: store_error, HTTPException: http}


def create_app(store_path: str, *, retry_seconds: float = 3.0, refresh_seconds: int = 2) -> Starlette:
    """The viewer over ``store_path`` (read-only; the file is opened per request)."""
    viewer = Viewer(str(store_path), retry_seconds, refresh_seconds)
    app = Starlette(routes=build_routes(viewer), exception_handlers=_handlers(viewer))
    app.state.viewer = viewer
    return app
