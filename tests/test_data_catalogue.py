"""The catalogue: every entry complete and consistent with its loader."""
from __future__ import annotations

import re

import pytest

from layerlab.data import DATASETS, dataset_names, get_info, load_dataset, search_dirs
from layerlab.data.loaders import LOADERS

HEX64 = re.compile(r"[0-9a-f]{64}")


@pytest.mark.parametrize("name", dataset_names())
def test_entry_is_complete(name):
    info = get_info(name)
    assert info.loader in LOADERS
    assert info.task in ("classification", "regression") and info.doc and info.citation
    assert info.train_size and info.test_size
    if info.task == "classification":
        assert len(info.class_names) == info.num_classes == info.output_size
    else:
        assert info.num_classes is None and len(info.target_names) == info.output_size
    if info.source == "files":
        assert info.files and info.mirrors
        for sf in info.files:
            assert HEX64.fullmatch(sf.sha256) and sf.size
            assert sf.content_sha256 is None or HEX64.fullmatch(sf.content_sha256)


def test_published_checksums():
    # tensorflow_datasets url_checksums (mnist.txt, fashion_mnist.txt, cifar10.txt)
    assert get_info("mnist").files[0].sha256.startswith("440fcabf73cc546f")
    assert get_info("fashion-mnist").files[0].size == 26421880
    assert get_info("cifar10").files[0].sha256 == \
        "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd"


@pytest.mark.parametrize("name", [n for n in DATASETS if DATASETS[n].source != "files"])
def test_generated_and_bundled_sets_match_their_entry(name):
    info = get_info(name)
    ds = load_dataset(name)
    assert tuple(ds.train.x.shape[1:]) == info.input_shape
    assert len(ds.train) == info.train_size and len(ds.test) == info.test_size
    assert tuple(ds.train.y.shape[1:]) == (() if info.task == "classification" else info.target_shape)


def test_search_dirs_order(monkeypatch, tmp_path):
    monkeypatch.setenv("LAYERLAB_DATA", str(tmp_path / "d"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "c"))
    assert search_dirs("mnist") == [tmp_path / "d" / "mnist", tmp_path / "c" / "layerlab" / "mnist",
                                    __import__("pathlib").Path("/usr/share/datasets/mnist")]
    monkeypatch.delenv("LAYERLAB_DATA")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert search_dirs("mnist")[0] == tmp_path / "home" / ".cache" / "layerlab" / "mnist"
