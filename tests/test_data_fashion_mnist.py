"""The real Fashion-MNIST from Debian's dataset-fashion-mnist, and the resident-tensor API."""
from __future__ import annotations

import gzip
import hashlib
import time
from pathlib import Path

import pytest
import torch
from data_fixtures import data_env  # noqa: F401

from layerlab.data import get_info, load_dataset, locate
from layerlab.data.loaders import clear_cache
from layerlab.errors import DataError

DEBIAN = Path("/usr/share/datasets/fashion-mnist")
pytestmark = pytest.mark.skipif(not (DEBIAN / "train-images-idx3-ubyte.gz").exists(),
                                reason="Debian package dataset-fashion-mnist is not installed")


@pytest.fixture(scope="module")
def fm():
    return load_dataset("fashion-mnist")


def test_found_in_debian_dir(data_env):
    assert locate("fashion-mnist") == DEBIAN


def test_debian_files_match_catalogue_content_hashes():
    # Debian recompressed the files: the gz hashes differ, the decompressed content matches.
    for sf in get_info("fashion-mnist").files:
        data = (DEBIAN / sf.name).read_bytes()
        assert hashlib.sha256(data).hexdigest() != sf.sha256
        content = gzip.decompress(data)
        assert hashlib.sha256(content).hexdigest() == sf.content_sha256
        assert len(content) == sf.content_size


def test_counts_shapes_dtypes(fm):
    assert len(fm.train) == 60000 and len(fm.test) == 10000 and fm.val is None
    assert fm.train.x.shape == (60000, 1, 28, 28) and fm.test.x.shape == (10000, 1, 28, 28)
    assert fm.train.x.dtype == torch.uint8 and fm.train.y.dtype == torch.int64
    assert fm.train.y.shape == (60000,)
    assert fm.device == torch.device("cpu") and fm.normalize == "-1..1"


def test_published_class_balance(fm):
    st = fm.stats()
    assert st["counts"] == {"train": 60000, "test": 10000}
    assert st["class_balance"]["train"] == {c: 6000 for c in get_info("fashion-mnist").class_names}
    assert st["class_balance"]["test"] == {c: 1000 for c in get_info("fashion-mnist").class_names}
    assert st["input_shape"] == (1, 28, 28) and st["label_shape"] == ()
    assert st["pixel_range"] == (0.0, 255.0)
    assert fm.stats() is st  # cached


def test_known_first_labels(fm):
    # Fashion-MNIST's first training labels: Ankle boot, T-shirt/top, T-shirt/top, Dress, ...
    assert fm.train.y[:6].tolist() == [9, 0, 0, 3, 0, 2]
    assert fm.test.y[:3].tolist() == [9, 2, 1]


def test_cold_load_is_fast():
    clear_cache()
    t = time.perf_counter()
    load_dataset("fashion-mnist", normalize="none")
    assert time.perf_counter() - t < 2.0  # typically ~0.35 s on 2 cores


@pytest.mark.parametrize("mode,lo,hi", [("-1..1", -1.0, 1.0), ("0..1", 0.0, 1.0), ("none", 0.0, 255.0)])
def test_normalisation_ranges(fm, mode, lo, hi):
    ds = load_dataset("fashion-mnist", normalize=mode, train_size=2000)
    x = ds.prepare(ds.train.x)
    assert x.dtype == torch.float32 and x.device == ds.device
    assert x.min().item() == pytest.approx(lo) and x.max().item() == pytest.approx(hi)
    raw = ds.train.x.float()
    expected = {"-1..1": raw / 127.5 - 1, "0..1": raw / 255, "none": raw}[mode]
    assert torch.allclose(x, expected, atol=1e-6)


def test_standardize_uses_train_statistics(fm):
    ds = load_dataset("fashion-mnist", normalize="standardize")
    x = ds.prepare(ds.train.x[:60000])
    assert x.mean().item() == pytest.approx(0.0, abs=1e-3)
    assert x.std().item() == pytest.approx(1.0, abs=1e-3)
    raw = ds.train.x.double()
    assert ds.prepare(ds.train.x[:1])[0, 0, 0, 0].item() == pytest.approx(
        ((0 - raw.mean()) / raw.std(correction=0)).item(), rel=1e-4)


