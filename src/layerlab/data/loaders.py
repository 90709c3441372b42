"""Loaders: one function per source kind, looked up by ``DatasetInfo.loader``.

A loader returns the whole raw data set as CPU tensors (``Raw``): images stay uint8 in
(N, C, H, W); generated and feature data are float32. Subsetting, validation splits,
device placement and normalisation happen in ``resident.py``. File-backed raw arrays are
cached in-process, keyed by data set, directory and the files' size and mtime.
"""
from __future__ import annotations

import functools
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..errors import DataError
from .catalogue import DatasetInfo, get_info
from .fetch import DEFAULT_TIMEOUT, content_limit, fetch, find_file, locate, missing_message, verify_file
from .readers import parse_idx, read_cifar10_tar
from .toy import check_options, make_playground, make_toy_functions

__all__ = ["Raw", "LOADERS", "load_raw", "clear_cache"]


@dataclass(frozen=True)
class Raw:
    """A whole data set, on the CPU, before subsetting and normalisation."""

    x_train: torch.Tensor  # (N, *input_shape)
    y_train: torch.Tensor  # (N,) int64 or (N, *target_shape) float32
    x_test: torch.Tensor
    y_test: torch.Tensor
    directory: Path | None = None  # where the files were read from


def _tensor(a: np.ndarray) -> torch.Tensor:
    # Arrays from np.frombuffer are read-only; torch warns about that. The cached tensors are
    # never handed out or written: resident.py always copies (index, clone or .to(device)).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(a)


def _directory(info: DatasetInfo, mirrors, download: bool, timeout: float) -> Path:
    found = locate(info.name)
    if found is not None:
        return found
    if not download:
        raise DataError(missing_message(info, ["downloading disabled (download=False)"]))
    return fetch(info.name, mirrors=mirrors, timeout=timeout)


def _signature(info: DatasetInfo, directory: Path) -> tuple:
    sig = []
    for sf in info.files:
        p = find_file(directory, sf)
        st = p.stat()
        sig.append((p.name, st.st_size, st.st_mtime_ns, sf.sha256, sf.content_sha256))
    return tuple(sig)


@functools.lru_cache(maxsize=8)
def _read_idx_set(name: str, directory: str, signature: tuple) -> Raw:
    info, d = get_info(name), Path(directory)
    paths = {sf.name: find_file(d, sf) for sf in info.files}

    def read(sf):
        path = paths[sf.name]
        ndim = 3 if "images" in sf.name else 1
        return sf.name, parse_idx(verify_file(path, sf, info=info), path, ndim=ndim)  # content_limit-capped

    with ThreadPoolExecutor(max_workers=2) as pool:  # zlib and hashlib release the GIL
        arrays = dict(pool.map(read, info.files))
    out = []
    for split in ("train", "t10k"):
        (img_name, images), = [(k, v) for k, v in arrays.items() if k.startswith(f"{split}-images")]
        (lab_name, labels), = [(k, v) for k, v in arrays.items() if k.startswith(f"{split}-labels")]
        if images.shape[1:] != tuple(info.input_shape[1:]):
            raise DataError(f"{paths[img_name]}: images are {images.shape[1]}x{images.shape[2]}, "
                            f"expected {info.input_shape[1]}x{info.input_shape[2]}")
        if len(images) != len(labels):
            raise DataError(f"{paths[img_name]} has {len(images)} images but "
                            f"{paths[lab_name]} has {len(labels)} labels")
        if len(labels) and int(labels.max()) >= info.num_classes:
            raise DataError(f"{paths[lab_name]}: label {int(labels.max())} out of range "
                            f"0..{info.num_classes - 1}")
        out += [_tensor(images[:, None]),  # (N, 1, H, W)
                _tensor(labels).to(torch.int64)]
    return Raw(*out, directory=d)


def load_idx(info: DatasetInfo, opts: dict, *, mirrors, download, timeout) -> Raw:
    d = _directory(info, mirrors, download, timeout)
    return _read_idx_set(info.name, str(d), _signature(info, d))


@functools.lru_cache(maxsize=2)
def _read_cifar_set(name: str, directory: str, signature: tuple) -> Raw:
    info, d = get_info(name), Path(directory)
    sf = info.files[0]
    path = find_file(d, sf)
    data = verify_file(path, sf, info=info)
    x_train, y_train, x_test, y_test = read_cifar10_tar(path, data, limit=content_limit(info, sf), name=info.name)
    return Raw(_tensor(x_train), _tensor(y_train).to(torch.int64),
               _tensor(x_test), _tensor(y_test).to(torch.int64), directory=d)


def load_cifar10_binary(info: DatasetInfo, opts: dict, *, mirrors, download, timeout) -> Raw:
    d = _directory(info, mirrors, download, timeout)
    return _read_cifar_set(info.name, str(d), _signature(info, d))


DIGITS_SPLIT_SEED = 0


@functools.lru_cache(maxsize=1)
def _digits(train_size: int) -> Raw:
    from sklearn.datasets import load_digits  # bundled with scikit-learn: no download

    bunch = load_digits()
    x = bunch.images.astype(np.uint8)[:, None]  # (1797, 1, 8, 8), values 0..16
    y = bunch.target.astype(np.int64)
    order = np.random.default_rng(DIGITS_SPLIT_SEED).permutation(len(x))
    tr, te = order[:train_size], order[train_size:]
    return Raw(torch.from_numpy(x[tr]), torch.from_numpy(y[tr]),
               torch.from_numpy(x[te]), torch.from_numpy(y[te]))


def load_digits_set(info: DatasetInfo, opts: dict, **_) -> Raw:
    return _digits(info.train_size)


def load_toy_functions(info: DatasetInfo, opts: dict, **_) -> Raw:
    target = info.name.split("/", 1)[1] if "/" in info.name else None
    return Raw(*map(torch.from_numpy, make_toy_functions(target, opts)))


def load_playground(info: DatasetInfo, opts: dict, **_) -> Raw:
    arrays = make_playground(info.name, opts, classification=info.task == "classification")
    return Raw(*map(torch.from_numpy, arrays))


LOADERS: dict[str, Callable[..., Raw]] = {
    "idx": load_idx,
    "cifar10-binary": load_cifar10_binary,
    "digits": load_digits_set,
    "toy-functions": load_toy_functions,
    "playground": load_playground,
}


def load_raw(name: str, *, options: dict | None = None, mirrors: list[str] | None = None,
             download: bool = True, timeout: float = DEFAULT_TIMEOUT) -> Raw:
    """The whole data set ``name`` as CPU tensors; options checked against the catalogue."""
    info = get_info(name)
    opts = check_options(name, info.options, options)
    return LOADERS[info.loader](info, opts, mirrors=mirrors, download=download, timeout=timeout)


def clear_cache() -> None:
    """Forget cached raw arrays (benchmarks use it to time a cold load)."""
    _read_idx_set.cache_clear()
    _read_cifar_set.cache_clear()
    _digits.cache_clear()
