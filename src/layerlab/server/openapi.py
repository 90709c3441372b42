"""The API's own contract: the OpenAPI schema as the server really answers, and offline API docs.

FastAPI writes a schema from the routes; this module makes it true of the whole server:

* every status a route can answer is documented: the route's own (``error_responses`` in its
  decorator: 404 for a missing run, 409 for a run in the wrong state...) and the guards'
  answers, which apply to every route and are added here: 400 (Host header, Content-Length),
  401 (token), 413 (body size) and, on writes, 403 (same-origin check); a 422 is
  ``RequestErrorOut``, the shape ``app.py`` answers, not FastAPI's default;
* every answer carries the security headers (``security.SECURITY_HEADERS``), and a 401 its
  ``WWW-Authenticate``;
* a server started with a token declares it (``Authorization: Bearer``; ``?token=`` works too);
* a 405 names, in ``Allow``, every method of the resource, not only those of the first route
  that matched the path (Starlette's answer);
* ``/docs`` (Swagger UI) and ``/redoc`` load their scripts and styles from this server (the files
  of the ``fastapi-offline`` package), never from a CDN: the docs work without a network.

``tests/test_api_contract.py`` holds the server to this schema with schemathesis.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from .schemas import ErrorOut, RequestErrorOut
from .security import SECURITY_HEADERS

__all__ = ["error_responses", "install", "DOCS_ASSETS", "ERROR_DESCRIPTIONS"]

DOCS_ASSETS = "/docs/assets"  # where the Swagger UI and ReDoc files are served
WRITES = ("post", "put", "patch", "delete")

# What each error status means on this server, for the routes that can answer it.
ERROR_DESCRIPTIONS = {
    400: "Bad request: an invalid spec (`InvalidSpec`, with `problems`) or field, a data file that cannot be used "
         "(`DataError`), or another misuse (`StoreError`)",
    404: "Not found: the run, preset, data set, artifact or example named does not exist",
    409: "Conflict: a run in the wrong state for this request, a data set not on this machine "
         "(`DataUnavailable`, with `problems`), or a server without workers",
    413: "Too large: the model or data set is larger than this server builds or keeps loaded",
    501: "Not implemented here: the request needs optional packages this server lacks (`ExportUnavailable`)",
    503: "Unavailable: the store cannot be used (`StoreUnavailable`)",
    507: "Out of memory: the work needed more memory than the machine could give",
}

# The guards' answers (security.py), on every route; they say {"detail": ...} with no `error`.
GUARD_RESPONSES = {
    400: "the Host header names a host this server does not answer (DNS rebinding), or Content-Length is "
         "not a number",
    401: "the server was started with a token and the request carries none, or a wrong one "
         "(`Authorization: Bearer <token>` or `?token=<token>`)",
    413: "the request body is larger than the server's limit (256 KiB)",
}
WRITE_GUARD = (403, "a state-changing request that another site's page could have sent: it needs a JSON body or "
                    "the header `X-Layerlab: 1`, and no foreign Origin or Sec-Fetch-Site")
_WHY = {"x-frame-options": "no other site may frame the page",
        "content-security-policy": "no other site may frame the page",
        "x-content-type-options": "browsers must not guess content types"}
# Header name -> (value, why), from the headers SecurityHeadersMiddleware really sends.
SECURITY_HEADER_DOCS = {"-".join(part.capitalize() for part in name.decode().split("-")):
                        (value.decode(), _WHY.get(name.decode(), "on every answer"))
                        for name, value in SECURITY_HEADERS}


def error_responses(*codes: int, **descriptions: str) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route that can answer ``codes`` with an ``ErrorOut`` (``s404="..."`` to reword one)."""
    out: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        out[code] = {"model": ErrorOut, "description": descriptions.get(f"s{code}", ERROR_DESCRIPTIONS[code])}
    return out


