"""Real downloads from a loopback http.server: good, wrong checksum, truncated, 404 then a
second mirror, and offline (connection refused)."""
from __future__ import annotations

import gzip

import numpy as np
import pytest
import torch
from data_fixtures import (IDX_NAMES, data_env, http_server, idx_bytes, patch_entry,  # noqa: F401
                           refused_url, tiny_cifar_arrays, tiny_cifar_tar, tiny_mnist_arrays,
                           tiny_mnist_files)

from layerlab.data import fetch, load_dataset, locate
from layerlab.errors import DataError

pytestmark = pytest.mark.network
TIMEOUT = 5.0


def ok_routes(files, prefix=""):
    return {f"{prefix}/{n}": (200, b, None) for n, b in files.items()}


def leftovers(directory):
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def test_good_download_then_load(data_env, monkeypatch):
    files = tiny_mnist_files()
    patch_entry(monkeypatch, "mnist", files)
    seen = []
    with http_server(ok_routes(files, "/m")) as (url, hits):
        where = fetch("mnist", mirrors=[url + "/m/"], timeout=TIMEOUT,
                      progress=lambda f, done, total: seen.append((f, done, total)))
    assert where == data_env / "data" / "mnist"
    assert leftovers(where) == sorted(IDX_NAMES)  # no temp files left behind
    for n, b in files.items():
        assert (where / n).read_bytes() == b
    # progress: every file reported, last call has done == total == size
    for n, b in files.items():
        calls = [c for c in seen if c[0] == n]
        assert calls[0][1] == 0 and calls[-1][1:] == (len(b), len(b))
    assert locate("mnist") == where
    ds = load_dataset("mnist", normalize="none", download=False)
    x_tr, y_tr, x_te, y_te = tiny_mnist_arrays()
    assert ds.train.x.shape == (30, 1, 28, 28) and ds.train.x.dtype == torch.uint8
    assert torch.equal(ds.train.x[:, 0], torch.from_numpy(x_tr))
    assert torch.equal(ds.test.y, torch.from_numpy(y_te.astype(np.int64)))


def test_load_dataset_downloads_missing_files_via_env_mirrors(data_env, monkeypatch):
    files = tiny_mnist_files()
    patch_entry(monkeypatch, "mnist", files, mirrors=(refused_url(),))
    with http_server(ok_routes(files)) as (url, hits):
        monkeypatch.setenv("LAYERLAB_MIRRORS", url)  # overrides the catalogue's (dead) mirror
        ds = load_dataset("mnist", timeout=TIMEOUT)
    assert sorted(hits) == sorted(f"/{n}" for n in IDX_NAMES)
    assert len(ds.train) == 30 and len(ds.test) == 10


def test_wrong_checksum_leaves_no_file(data_env, monkeypatch):
    files = tiny_mnist_files()
    patch_entry(monkeypatch, "mnist", files)
    evil = dict(files)
    evil[IDX_NAMES[0]] = gzip.compress(idx_bytes(np.zeros((30, 28, 28), np.uint8)), mtime=0)
    dest = data_env / "data" / "mnist"
    with http_server(ok_routes(evil)) as (url, hits):
        with pytest.raises(DataError) as e:
            fetch("mnist", mirrors=[url], timeout=TIMEOUT)
    msg = str(e.value)
    assert "checksum mismatch" in msg and f"{url}/{IDX_NAMES[0]}" in msg
    assert leftovers(dest) == []  # neither the bad file nor a .part temp file


def test_truncated_body_is_rejected(data_env, monkeypatch):
    files = tiny_mnist_files()
    patch_entry(monkeypatch, "mnist", files)
    routes = ok_routes(files)
    body = files[IDX_NAMES[0]]
    routes[f"/{IDX_NAMES[0]}"] = (200, body[: len(body) // 2], len(body))  # server hangs up early
    with http_server(routes) as (url, hits):
        with pytest.raises(DataError) as e:
            fetch("mnist", mirrors=[url], timeout=TIMEOUT)
    assert f"truncated download: got {len(body) // 2} of {len(body)} bytes" in str(e.value)
    assert leftovers(data_env / "data" / "mnist") == []


def test_404_on_first_mirror_then_second_mirror_works(data_env, monkeypatch):
    files = tiny_mnist_files()
    patch_entry(monkeypatch, "mnist", files)
    with http_server(ok_routes(files, "/good")) as (url, hits):
        where = fetch("mnist", mirrors=[url + "/gone", url + "/good"], timeout=TIMEOUT)
    assert hits[:2] == [f"/gone/{IDX_NAMES[0]}", f"/good/{IDX_NAMES[0]}"]
    assert leftovers(where) == sorted(IDX_NAMES)


def test_offline_gives_one_clear_error(data_env, monkeypatch):
    files = tiny_mnist_files()
    patch_entry(monkeypatch, "mnist", files)
    dead = refused_url()
    with pytest.raises(DataError) as e:
        load_dataset("mnist", mirrors=[dead], timeout=TIMEOUT)
    msg = str(e.value)
    assert "data set 'mnist' is not available" in msg
    for n in IDX_NAMES:
        assert n in msg
    for d in (data_env / "data" / "mnist", data_env / "cache" / "layerlab" / "mnist",
              "/usr/share/datasets/mnist"):
        assert str(d) in msg
    assert "Connection refused" in msg and dead in msg
    assert "to install by hand" in msg
    assert leftovers(data_env / "data" / "mnist") == []


def test_download_disabled_names_dirs(data_env):
    with pytest.raises(DataError, match=r"(?s)looked for: cifar-10-binary.tar.gz\n.*cache/layerlab/cifar10;"):
        load_dataset("cifar10", download=False)


def test_cifar_download_and_load(data_env, monkeypatch):
    tar = tiny_cifar_tar()
    patch_entry(monkeypatch, "cifar10", {"cifar-10-binary.tar.gz": tar})
    with http_server(ok_routes({"cifar-10-binary.tar.gz": tar})) as (url, hits):
        ds = load_dataset("cifar10", normalize="none", mirrors=[url], timeout=TIMEOUT)
    batches = tiny_cifar_arrays()
    x_train = np.concatenate([b[0] for b in batches[:5]])
    assert ds.train.x.shape == (20, 3, 32, 32) and ds.test.x.shape == (3, 3, 32, 32)
    assert torch.equal(ds.train.x, torch.from_numpy(x_train))
    assert torch.equal(ds.test.y, torch.from_numpy(batches[5][1].astype(np.int64)))
