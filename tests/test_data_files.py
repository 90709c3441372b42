"""Bad files on disk: every failure is a DataError naming the file, never a NumPy traceback."""
from __future__ import annotations

import dataclasses
import gzip

import numpy as np
import pytest
import torch
from data_fixtures import (IDX_NAMES, cifar_records, data_env, idx_bytes, patch_entry,  # noqa: F401
                           sha, tiny_cifar_arrays, tiny_cifar_tar, tiny_mnist_arrays,
                           tiny_mnist_files, write_files)

from layerlab.data import catalogue, load_dataset, locate
from layerlab.data.catalogue import SourceFile
from layerlab.data.readers import parse_cifar_records, parse_idx
from layerlab.errors import DataError


def install(data_env, monkeypatch, files, *, name="mnist", on_disk=None):
    """Catalogue entry trusting ``files``; ``on_disk`` (default: the same) written to LAYERLAB_DATA."""
    patch_entry(monkeypatch, name, files)
    return write_files(data_env / "data" / name, on_disk if on_disk is not None else files)


def test_tiny_idx_set_loads_with_values(data_env, monkeypatch):
    d = install(data_env, monkeypatch, tiny_mnist_files())
    assert locate("mnist") == d
    ds = load_dataset("mnist", normalize="none")
    x_tr, y_tr, x_te, y_te = tiny_mnist_arrays()
    assert torch.equal(ds.train.x, torch.from_numpy(x_tr)[:, None])
    assert torch.equal(ds.train.y, torch.from_numpy(y_tr).long())
    assert ds.train.y.dtype == torch.int64 and ds.test.x.shape == (10, 1, 28, 28)


def test_uncompressed_idx_files_are_accepted(data_env, monkeypatch):
    files = tiny_mnist_files()
    plain = {n[:-3]: gzip.decompress(b) for n, b in files.items()}
    install(data_env, monkeypatch, files, on_disk=plain)
    ds = load_dataset("mnist", normalize="none")
    assert torch.equal(ds.test.x[:, 0], torch.from_numpy(tiny_mnist_arrays()[2]))


def test_recompressed_file_verifies_by_content_hash(data_env, monkeypatch):
    files = tiny_mnist_files()
    info = patch_entry(monkeypatch, "mnist", files)
    # Like Debian: same content, different gzip bytes; the entry knows the content hash.
    content_files = tuple(SourceFile(sf.name, sf.sha256, sf.size, sha(gzip.decompress(files[sf.name])))
                          for sf in info.files)
    monkeypatch.setitem(catalogue.DATASETS, "mnist", dataclasses.replace(info, files=content_files))
    recompressed = {n: gzip.compress(gzip.decompress(b), compresslevel=1, mtime=12345) for n, b in files.items()}
    assert all(recompressed[n] != files[n] for n in files)
    write_files(data_env / "data" / "mnist", recompressed)
    assert len(load_dataset("mnist").train) == 30


def test_checksum_mismatch_names_file(data_env, monkeypatch):
    files = tiny_mnist_files()
    bad = dict(files)
    x = tiny_mnist_arrays()[0].copy()
    x[0, 0, 0] ^= 1  # one flipped bit, still a well-formed IDX file
    bad[IDX_NAMES[0]] = gzip.compress(idx_bytes(x), mtime=0)
    d = install(data_env, monkeypatch, files, on_disk=bad)
    with pytest.raises(DataError) as e:
        load_dataset("mnist")
    assert f"{d / IDX_NAMES[0]}: checksum mismatch: sha256 is {sha(bad[IDX_NAMES[0]])}" in str(e.value)


@pytest.mark.parametrize("case,payload,needle", [
    ("bad magic", b"\x08\x03\x00\x00" + bytes(100), "not an IDX file (bad magic number 08030000"),
    ("truncated", None, "IDX file is truncated: header declares 30x28x28 values of 1 byte(s), i.e. 23536 bytes, but the file has 23000"),
    ("too long", None, "longer than its header says"),
    ("wrong ndim", idx_bytes(np.zeros((30,), np.uint8)), "IDX file has 1 dimensions, expected 3"),
    ("empty", b"", "bad magic number empty"),
])
def test_malformed_idx_is_a_data_error_naming_the_file(data_env, monkeypatch, case, payload, needle):
    good = idx_bytes(tiny_mnist_arrays()[0])
    if case == "truncated":
        payload = good[:23000]
    elif case == "too long":
        payload = good + b"\x00"
    files = tiny_mnist_files()
    files[IDX_NAMES[0]] = gzip.compress(payload, mtime=0)  # the catalogue trusts the bad file
    d = install(data_env, monkeypatch, files)
    with pytest.raises(DataError) as e:
        load_dataset("mnist")
    assert str(e.value).startswith(str(d / IDX_NAMES[0]) + ": ")
    assert needle in str(e.value)


