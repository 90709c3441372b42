"""Hostile data files and broken environments (issue 10): a message, never a traceback or a 500.

Gzip bombs are refused while they expand (memory stays near the catalogue's size for the file);
a damaged store gives StoreUnavailable and `layerlab serve` still starts; a data-set folder that
cannot be used makes the set "not available", with the reason in `layerlab data show`.
"""
from __future__ import annotations

import dataclasses
import io
import os
import re
import sqlite3
import subprocess
import sys
import tarfile
import time
import tracemalloc
import zlib

import httpx
import pytest
from data_fixtures import (data_env, http_server, patch_entry, tiny_cifar_tar, tiny_mnist_files,  # noqa: F401
                           write_files)
from fastapi.testclient import TestClient

from layerlab.data import available, catalogue, fetch, load_dataset
from layerlab.data.fetch import content_limit
from layerlab.errors import DataError, StoreUnavailable
from layerlab.server import create_app
from layerlab.store import Store

BOMB_SIZE = 256 << 20  # bytes of zeros the bomb expands to (about 250 KB compressed)
MEMORY_BOUND = 100 << 20  # what refusing it may cost


def gzip_bomb(size: int = BOMB_SIZE) -> bytes:
    """``size`` zero bytes, gzipped, without ever holding them (deflate packs zeros ~1000:1)."""
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(1 << 20)
    return b"".join([c.compress(block) for _ in range(size >> 20)] + [c.flush()])


def console(*args, env=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "layerlab", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def peak_memory(fn):
    """(what ``fn`` raised, the peak bytes Python and NumPy allocated meanwhile)."""
    tracemalloc.start()
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - returned for the test to look at
        return exc, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return None, 0


# ------------------------------------------------------------------ finding 3: gzip bombs


def test_gzip_bomb_in_the_data_folder_is_refused_with_bounded_memory(data_env, monkeypatch):
    files = tiny_mnist_files()
    patch_entry(monkeypatch, "mnist", files)  # trusts the tiny files; no content_size known
    bomb = gzip_bomb()
    assert len(bomb) < 1 << 20
    d = write_files(data_env / "data" / "mnist", {**files, "train-labels-idx1-ubyte.gz": bomb})
    exc, peak = peak_memory(lambda: load_dataset("mnist"))
    assert peak < MEMORY_BOUND, f"refusing the bomb allocated {peak / 2**20:.0f} MiB"
    assert isinstance(exc, DataError), exc
    cap = content_limit(catalogue.DATASETS["mnist"], catalogue.DATASETS["mnist"].files[1])
    assert cap == 8 + 60000  # labels: the IDX header and one byte per expected example
    message = str(exc)
    assert str(d / "train-labels-idx1-ubyte.gz") in message and f"{cap:,}" in message
    assert "layerlab data fetch mnist" in message


def test_gzip_bomb_images_file_is_capped_by_the_expected_example_count(data_env, monkeypatch):
    files = tiny_mnist_files()
    patch_entry(monkeypatch, "mnist", files)
    write_files(data_env / "data" / "mnist", {**files, "train-images-idx3-ubyte.gz": gzip_bomb()})
    exc, peak = peak_memory(lambda: load_dataset("mnist"))
    assert peak < MEMORY_BOUND, f"refusing the bomb allocated {peak / 2**20:.0f} MiB"
    assert isinstance(exc, DataError) and "47,040,016" in str(exc)  # 16 + 60000 * 28 * 28


def test_gzip_bomb_from_a_mirror_is_refused_with_bounded_memory(data_env, monkeypatch, tmp_path):
    files = tiny_mnist_files()
    info = patch_entry(monkeypatch, "mnist", files)
    routes = {f"/{n}": (200, gzip_bomb() if n.startswith("t10k-images") else b, None) for n, b in files.items()}
    with http_server(routes) as (url, _):
        exc, peak = peak_memory(lambda: fetch("mnist", mirrors=[url], dest=tmp_path / "dl", info=info))
    assert peak < MEMORY_BOUND, f"refusing the bomb allocated {peak / 2**20:.0f} MiB"
    assert isinstance(exc, DataError), exc
    assert "t10k-images-idx3-ubyte.gz" in str(exc) and "decompresses to more than 7,840,016 bytes" in str(exc)
    assert not (tmp_path / "dl" / "t10k-images-idx3-ubyte.gz").exists()


def test_known_content_size_is_the_cap(data_env, monkeypatch):
    """Where the catalogue knows the decompressed size (real MNIST), nothing bigger is inflated."""
    files = tiny_mnist_files()
    info = patch_entry(monkeypatch, "mnist", files)
    sized = tuple(dataclasses.replace(sf, content_size=100) for sf in info.files)
    monkeypatch.setitem(catalogue.DATASETS, "mnist", dataclasses.replace(info, files=sized))
    write_files(data_env / "data" / "mnist", files)
    with pytest.raises(DataError, match="more than 100 bytes"):
        load_dataset("mnist")


def tar_bomb(size: int = BOMB_SIZE) -> bytes:
    """A cifar-10-binary.tar.gz whose data_batch_1.bin is ``size`` zero bytes (streamed, never held)."""
    class Zeros(io.RawIOBase):
        def __init__(self):
            self.left = size

        def readable(self):
            return True

        def readinto(self, b):
            n = min(len(b), self.left)
            b[:n] = bytes(n)
            self.left -= n
            return n

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=9) as tar:
        member = tarfile.TarInfo("cifar-10-batches-bin/data_batch_1.bin")
        member.size = size
        tar.addfile(member, io.BufferedReader(Zeros(), 1 << 20))
    return buf.getvalue()


