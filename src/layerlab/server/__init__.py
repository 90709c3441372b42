"""The web server: a JSON API with server-sent events, worker processes, and the browser UI.

``create_app(store=...)`` returns the FastAPI application; ``layerlab serve`` (``cli.py``)
runs it under uvicorn. The server never trains in its event loop: runs execute in worker
processes (``pool.py``, ``python -m layerlab.worker``) and the server only reads the store
and streams what the trainers write to it. See docs/ui.md.
"""
from __future__ import annotations

__all__ = ["create_app"]


def __getattr__(name: str):
    """``create_app`` loads FastAPI on first use, so ``layerlab --help`` does not (PEP 562)."""
    if name != "create_app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from .app import create_app
    return create_app