def install(app: FastAPI, *, token: bool) -> None:
    """Give ``app`` its true schema (``app.openapi``), the 405 ``Allow`` fix and offline ``/docs``, ``/redoc``."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, openapi_version=app.openapi_version,
                                 description=app.description, routes=app.routes)
            app.openapi_schema = complete_schema(schema, token=token)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_exception_handler(StarletteHTTPException, _http_error)
    _install_docs(app)


def complete_schema(schema: dict[str, Any], *, token: bool) -> dict[str, Any]:
    """``schema`` (FastAPI's) with the guards' answers, the 422 shape, security headers and the token scheme."""
    schema = copy.deepcopy(schema)
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for model in (ErrorOut, RequestErrorOut):
        model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, sub in model_schema.pop("$defs", {}).items():
            schemas.setdefault(name, sub)
        schemas[model.__name__] = model_schema
    for unused in ("HTTPValidationError", "ValidationError"):  # FastAPI's 422 shape; this app answers RequestErrorOut
        schemas.pop(unused, None)
    headers = components.setdefault("headers", {})
    for name, (value, why) in SECURITY_HEADER_DOCS.items():
        headers[name] = {"description": f"`{value}`: {why}", "required": True,
                         "schema": {"type": "string", "const": value}}
    headers["WWW-Authenticate"] = {"description": "`Bearer`", "required": True,
                                   "schema": {"type": "string", "const": "Bearer"}}
    error_ref = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}
    if token:
        # One scheme: `?token=` (for EventSource and the first page load) is the same token, and declaring it as
        # a second, alternative scheme would say that a wrong one next to a right bearer is refused; it is not.
        components["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer",
                       "description": "the server's token (`layerlab serve --token`); `?token=<token>` in the URL "
                                      "is accepted as well, and a page opened with it sets a cookie for GETs"},
        }
        schema["security"] = [{"bearer": []}]

    for methods in schema.get("paths", {}).values():
        for method, operation in methods.items():
            responses = operation.setdefault("responses", {})
            if "422" in responses:
                responses["422"] = {"description": "The request does not match this schema: every field's problem",
                                    "content": {"application/json": {
                                        "schema": {"$ref": "#/components/schemas/RequestErrorOut"}}}}
            guards = dict(GUARD_RESPONSES)
            if method in WRITES:
                guards[WRITE_GUARD[0]] = WRITE_GUARD[1]
            for code, why in guards.items():
                entry = responses.get(str(code))
                if entry is None:
                    responses[str(code)] = {"description": why[0].upper() + why[1:],
                                            "content": copy.deepcopy(error_ref)}
                else:  # the route's own meaning, and the guard's
                    entry["description"] = f"{entry.get('description', '')}; or {why}"
            responses["401"].setdefault("headers", {})["WWW-Authenticate"] = {
                "$ref": "#/components/headers/WWW-Authenticate"}
            for response in responses.values():
                response_headers = response.setdefault("headers", {})
                for name in SECURITY_HEADER_DOCS:
                    response_headers[name] = {"$ref": f"#/components/headers/{name}"}
            operation["responses"] = dict(sorted(responses.items()))
    return schema


async def _http_error(request: Request, exc: StarletteHTTPException):
    """FastAPI's answer, except that a 405's ``Allow`` lists every method of the path (RFC 9110 15.5.6)."""
    if exc.status_code == 405:
        allowed = _methods_of(request)
        if allowed:
            exc = StarletteHTTPException(405, exc.detail, headers={**(exc.headers or {}), "Allow": ", ".join(allowed)})
    return await http_exception_handler(request, exc)


def _methods_of(request: Request) -> list[str]:
    """The methods some route answers at this path (routes may sit in included routers: ask each to match)."""
    base = {k: v for k, v in request.scope.items() if k not in ("route", "endpoint", "path_params")}
    allowed = []
    for method in ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"):
        scope = {**base, "method": method}
        if any(route.matches(scope)[0] == Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return allowed


def _install_docs(app: FastAPI) -> None:
    from fastapi.staticfiles import StaticFiles
    import fastapi_offline

    files = Path(fastapi_offline.__file__).parent / "static"  # swagger-ui-bundle.js, swagger-ui.css, redoc...
    app.mount(DOCS_ASSETS, StaticFiles(directory=files), name="docs-assets")
    title = f"{app.title} API"

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url, title=title,
                                   swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
                                   swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
                                   # no call to the online validator at swagger.io
                                   swagger_ui_parameters={"validatorUrl": None})

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url=app.openapi_url, title=title,
                              redoc_js_url=f"{DOCS_ASSETS}/redoc.standalone.js",
                              redoc_favicon_url=f"{DOCS_ASSETS}/favicon.png", with_google_fonts=False)