def test_cifar_tar_bomb_is_capped_by_the_expected_records(data_env, monkeypatch):
    bomb = tar_bomb()
    info = patch_entry(monkeypatch, "cifar10", {"cifar-10-binary.tar.gz": bomb})  # its checksum even matches
    small = dataclasses.replace(info, train_size=20, test_size=3)  # its records + 4 MiB: about 4.3 MB
    monkeypatch.setitem(catalogue.DATASETS, "cifar10", small)
    write_files(data_env / "data" / "cifar10", {"cifar-10-binary.tar.gz": bomb})
    exc, peak = peak_memory(lambda: load_dataset("cifar10"))
    assert peak < MEMORY_BOUND, f"refusing the bomb allocated {peak / 2**20:.0f} MiB"
    assert isinstance(exc, DataError) and "cifar-10-binary.tar.gz" in str(exc) and "decompresses to more" in str(exc)
    # The real thing still loads, its members read as views of the tar.
    tar = tiny_cifar_tar()
    patch_entry(monkeypatch, "cifar10", {"cifar-10-binary.tar.gz": tar})
    write_files(data_env / "data" / "cifar10", {"cifar-10-binary.tar.gz": tar})
    assert len(load_dataset("cifar10", normalize="none").train) == 20


# ------------------------------------------------------------------ finding 4a: a damaged store


