"""``layerlab serve``: the web UI and API under uvicorn. Attach it with ``register(app)``."""
from __future__ import annotations

import os
import socket
from typing import Optional

import typer

from ..errors import LayerlabError

__all__ = ["register", "serve_command"]


def serve_command(
    host: str = typer.Option("127.0.0.1", "--host", help="address to bind; anything but loopback needs --token"),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="port (0: any free port)"),
    db: Optional[str] = typer.Option(None, "--db", envvar="LAYERLAB_DB",
                                     help="store URL or SQLite path (default: ~/.local/share/layerlab/runs.db)"),
    workers: int = typer.Option(2, "--workers", min=0, max=64, help="runs that train at once (each in its own process)"),
    token: Optional[str] = typer.Option(None, "--token", envvar="LAYERLAB_TOKEN",
                                        help="access token every request must carry (required off loopback)"),
    log_level: str = typer.Option("warning", "--log-level", help="uvicorn log level"),
) -> None:
    """Serve the model builder, live dashboards and the JSON API (OpenAPI at /docs)."""
    import uvicorn

    from ..cli_support import err, out
    from .app import UnavailableStore, create_app, is_loopback, open_store

    if not host.strip():  # bind(("", port)) would listen on every interface
        raise LayerlabError("--host is empty, which would listen on every network interface; use --host 127.0.0.1 "
                            "(this machine only, the default), or --host 0.0.0.0 with --token T to share it")
    host = host.strip()
    if token is not None and len(token) < 8:
        raise LayerlabError("--token must have at least 8 characters")
    if not is_loopback(host) and not token:
        raise LayerlabError(f"binding to {host} makes the server reachable from other machines; pass --token T "
                            "(or set LAYERLAB_TOKEN) so that every request must carry it")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise LayerlabError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    bound = sock.getsockname()[1]
    store = open_store(db)  # a damaged store still serves the page; its routes answer 503
    if isinstance(store, UnavailableStore):
        err.print(f"warning: {store.error}; serving anyway: run routes answer 503 until it is fixed",
                  highlight=False, markup=False)
    app = create_app(store, token=token, workers=workers)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{bound}/"
    out.print(f"layerlab serving {url}" + ("?token=<your token>" if token else ""), highlight=False)
    err.print(f"store: {store._safe_url()} · workers: {workers} · API docs: {url}docs", highlight=False)
    config = uvicorn.Config(app, log_level=log_level, timeout_graceful_shutdown=3, access_log=False)
    os.environ.setdefault("LAYERLAB_DB", store.url)  # worker processes find the same store
    uvicorn.Server(config).run(sockets=[sock])


def register(app: typer.Typer) -> None:
    """Add ``layerlab serve`` to the main CLI."""
    app.command("serve")(serve_command)
