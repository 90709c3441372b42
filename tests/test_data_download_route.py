"""The builder's Download button, server side: ``/api/datasets/{name}/download`` against a real
server and a loopback HTTP mirror serving tiny files in the real MNIST format.

The catalogue entry is patched to the tiny files' checksums (``data_fixtures.patch_entry``), and
the mirror list is pointed at the loopback server through ``$LAYERLAB_MIRRORS``, as a student's
machine would point it at a local mirror. The server runs in this process, so it sees both.
"""
from __future__ import annotations

import gzip
import time

import httpx
import numpy as np
import pytest
from data_fixtures import (IDX_NAMES, data_env, http_server, idx_bytes, patch_entry, refused_url,  # noqa: F401
                           tiny_mnist_files)

from layerlab.server.testing import LiveServer
from layerlab.store import Store

pytestmark = pytest.mark.network
WRITE = {"X-Layerlab": "1"}
SPEC = {"name": "m", "data": {"dataset": "mnist"}, "model": ["flatten", {"fc": {"units": 10}}],
        "train": {"examples": 100}}


@pytest.fixture
def live(tmp_path):
    store = Store(tmp_path / "runs.db")
    with LiveServer(store, workers=0) as srv:
        yield srv
    store.close()


def routes(files):
    return {f"/{n}": (200, b, None) for n, b in files.items()}


def wait_for_end(live, name="mnist", timeout=20.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = httpx.get(live.url + f"api/datasets/{name}/download").json()
        if job["state"] in ("done", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"the download did not end in {timeout} s: {job}")


def test_download_fetches_verifies_and_makes_the_spec_valid(data_env, monkeypatch, live):
    files = tiny_mnist_files()
    patch_entry(monkeypatch, "mnist", files, mirrors=(refused_url(),))
    before = httpx.post(live.url + "api/check", json=SPEC).json()
    assert not before["valid"]
    (problem,) = before["problems"]
    assert problem["category"] == "data" and problem["field"] == "data.dataset"
    assert str(data_env) not in problem["message"] + problem["hint"] and "download=False" not in problem["message"]
    assert httpx.get(live.url + "api/datasets/mnist/download").json()["state"] == "idle"

    with http_server(routes(files)) as (url, hits):
        monkeypatch.setenv("LAYERLAB_MIRRORS", url)
        started = httpx.post(live.url + "api/datasets/mnist/download", headers=WRITE)
        assert started.status_code == 202, started.text
        assert started.json()["state"] in ("running", "done")
        job = wait_for_end(live)
    assert job["state"] == "done", job
    total = sum(len(b) for b in files.values())
    assert (job["bytes_done"], job["bytes_total"], job["fraction"], job["files"]) == (total, total, 1.0, 4)
    assert job["error"] is None
    assert sorted(hits) == sorted(f"/{n}" for n in IDX_NAMES)
    dest = data_env / "data" / "mnist"
    assert sorted(p.name for p in dest.iterdir()) == sorted(IDX_NAMES)  # no .part file left
    for n, b in files.items():
        assert (dest / n).read_bytes() == b
    after = httpx.post(live.url + "api/check", json=SPEC).json()
    assert after["valid"], after["problems"]
    assert httpx.get(live.url + "api/datasets/mnist").json()["available"] is True
    stats = httpx.get(live.url + "api/datasets/mnist/stats").json()["stats"]
    assert stats["counts"]["train"] == 30 and stats["counts"]["test"] == 10


def test_a_corrupt_file_fails_without_naming_server_folders(data_env, monkeypatch, live):
    files = tiny_mnist_files()
    patch_entry(monkeypatch, "mnist", files)
    evil = dict(files)
    evil[IDX_NAMES[0]] = gzip.compress(idx_bytes(np.zeros((30, 28, 28), np.uint8)), mtime=0)
    with http_server(routes(evil)) as (url, _):
        monkeypatch.setenv("LAYERLAB_MIRRORS", url)
        assert httpx.post(live.url + "api/datasets/mnist/download", headers=WRITE).status_code == 202
        job = wait_for_end(live)
    assert job["state"] == "failed"
    assert job["error"].startswith("data set 'mnist' could not be downloaded: ")
    assert f"{url}/{IDX_NAMES[0]}: downloaded file: checksum mismatch" in job["error"]
    assert str(data_env) not in job["error"]
    dest = data_env / "data" / "mnist"
    assert not dest.exists() or list(dest.iterdir()) == []  # neither the bad file nor a temp file
    assert not httpx.post(live.url + "api/check", json=SPEC).json()["valid"]


def test_an_unreachable_mirror_is_said(data_env, monkeypatch, live):
    patch_entry(monkeypatch, "mnist", tiny_mnist_files())
    dead = refused_url()
    monkeypatch.setenv("LAYERLAB_MIRRORS", dead)
    assert httpx.post(live.url + "api/datasets/mnist/download", headers=WRITE).status_code == 202
    job = wait_for_end(live)
    assert job["state"] == "failed"
    assert f"{dead}{IDX_NAMES[0]}: unreachable" in job["error"], job["error"]
    assert str(data_env) not in job["error"]


def test_bundled_and_unknown_sets(live):
    bundled = httpx.post(live.url + "api/datasets/digits/download", headers=WRITE)
    assert bundled.status_code == 409
    assert bundled.json()["detail"] == ("data set 'digits' is bundled: it is always available, there is nothing "
                                        "to download")
    assert httpx.post(live.url + "api/datasets/nope/download", headers=WRITE).status_code == 404
    assert httpx.get(live.url + "api/datasets/nope/download").status_code == 404
    # a write without the X-Layerlab header (another site's form) is refused before anything starts
    assert httpx.post(live.url + "api/datasets/mnist/download").status_code == 403
