"""The web server: a JSON API with server-sent events, worker processes, and the browser UI.

``create_app(store=...)`` returns the FastAPI application; ``layerlab serve`` (``cli.py``)
runs it under uvicorn. The server never trains in its event loop: runs execute in worker
processes (``pool.py``, ``python -m layerlab.worker``) and the server only reads the store
and streams what the trainers write to it. See docs/ui.md.
"""
from .app import create_app

__all__ = ["create_app"]
