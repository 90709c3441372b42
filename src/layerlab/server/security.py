"""Request guards, as pure ASGI middleware: the access token, the body size limit, the Host check.

* ``TokenMiddleware``: when the server has a token, every request must carry it, as
  ``Authorization: Bearer T`` or ``?token=T`` (EventSource cannot set headers). A page opened
  with ``?token=T`` also gets a ``SameSite=Strict`` HttpOnly cookie, accepted for GET/HEAD
  only, so the browser's ``<img>``, ``<script type=module>`` and CSS requests pass too.
* ``BodyLimitMiddleware``: bodies over ``max_body`` bytes get 413, whether announced by
  Content-Length or streamed in chunks.
* ``HostMiddleware``: a server bound to loopback without a token answers only requests whose
  Host header names loopback, so a web page cannot reach it through DNS rebinding.
* ``SameOriginMiddleware``: every state-changing request (POST, PUT, PATCH, DELETE) must come
  from the server's own page or from a program, never from another site's page (CSRF): a
  browser's ``Sec-Fetch-Site`` must say ``same-origin`` or ``none``, an ``Origin`` must be the
  request's own scheme, host and port, and the request must be JSON or carry ``X-Layerlab`` (what
  no HTML form and no CORS "simple" request can send), so old browsers without Sec-Fetch-Site
  are covered too. Programs (httpx, curl, the tests) send no Origin and no Sec-Fetch-Site.
* ``SecurityHeadersMiddleware``: every response says ``X-Frame-Options: DENY``,
  ``Content-Security-Policy: frame-ancestors 'none'`` (no other site may frame the page, so no
  clickjacking) and ``X-Content-Type-Options: nosniff``.
"""
from __future__ import annotations

import hmac
import json
from http.cookies import SimpleCookie
from urllib.parse import parse_qs

__all__ = ["TokenMiddleware", "BodyLimitMiddleware", "HostMiddleware", "SameOriginMiddleware",
           "SecurityHeadersMiddleware", "TOKEN_COOKIE", "LOOPBACK_HOSTS", "WRITE_HEADER", "SECURITY_HEADERS"]

TOKEN_COOKIE = "layerlab_token"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
WRITE_HEADER = "x-layerlab"  # what the page (api.js) sends with every request; a form cannot
SECURITY_HEADERS = ((b"x-frame-options", b"DENY"), (b"content-security-policy", b"frame-ancestors 'none'"),
                    (b"x-content-type-options", b"nosniff"))


