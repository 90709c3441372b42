"""Request guards, as pure ASGI middleware: the access token, the body size limit, the Host check.

* ``TokenMiddleware``: when the server has a token, every request must carry it, as
  ``Authorization: Bearer T`` or ``?token=T`` (EventSource cannot set headers). A page opened
  with ``?token=T`` also gets a ``SameSite=Strict`` HttpOnly cookie, accepted for GET/HEAD
  only, so the browser's ``<img>``, ``<script type=module>`` and CSS requests pass too.
* ``BodyLimitMiddleware``: bodies over ``max_body`` bytes get 413, whether announced by
  Content-Length or streamed in chunks.
* ``HostMiddleware``: a server bound to loopback without a token answers only requests whose
  Host header names loopback, so a web page cannot reach it through DNS rebinding.
"""
from __future__ import annotations

import hmac
import json
from http.cookies import SimpleCookie
from urllib.parse import parse_qs

__all__ = ["TokenMiddleware", "BodyLimitMiddleware", "HostMiddleware", "TOKEN_COOKIE", "LOOPBACK_HOSTS"]

TOKEN_COOKIE = "layerlab_token"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


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
        if auth.startswith("Bearer ") and self._ok(auth[len("Bearer "):].strip()):
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
