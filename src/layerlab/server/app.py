"""The FastAPI application: middleware, error mapping, the page, static files and the API routers.

``create_app`` wires one store, one worker pool and one data cache into the app's state.
User errors become responses with the library's own message (``{"error": TYPE, "detail": ...}``,
plus ``problems`` for a spec) and the status their type declares (``errors.py``: a missing
run or data set is 404, a run in the wrong state or a data set not fetched 409, an invalid
spec 400, an unusable store 503); a malformed request is 422, an oversized body 413.
"""
from __future__ import annotations

import ipaddress
import logging
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response

from ..cli_support import error_json, json_safe
from ..errors import LayerlabError
from . import api_activations, api_catalogue, api_export, api_runs, api_views, openapi
from .assets import load_assets
from .datacache import DataCache
from .downloads import Downloads
from .pool import WorkerPool
from .predict import shutdown_worker as shutdown_predictions
from .schemas import HealthOut
from .security import (LOOPBACK_HOSTS, BodyLimitMiddleware, HostMiddleware, SameOriginMiddleware,
                       SecurityHeadersMiddleware, TokenMiddleware)

__all__ = ["create_app", "SafeJSONResponse", "MAX_BODY", "is_loopback", "UnavailableStore", "open_store"]

log = logging.getLogger(__name__)

MAX_BODY = 256 * 1024  # bytes of a request body; more is 413
IMMUTABLE = "public, max-age=31536000, immutable"


class SafeJSONResponse(JSONResponse):
    """JSON where NaN and infinities are the strings "NaN", "Infinity" (a diverged run's numbers)."""

    def render(self, content: Any) -> bytes:
        import json
        return json.dumps(json_safe(content), ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` listens on this machine only: ``localhost`` or a loopback address.

    The empty string is not loopback: ``bind(("", port))`` listens on every interface, as
    ``0.0.0.0`` and ``::`` do.
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class UnavailableStore:
    """Stands in for a store that could not be opened (a damaged SQLite file, a database that is down).

    The server still starts: the page, the catalogue and ``/api/health`` answer, and every use
    of the store raises the ``StoreUnavailable`` it failed with, which the API answers as 503.
    """

    def __init__(self, url: str, error: Exception):
        self.url, self.error = url, error

    def _safe_url(self) -> str:
        from sqlalchemy.engine import make_url
        try:
            return make_url(self.url).render_as_string(hide_password=True)
        except Exception:  # noqa: BLE001 - an unparsable URL is shown as given
            return self.url

    def close(self) -> None:
        pass

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        from ..errors import StoreUnavailable
        raise StoreUnavailable(f"{self.error} (restart `layerlab serve` once it is fixed)")


def open_store(url=None):
    """``Store(url)``, or an :class:`UnavailableStore` carrying the reason when it cannot be opened."""
    from ..errors import StoreUnavailable
    from ..store import Store, resolve_url
    try:
        return Store(url)
    except StoreUnavailable as exc:
        return UnavailableStore(resolve_url(url), exc)


def create_app(store=None, *, token: str | None = None, workers: int = 2, allowed_hosts: tuple[str, ...] | None = None,
               max_body: int = MAX_BODY, stream_poll: float = 0.3, data_cache_size: int = 3) -> FastAPI:
    """The layerlab web app over ``store`` (default: :func:`open_store`, so a damaged store still serves).

    ``token``: required on every request when set. ``workers``: training processes at once (0:
    none; runs must come from elsewhere). ``allowed_hosts``: Host header names answered; default
    loopback names without a token, any with one.
    """
    store = store if store is not None else open_store()
    store_error = store.error if isinstance(store, UnavailableStore) else None
    assets = load_assets()
    pool = WorkerPool(store, workers=workers) if workers > 0 and store_error is None else None

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if pool is not None:
            pool.start()
        try:
            yield
        finally:
            app.state.shutting_down = True
            if pool is not None:
                pool.shutdown()
            shutdown_predictions()  # the builder's prediction worker process, if one was started

    app = FastAPI(title="layerlab", version=_version(), lifespan=lifespan, default_response_class=SafeJSONResponse,
                  description="Build, check, train and compare small neural networks. The browser UI is at `/`; "
                              "runs stream live as server-sent events from `/api/runs/{id}/stream`.",
                  docs_url=None, redoc_url=None)  # openapi.install serves them, without a CDN
    app.state.store, app.state.pool, app.state.assets = store, pool, assets
    app.state.data = DataCache(size=data_cache_size)
    app.state.downloads = Downloads()  # the builder's Download button (downloads.py)
    app.state.stream_poll, app.state.shutting_down = stream_poll, False

    # Middleware: the last added runs first. Order: security headers (on every answer, refusals
    # too), Host check, same-origin check of writes, token, body limit, app.
    app.add_middleware(BodyLimitMiddleware, max_body=max_body)
    if token:
        app.add_middleware(TokenMiddleware, token=token)
    app.add_middleware(SameOriginMiddleware)
    hosts = allowed_hosts if allowed_hosts is not None else (None if token else LOOPBACK_HOSTS)
    if hosts is not None:
        app.add_middleware(HostMiddleware, allowed=tuple(hosts))
    app.add_middleware(SecurityHeadersMiddleware)

    _add_error_handlers(app)
    openapi.install(app, token=bool(token))  # the schema as the server answers, 405 Allow, offline /docs
    app.include_router(api_catalogue.router)
    app.include_router(api_runs.router)
    app.include_router(api_activations.router)
    app.include_router(api_export.router)
    app.include_router(api_views.router)

    @app.get("/api/health", summary="Server version, store, static prefix and worker pool state",
             response_model=None, responses={200: {"model": HealthOut},
                                             503: {"model": HealthOut, "description": "Up, but the store cannot "
                                                   "be used (`store_error` says why); every store route answers 503"}})
    def health(request: Request):
        body = {"ok": store_error is None, "version": _version(), "store": store._safe_url(),
                "static": assets.prefix, "pool": pool.state() if pool else None}
        if store_error is not None:  # up, but every store route answers 503 with this
            return SafeJSONResponse({**body, "store_error": str(store_error)}, status_code=503)
        return body

    @app.get("/", include_in_schema=False)
    def index() -> HTMLResponse:
        return HTMLResponse(assets.index_html, headers={"Cache-Control": "no-cache"})

    @app.get("/static/{version}/{path:path}", include_in_schema=False)
    def static(version: str = Path(..., max_length=64), path: str = Path(..., max_length=200)) -> Response:
        entry = assets.files.get(path)
        if entry is None:
            return SafeJSONResponse({"detail": f"no static file {path!r}"}, status_code=404)
        file, media = entry
        cache = IMMUTABLE if version == assets.version else "no-cache"
        return FileResponse(file, media_type=media, headers={"Cache-Control": cache})

    return app


def _version() -> str:
    from .. import __version__
    return __version__


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(LayerlabError)
    async def layerlab_error(request: Request, exc: LayerlabError):
        return SafeJSONResponse(error_json(exc), status_code=exc.http_status)  # by type, never by wording

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        errors = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
            errors.append({"field": loc, "message": err.get("msg", "invalid"), "type": err.get("type")})
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors) or "invalid request"
        return SafeJSONResponse({"detail": detail, "errors": errors}, status_code=422)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):  # pragma: no cover - a bug, logged
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return SafeJSONResponse({"detail": f"internal error: {type(exc).__name__}"}, status_code=500)