async def _send_json(send, status: int, detail: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


class TokenMiddleware:
    """Reject requests that do not carry the server's token (401)."""

    def __init__(self, app, token: str):
        self.app, self.token = app, token.encode()

    def _ok(self, candidate: str | None) -> bool:
        return candidate is not None and hmac.compare_digest(candidate.encode(), self.token)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        auth = _header(scope, b"authorization") or ""
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        from_query = (query.get("token") or [None])[0]
        cookie = SimpleCookie()
        try:
            cookie.load(_header(scope, b"cookie") or "")
        except Exception:  # noqa: BLE001 - a malformed cookie header just carries no token
            pass
        from_cookie = cookie[TOKEN_COOKIE].value if TOKEN_COOKIE in cookie else None
        reads = scope["method"] in ("GET", "HEAD")
        scheme, _, credentials = auth.strip().partition(" ")
        if scheme.lower() == "bearer" and self._ok(credentials.strip()):  # the scheme is case-insensitive (RFC 7235)
            return await self.app(scope, receive, send)
        if self._ok(from_query):
            if not reads:
                return await self.app(scope, receive, send)
            return await self.app(scope, receive, self._with_cookie(send, from_query))
        if reads and self._ok(from_cookie):
            return await self.app(scope, receive, send)
        await _send_json(send, 401, "this server needs its access token: send `Authorization: Bearer <token>` "
                                    "or add ?token=<token> to the URL", [(b"www-authenticate", b"Bearer")])

    @staticmethod
    def _with_cookie(send, token: str):
        async def wrapped(message):
            if message["type"] == "http.response.start":
                value = f"{TOKEN_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict"
                message = dict(message, headers=[*message.get("headers", []), (b"set-cookie", value.encode())])
            await send(message)
        return wrapped


class BodyLimitMiddleware:
    """Answer 413 to request bodies larger than ``max_body`` bytes."""

    def __init__(self, app, max_body: int):
        self.app, self.max_body = app, max_body

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.max_body
        message = f"the request body is larger than the limit of {limit // 1024} KiB"
        length = _header(scope, b"content-length")
        if length is not None:
            try:
                too_big = int(length) > limit
            except ValueError:
                return await _send_json(send, 400, "the Content-Length header is not a number")
            if too_big:
                return await _send_json(send, 413, message)
        if scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        # Read the (small) body first, so a chunked one over the limit is refused before the app runs.
        chunks, seen = [], 0
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            body = msg.get("body", b"")
            seen += len(body)
            if seen > limit:
                return await _send_json(send, 413, message)
            chunks.append(body)
            if not msg.get("more_body", False):
                break
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class HostMiddleware:
    """Answer 400 to requests whose Host header is not one of ``allowed`` (no port)."""

    def __init__(self, app, allowed: tuple[str, ...]):
        self.app, self.allowed = app, {h.lower() for h in allowed}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        host = (_header(scope, b"host") or "").lower()
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        if host.startswith("[") and "]" in host:
            name = host[: host.index("]") + 1]
        if name not in self.allowed:
            return await _send_json(send, 400, f"unexpected Host header {host!r}: this server answers only on "
                                               f"{', '.join(sorted(self.allowed))}; to serve other hosts, "
                                               "start it with --token")
        await self.app(scope, receive, send)


_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def _split_host(host: str, default_port: int | None) -> tuple[str, int | None] | None:
    """``host[:port]`` (``[v6]:port`` too) as ``(name, port)``, lower case; None when it is malformed."""
    host = host.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        if end < 0:
            return None
        name, rest = host[: end + 1], host[end + 1:]
    else:
        name, _, port = host.partition(":")
        rest = f":{port}" if port else ""
    if not name:
        return None
    if not rest:
        return name, default_port
    if not rest.startswith(":") or not rest[1:].isdigit():
        return None
    return name, int(rest[1:])


def _origin_of(origin: str) -> tuple[str, str, int | None] | None:
    """An Origin header (``scheme://host[:port]``) as ``(scheme, name, port)``; None for ``null`` or junk."""
    scheme, sep, rest = origin.strip().lower().partition("://")
    if not sep or "/" in rest or scheme not in _DEFAULT_PORTS:
        return None
    parts = _split_host(rest, _DEFAULT_PORTS[scheme])
    return None if parts is None else (scheme, *parts)


class SameOriginMiddleware:
    """Refuse (403) state-changing requests that another site's page could have sent (CSRF).

    Every POST, PUT, PATCH and DELETE is checked, including the ones that change nothing
    (``/api/check``, ``/api/predict``, ``/api/spec/*``): one rule by method leaves no route to
    forget, and those are expensive enough that another site must not make a visitor's browser
    call them. A request passes when all of these hold:

    * ``Sec-Fetch-Site`` is absent (a program, an old browser) or ``same-origin`` / ``none``
      (the user typed it); ``same-site`` (another port of this host) and ``cross-site`` are refused;
    * ``Origin`` is absent or names the request's own scheme, host and port (``null`` is refused);
    * its body is JSON (``Content-Type: application/json``) or it carries ``X-Layerlab`` (any
      value). A cross-origin page can send neither without a CORS preflight, which this server
      never grants; so a form, a ``text/plain`` / ``multipart`` / bodiless ``fetch(..., {mode:
      'no-cors'})`` cannot pass even from a browser that sends no Sec-Fetch-Site.
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in _WRITES:
            return await self.app(scope, receive, send)
        why = self._refusal(scope)
        if why:
            return await _send_json(send, 403, f"refused {scope['method']} {scope.get('path', '')}: {why}")
        await self.app(scope, receive, send)

    @staticmethod
    def _refusal(scope) -> str | None:
        site = (_header(scope, b"sec-fetch-site") or "").strip().lower()
        if site and site not in ("same-origin", "none"):
            return (f"it came from a page on another site (Sec-Fetch-Site: {site}); only this server's own page "
                    "may change runs")
        origin = _header(scope, b"origin")
        if origin is not None:
            scheme = scope.get("scheme", "http")
            own = _split_host(_header(scope, b"host") or "", _DEFAULT_PORTS.get(scheme, 80))
            theirs = _origin_of(origin)
            if own is None or theirs is None or theirs != (scheme, *own):
                return (f"it came from a page on another origin (Origin: {origin[:100]}); only this server's own "
                        "page may change runs")
        media = (_header(scope, b"content-type") or "").split(";", 1)[0].strip().lower()
        if media != "application/json" and _header(scope, WRITE_HEADER.encode()) is None:
            got = f"Content-Type: {media}" if media else "no body"
            return (f"a state-changing request must send a JSON body (Content-Type: application/json) or the "
                    f"header `X-Layerlab: 1` (got {got}); this keeps other sites' forms out")
        return None


class SecurityHeadersMiddleware:
    """Add ``SECURITY_HEADERS`` (no framing, no MIME sniffing) to every response, errors included."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_headers(message):
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in SECURITY_HEADERS if k not in present]
                message = dict(message, headers=[*message.get("headers", []), *extra])
            await send(message)

        await self.app(scope, receive, with_headers)
