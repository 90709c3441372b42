"""A real server on a free loopback port, in a thread: for tests and scripts.

    with LiveServer(store) as server:
        httpx.get(server.url + "api/health")

It is ``layerlab serve`` without the command line: the same app, under uvicorn, on a socket
bound to 127.0.0.1.
"""
from __future__ import annotations

import socket
import threading
import time

__all__ = ["LiveServer"]


class LiveServer:
    def __init__(self, store, *, token: str | None = None, workers: int = 1, host: str = "127.0.0.1", **app_kwargs):
        from .app import create_app
        self.app = create_app(store, token=token, workers=workers, **app_kwargs)
        self.host, self.token = host, token
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, 0))
        self.port = self._sock.getsockname()[1]
        self.url = f"http://{host}:{self.port}/"
        self._server = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "LiveServer":
        import uvicorn
        config = uvicorn.Config(self.app, log_level="warning", timeout_graceful_shutdown=2, access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=20)
        self._sock.close()