def test_batches_cover_epoch_once_and_are_seeded(fm):
    ds = load_dataset("fashion-mnist", train_size=1000)
    batches = list(ds.batches("train", 64, generator=torch.Generator().manual_seed(3)))
    assert len(batches) == 16 and batches[-1][0].shape == (1000 - 15 * 64, 1, 28, 28)
    ys = torch.cat([y for _, y in batches])
    assert torch.equal(ys.sort().values, ds.train.y.sort().values)  # a permutation of the split
    assert not torch.equal(ys, ds.train.y)
    again = list(ds.batches("train", 64, generator=torch.Generator().manual_seed(3)))
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(batches, again))
    xs, ys = zip(*ds.batches("test", 1000, shuffle=False))
    assert torch.equal(torch.cat(ys), ds.test.y)
    assert torch.allclose(torch.cat(xs), ds.prepare(ds.test.x))
    assert len(list(ds.batches(batch_size=64, drop_last=True))) == 15


def test_subsets_are_seeded_and_class_mixed(fm):
    a = load_dataset("fashion-mnist", train_size=500, test_size=100, seed=1)
    b = load_dataset("fashion-mnist", train_size=500, test_size=100, seed=1)
    c = load_dataset("fashion-mnist", train_size=500, test_size=100, seed=2)
    assert len(a.train) == 500 and len(a.test) == 100
    assert torch.equal(a.train.x, b.train.x) and not torch.equal(a.train.x, c.train.x)
    assert min(a.stats()["class_balance"]["train"].values()) >= 25  # not the first 500 in file order
    assert len(a.train.y.unique()) == 10 and len(a.test.y.unique()) == 10


def test_val_split_is_disjoint(fm):
    ds = load_dataset("fashion-mnist", train_size=1000, val_fraction=0.2, seed=0)
    assert len(ds.train) == 800 and len(ds.val) == 200
    tr = {bytes(r) for r in ds.train.x.reshape(800, -1).numpy()}
    va = {bytes(r) for r in ds.val.x.reshape(200, -1).numpy()}
    assert not tr & va
    assert ds.stats()["counts"] == {"train": 800, "val": 200, "test": 10000}
    assert len(list(ds.batches("val", 50))) == 4


def test_resident_tensors_do_not_alias_the_cache(fm):
    ds = load_dataset("fashion-mnist", normalize="none")
    ds.train.x[0].fill_(7)  # a user writing into their copy must not corrupt the cache
    assert not torch.all(load_dataset("fashion-mnist").train.x[0] == 7)


@pytest.mark.parametrize("kwargs,needle", [
    (dict(normalize="minmax"), "The 'normalize' parameter of load_dataset must be one of"),
    (dict(train_size=0), "The 'train_size' parameter of load_dataset must be an integer in the range [1, 60000]"),
    (dict(test_size=10001), "[1, 10000] for fashion-mnist. Got 10001 instead."),
    (dict(val_fraction=1.0), "The 'val_fraction' parameter of load_dataset must be a float in the range [0, 1)"),
    (dict(options={"noise": 0.1}), "unknown option 'noise' for data set 'fashion-mnist'; it takes: none"),
    (dict(device="cuda:7") if not torch.cuda.is_available() else dict(device="nonsense"), "device"),
])
def test_bad_arguments(kwargs, needle):
    with pytest.raises(DataError) as e:
        load_dataset("fashion-mnist", **kwargs)
    assert needle in str(e.value)


def test_unknown_name_and_split(fm):
    with pytest.raises(DataError, match="unknown data set 'fashion'; known data sets: mnist, fashion-mnist"):
        load_dataset("fashion")
    with pytest.raises(DataError, match="has no 'val' split"):
        next(fm.batches("val"))
    with pytest.raises(DataError, match="unknown split 'dev'"):
        next(fm.batches("dev"))
