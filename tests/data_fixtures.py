"""Helpers for the data tests: tiny files in the real formats and a loopback HTTP server.

Imported by tests/test_data_*.py (pytest puts tests/ on sys.path); not a conftest, so other
engineers' fixtures are untouched.
"""
from __future__ import annotations

import contextlib
import dataclasses
import gzip
import hashlib
import io
import socket
import struct
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from layerlab.data import catalogue
from layerlab.data.catalogue import SourceFile

IDX_NAMES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def idx_bytes(arr: np.ndarray) -> bytes:
    """An uint8 array as IDX bytes (magic 0x0000 08 ndim, big-endian dims, payload)."""
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    return bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()


def tiny_mnist_arrays(n_train: int = 30, n_test: int = 10, seed: int = 0):
    rng = np.random.default_rng(seed)
    x_tr = rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8)
    x_te = rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8)
    y_tr = np.arange(n_train, dtype=np.uint8) % 10
    y_te = np.arange(n_test, dtype=np.uint8) % 10
    return x_tr, y_tr, x_te, y_te


def tiny_mnist_files(**kw) -> dict[str, bytes]:
    """{file name: gz bytes} of a tiny MNIST-format data set (mtime 0: reproducible bytes)."""
    arrays = tiny_mnist_arrays(**kw)
    order = (arrays[0], arrays[1], arrays[2], arrays[3])
    return {name: gzip.compress(idx_bytes(a), mtime=0) for name, a in zip(IDX_NAMES, order)}


def tiny_cifar_arrays(per_batch: int = 4, n_test: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    batches = [(rng.integers(0, 256, (per_batch, 3, 32, 32), dtype=np.uint8),
                rng.integers(0, 10, per_batch, dtype=np.uint8)) for _ in range(6)]
    batches[-1] = (batches[-1][0][:n_test], batches[-1][1][:n_test])
    return batches  # five train batches, then the test batch


def cifar_records(x: np.ndarray, y: np.ndarray) -> bytes:
    return np.concatenate([y[:, None], x.reshape(len(x), -1)], axis=1).astype(np.uint8).tobytes()


def tiny_cifar_tar(batches=None, *, record_bytes: dict[str, bytes] | None = None) -> bytes:
    """A cifar-10-binary.tar.gz with the real member names; ``record_bytes`` overrides members."""
    batches = batches or tiny_cifar_arrays()
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    members = {n: cifar_records(x, y) for n, (x, y) in zip(names, batches)}
    members.update(record_bytes or {})
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for n, data in members.items():
            ti = tarfile.TarInfo(f"cifar-10-batches-bin/{n}")
            ti.size = len(data)
            tar.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def patch_entry(monkeypatch, name: str, files: dict[str, bytes], mirrors=()) -> catalogue.DatasetInfo:
    """Replace catalogue entry ``name`` by one whose checksums match ``files``."""
    info = catalogue.DATASETS[name]
    new = dataclasses.replace(
        info, mirrors=tuple(mirrors),
        files=tuple(SourceFile(n, sha(b), len(b)) for n, b in files.items()))
    monkeypatch.setitem(catalogue.DATASETS, name, new)
    return new


def write_files(directory: Path, files: dict[str, bytes]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for n, b in files.items():
        (directory / n).write_bytes(b)
    return directory


@pytest.fixture
def data_env(tmp_path, monkeypatch):
    """Isolated search dirs: LAYERLAB_DATA and XDG_CACHE_HOME under tmp, no mirror override."""
    monkeypatch.setenv("LAYERLAB_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("LAYERLAB_MIRRORS", raising=False)
    return tmp_path


class _Handler(BaseHTTPRequestHandler):
    routes: dict[str, tuple[int, bytes, int | None]] = {}
    hits: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.hits.append(self.path)
        status, body, length = self.routes.get(self.path, (404, b"not found", None))
        self.send_response(status)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)  # a length above len(body) makes a truncated response

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def http_server(routes: dict[str, tuple[int, bytes, int | None]]):
    """Serve ``routes`` ({path: (status, body, declared Content-Length or None)}) on 127.0.0.1."""
    handler = type("Handler", (_Handler,), {"routes": routes, "hits": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.timeout = 5
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler.hits
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def refused_url() -> str:
    """A loopback URL nothing listens on (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"