def damaged(path, how: str):
    if how == "random":
        path.write_bytes(os.urandom(100))
        return
    s = Store(path)
    for i in range(30):
        run = s.create_run({"name": f"r{i}", "pad": "x" * 2000}, name=f"r{i}")
        s.add_metrics(run, [("acc", j, j, 0.5, 0.0) for j in range(100)])
    s.close()
    with sqlite3.connect(path) as con:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    os.truncate(path, os.path.getsize(path) // 2)


@pytest.mark.parametrize("how", ["random", "truncated"])
def test_damaged_store_is_store_unavailable(tmp_path, how):
    path = tmp_path / "runs.db"
    damaged(path, how)
    with pytest.raises(StoreUnavailable) as exc:
        Store(path)
    message = str(exc.value)
    assert f"the store at {path} is not a SQLite database (or is damaged)" in message
    assert "mv " in message and "--db" in message


@pytest.mark.slow  # runs the CLI in subprocesses
def test_cli_commands_on_a_damaged_store_exit_2_with_the_message(tmp_path):
    path = tmp_path / "runs.db"
    damaged(path, "random")
    for args in (["runs"], ["train", "preset/toy-linear", "--examples", "64"]):
        proc = console(*args, env={"LAYERLAB_DB": str(path)})
        assert proc.returncode == 2, (args, proc.stderr[-2000:])
        assert "is not a SQLite database (or is damaged)" in proc.stderr and "Traceback" not in proc.stderr


def test_app_on_a_damaged_store_serves_the_page_and_says_why(tmp_path, monkeypatch):
    path = tmp_path / "runs.db"
    damaged(path, "random")
    monkeypatch.setenv("LAYERLAB_DB", str(path))
    with TestClient(create_app(workers=1), base_url="http://127.0.0.1", raise_server_exceptions=False) as c:
        assert c.get("/").status_code == 200
        assert c.get("/api/meta").status_code == 200
        health = c.get("/api/health")
        assert health.status_code == 503 and health.json()["ok"] is False
        assert "is not a SQLite database" in health.json()["store_error"]
        runs = c.get("/api/runs")
        assert runs.status_code == 503 and "is not a SQLite database" in runs.json()["detail"]


@pytest.mark.slow  # runs the CLI in subprocesses
def test_serve_starts_on_a_damaged_store(tmp_path):
    path = tmp_path / "runs.db"
    damaged(path, "random")
    proc = subprocess.Popen([sys.executable, "-m", "layerlab.server", "--port", "0", "--db", str(path),
                             "--workers", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
        assert match, (line, proc.stderr.read() if proc.poll() is not None else "")
        url, deadline = match.group(1), time.monotonic() + 20
        while True:
            try:
                health = httpx.get(url + "api/health", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "serve did not answer"
                time.sleep(0.1)
        assert health.status_code == 503 and "is not a SQLite database" in health.json()["store_error"]
        assert httpx.get(url, timeout=5).status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=20)


# ------------------------------------------------------------------ finding 4b: an unusable data folder


def test_unlookable_data_folder_is_not_available_and_meta_answers(tmp_path, monkeypatch):
    """A path the OS refuses to look at (here: a name too long; as a user, a chmod 000 folder)
    raised OSError out of ``available`` and made /api/meta a 500."""
    monkeypatch.setenv("LAYERLAB_DATA", str(tmp_path / ("x" * 300)))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert available("mnist") is False
    store = Store(tmp_path / "runs.db")
    with TestClient(create_app(store, workers=0), base_url="http://127.0.0.1", raise_server_exceptions=False) as c:
        meta = c.get("/api/meta")
        assert meta.status_code == 200
        assert {d["name"]: d["available"] for d in meta.json()["datasets"]}["mnist"] is False
        assert c.get("/api/datasets/mnist").status_code == 200
    store.close()


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a chmod 000 folder anyway")
def test_chmod_000_data_folder(data_env, monkeypatch):
    files = tiny_mnist_files()
    patch_entry(monkeypatch, "mnist", files)
    d = write_files(data_env / "data" / "mnist", files)
    d.chmod(0)
    try:
        assert available("mnist") is False
        proc = console("data", "show", "mnist", "--no-download")
        assert proc.returncode == 2 and "cannot look" in proc.stderr
    finally:
        d.chmod(0o755)


@pytest.mark.slow  # runs the CLI in subprocesses
def test_data_show_says_what_is_wrong_with_the_files(data_env, monkeypatch):
    d = data_env / "data" / "mnist"
    write_files(d, tiny_mnist_files())
    (d / "train-images-idx3-ubyte.gz").unlink()
    (d / "train-images-idx3-ubyte.gz").mkdir()  # a folder where a file is expected
    (d / "t10k-labels-idx1-ubyte.gz").unlink()
    (d / "t10k-labels-idx1-ubyte.gz").symlink_to(data_env / "gone.gz")  # a broken link
    assert available("mnist") is False
    proc = console("data", "show", "mnist", "--no-download",
                   env={"LAYERLAB_DATA": str(data_env / "data"), "XDG_CACHE_HOME": str(data_env / "cache")})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    flat = " ".join(proc.stderr.split())
    assert "train-images-idx3-ubyte.gz is a directory, not a file" in flat
    assert "t10k-labels-idx1-ubyte.gz is a broken symbolic link" in flat
    listing = console("data", "list", env={"LAYERLAB_DATA": str(data_env / "data"),
                                           "XDG_CACHE_HOME": str(data_env / "cache")})
    assert listing.returncode == 0 and "unusable" in listing.stdout