def test_truncated_gzip_is_a_data_error(data_env, monkeypatch):
    files = tiny_mnist_files()
    files[IDX_NAMES[2]] = files[IDX_NAMES[2]][:-40]
    d = install(data_env, monkeypatch, files)
    with pytest.raises(DataError, match="not a valid gzip file"):
        load_dataset("mnist")


def test_image_and_label_counts_must_agree(data_env, monkeypatch):
    files = tiny_mnist_files()
    files[IDX_NAMES[1]] = gzip.compress(idx_bytes(np.zeros(29, np.uint8)), mtime=0)
    install(data_env, monkeypatch, files)
    with pytest.raises(DataError, match="has 30 images but .*train-labels-idx1-ubyte.gz has 29 labels"):
        load_dataset("mnist")


def test_label_out_of_range(data_env, monkeypatch):
    files = tiny_mnist_files()
    files[IDX_NAMES[3]] = gzip.compress(idx_bytes(np.full(10, 12, np.uint8)), mtime=0)
    install(data_env, monkeypatch, files)
    with pytest.raises(DataError, match="label 12 out of range 0..9"):
        load_dataset("mnist")


def test_parse_idx_returns_header_shape():
    a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    assert np.array_equal(parse_idx(idx_bytes(a), "x", ndim=3), a)


# --- CIFAR-10 binary ------------------------------------------------------------------------

def test_cifar_record_layout_is_chw():
    x = np.zeros((1, 3, 32, 32), np.uint8)
    x[0, 0, 0, 1] = 10  # red, row 0, column 1
    x[0, 2, 31, 31] = 30  # blue, last pixel
    images, labels = parse_cifar_records(cifar_records(x, np.array([7], np.uint8)), "rec")
    assert labels.tolist() == [7]
    data = cifar_records(x, np.array([7], np.uint8))
    assert data[0] == 7 and data[1 + 1] == 10 and data[-1] == 30  # the binary layout itself
    assert np.array_equal(images, x)


def test_cifar_tiny_archive_loads(data_env, monkeypatch):
    tar = tiny_cifar_tar()
    install(data_env, monkeypatch, {"cifar-10-binary.tar.gz": tar}, name="cifar10")
    ds = load_dataset("cifar10", normalize="0..1")
    batches = tiny_cifar_arrays()
    assert ds.train.x.dtype == torch.uint8 and ds.train.x.shape == (20, 3, 32, 32)
    assert torch.equal(ds.train.y, torch.from_numpy(np.concatenate([b[1] for b in batches[:5]])).long())
    xb = ds.prepare(ds.test.x)
    assert torch.allclose(xb, torch.from_numpy(batches[5][0]).float() / 255)


def test_cifar_wrong_record_length(data_env, monkeypatch):
    tar = tiny_cifar_tar(record_bytes={"data_batch_3.bin": bytes(3073 * 2 + 100)})
    d = install(data_env, monkeypatch, {"cifar-10-binary.tar.gz": tar}, name="cifar10")
    with pytest.raises(DataError) as e:
        load_dataset("cifar10")
    assert str(e.value).startswith(f"{d / 'cifar-10-binary.tar.gz'}:data_batch_3.bin: 6246 bytes "
                                   "is not a whole number of CIFAR-10 records (3073 bytes each")


def test_cifar_missing_member(data_env, monkeypatch):
    import io
    import tarfile
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        ti = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")  # the pickled (python) flavour
        ti.size = 3
        t.addfile(ti, io.BytesIO(b"abc"))
    install(data_env, monkeypatch, {"cifar-10-binary.tar.gz": buf.getvalue()}, name="cifar10")
    with pytest.raises(DataError, match=r"archive lacks data_batch_1.bin, .*test_batch.bin \(expected the CIFAR-10 \*binary\*"):
        load_dataset("cifar10")


def test_cifar_truncated_archive(data_env, monkeypatch):
    tar = tiny_cifar_tar()[:-500]
    install(data_env, monkeypatch, {"cifar-10-binary.tar.gz": tar}, name="cifar10")
    with pytest.raises(DataError, match="not a readable tar.gz archive|archive lacks"):
        load_dataset("cifar10")


def test_cifar_checksum_mismatch(data_env, monkeypatch):
    good = tiny_cifar_tar()
    other = tiny_cifar_tar(tiny_cifar_arrays(seed=1))
    d = install(data_env, monkeypatch, {"cifar-10-binary.tar.gz": good},
                name="cifar10", on_disk={"cifar-10-binary.tar.gz": other})
    with pytest.raises(DataError, match="cifar-10-binary.tar.gz: checksum mismatch"):
        load_dataset("cifar10")
