"""Resident data sets: whole splits as tensors on the training device.

Data stays resident (DESIGN.md): images stay uint8 on the device and are turned into
normalised float32 one batch at a time, on the device; a batch is an index slice of a
seeded permutation, so an epoch has no per-example Python and no DataLoader.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import torch

from ..errors import DataError
from .catalogue import DatasetInfo, get_info
from .fetch import DEFAULT_TIMEOUT
from .loaders import load_raw

__all__ = ["Split", "ResidentDataset", "load_dataset", "NORMALIZATIONS"]

# "-1..1" is the Model Builder's default; ranges come from the catalogue's pixel_range, or,
# where the catalogue has none (generated sets), from the train split's min and max.
NORMALIZATIONS = ("-1..1", "0..1", "none", "standardize")


@dataclass
class Split:
    x: torch.Tensor  # (N, *input_shape); uint8 where the source is uint8 (images), else float32
    y: torch.Tensor  # (N,) int64 for classification; (N, *target_shape) float32 for regression

    def __len__(self) -> int:
        return int(self.x.shape[0])


@dataclass(eq=False)
class ResidentDataset:
    info: DatasetInfo
    train: Split
    test: Split
    val: Split | None
    device: torch.device
    normalize: str = "-1..1"
    _scale: torch.Tensor | None = field(default=None, repr=False)  # x * scale + shift
    _shift: torch.Tensor | None = field(default=None, repr=False)
    _stats: dict | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.normalize not in NORMALIZATIONS:
            raise DataError(f"The 'normalize' parameter of load_dataset must be one of "
                            f"{', '.join(map(repr, NORMALIZATIONS))}. Got {self.normalize!r} instead.")
        self._scale, self._shift = self._affine()

    def _affine(self) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Per-feature (or per-channel) scale and shift, computed once from train x."""
        if self.normalize == "none":
            return None, None
        x = self.train.x
        if self.normalize == "standardize":
            mean, std = _mean_std(x)
            std = torch.where(std > 0, std, torch.ones_like(std))  # constant features: shift only
            return (1.0 / std).float(), (-mean / std).float()
        if self.info.pixel_range is not None:
            lo, hi = (float(v) for v in self.info.pixel_range)
        else:
            lo, hi = float(x.min()), float(x.max())
        width = (hi - lo) or 1.0
        if self.normalize == "0..1":
            scale, shift = 1.0 / width, -lo / width
        else:  # "-1..1"
            scale, shift = 2.0 / width, -2.0 * lo / width - 1.0
        return (torch.tensor(scale, dtype=torch.float32, device=self.device),
                torch.tensor(shift, dtype=torch.float32, device=self.device))

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """float32 on device, normalised per batch on the device (standardize uses train mean/std computed once at load)."""
        x = x.to(self.device, non_blocking=True).to(torch.float32)
        if self._scale is None:
            return x
        return torch.addcmul(self._shift, x, self._scale)  # x * scale + shift, one kernel

    def split(self, name: str) -> Split:
        s = {"train": self.train, "test": self.test, "val": self.val}.get(name, "unknown")
        if s == "unknown":
            raise DataError(f"unknown split {name!r}; use 'train', 'test' or 'val'")
        if s is None:
            raise DataError(f"{self.info.name} has no 'val' split; load it with val_fraction > 0")
        return s

    def batches(self, split: str = "train", batch_size: int = 64, *,
                generator: torch.Generator | None = None, shuffle: bool = True,
                drop_last: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield (x_prepared, y) for one epoch: index slices of a seeded torch.randperm (generator on CPU ok, permutation moved to device once per epoch); no per-example Python, no DataLoader."""
        s = self.split(split)
        if not isinstance(batch_size, int) or batch_size < 1:
            raise DataError(f"The 'batch_size' parameter must be a positive integer. Got {batch_size!r} instead.")
        n = len(s)
        stop = n - n % batch_size if drop_last else n
        if not shuffle:
            for i in range(0, stop, batch_size):
                yield self.prepare(s.x[i:i + batch_size]), s.y[i:i + batch_size]
            return
        gen_device = generator.device if generator is not None else torch.device("cpu")
        perm = torch.randperm(n, generator=generator, device=gen_device).to(self.device)
        for i in range(0, stop, batch_size):
            idx = perm[i:i + batch_size]
            yield self.prepare(s.x[idx]), s.y[idx]

    def stats(self) -> dict:
        """Counts per split, shapes, raw x range, class balance or target mean/std; cached."""
        if self._stats is None:
            self._stats = _stats(self)
        return self._stats


def _mean_std(x: torch.Tensor, chunk: int = 8192) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel (images: dims 0,2,3) or per-feature mean and std in float64, chunked."""
    dims = (0, 2, 3) if x.dim() == 4 else (0,)
    shape = (x.shape[1], 1, 1) if x.dim() == 4 else x.shape[1:]
    total = torch.zeros(shape, dtype=torch.float64, device=x.device)
    total_sq = torch.zeros_like(total)
    for i in range(0, len(x), chunk):
        part = x[i:i + chunk].to(torch.float64)
        total += part.sum(dims, keepdim=x.dim() == 4).reshape(shape)
        total_sq += (part * part).sum(dims, keepdim=x.dim() == 4).reshape(shape)
    count = x.numel() / total.numel()
    mean = total / count
    var = (total_sq / count - mean * mean).clamp_min(0)
    return mean, var.sqrt()


def _stats(ds: ResidentDataset) -> dict:
    info = ds.info
    splits = {k: v for k, v in (("train", ds.train), ("val", ds.val), ("test", ds.test)) if v is not None}
    lo = min(float(s.x.min()) for s in splits.values() if len(s))
    hi = max(float(s.x.max()) for s in splits.values() if len(s))
    out = {
        "name": info.name,
        "task": info.task,
        "counts": {k: len(s) for k, s in splits.items()},
        "input_shape": tuple(ds.train.x.shape[1:]),
        "label_shape": tuple(ds.train.y.shape[1:]),
        "x_dtype": str(ds.train.x.dtype).removeprefix("torch."),
        "pixel_range": (lo, hi),
    }
    if info.task == "classification":
        names = info.class_names or tuple(str(i) for i in range(info.num_classes))
        out["class_balance"] = {
            k: dict(zip(names, torch.bincount(s.y, minlength=info.num_classes).tolist()))
            for k, s in splits.items()}
    else:
        targets = info.target_names or tuple(f"y{i}" for i in range(info.output_size))
        out["target_mean"], out["target_std"] = {}, {}
        for k, s in splits.items():
            y = s.y.reshape(len(s), -1).to(torch.float64)
            out["target_mean"][k] = dict(zip(targets, y.mean(0).tolist()))
            out["target_std"][k] = dict(zip(targets, y.std(0, correction=0).tolist()))
    return out


def _check_size(name: str, value, available: int, what: str) -> int:
    if value is None:
        return available
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= available:
        raise DataError(f"The {what!r} parameter of load_dataset must be an integer in the range "
                        f"[1, {available}] for {name}. Got {value!r} instead.")
    return value


def _device(device) -> torch.device:
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise DataError(f"invalid device {device!r}: {e}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DataError(f"device {device!r} requested but CUDA is not available here; use 'cpu'")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise DataError(f"device {device!r} requested but MPS is not available here; use 'cpu'")
    return dev


def load_dataset(name: str, *, normalize: str = "-1..1", device: str | torch.device = "cpu",
                 train_size: int | None = None, test_size: int | None = None,
                 val_fraction: float = 0.0, seed: int = 0, options: dict | None = None,
                 mirrors: list[str] | None = None, download: bool = True,
                 timeout: float = DEFAULT_TIMEOUT) -> ResidentDataset:
    """Load data set ``name`` as tensors resident on ``device``.

    ``train_size``/``test_size`` take the first N of a permutation seeded by ``seed`` (so a
    subset mixes the classes); for generated sets they set how many examples are generated
    (unless ``options`` sets n_train/n_test). ``val_fraction`` moves that fraction of the
    (possibly subset) training examples, chosen by the same permutation, into ``val``.
    Missing files are downloaded from ``mirrors`` (see ``fetch``) unless ``download=False``.
    """
    info = get_info(name)
    if normalize not in NORMALIZATIONS:
        raise DataError(f"The 'normalize' parameter of load_dataset must be one of "
                        f"{', '.join(map(repr, NORMALIZATIONS))}. Got {normalize!r} instead.")
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, (int, float)) \
            or not 0.0 <= val_fraction < 1.0:
        raise DataError(f"The 'val_fraction' parameter of load_dataset must be a float in the "
                        f"range [0, 1). Got {val_fraction!r} instead.")
    dev = _device(device)
    options = dict(options or {})
    if info.source == "generated":  # sizes are generated, not subset
        if train_size is not None and "n_train" not in options:
            options["n_train"], train_size = train_size, None
        if test_size is not None and "n_test" not in options:
            options["n_test"], test_size = test_size, None
    raw = load_raw(name, options=options, mirrors=mirrors, download=download, timeout=timeout)

    n_train = _check_size(name, train_size, len(raw.x_train), "train_size")
    n_test = _check_size(name, test_size, len(raw.x_test), "test_size")
    n_val = int(round(n_train * val_fraction))
    if val_fraction and not 1 <= n_val < n_train:
        raise DataError(f"val_fraction={val_fraction} of {n_train} training examples leaves "
                        f"{n_val} for validation and {n_train - n_val} for training; both must be at least 1")
    gen = torch.Generator().manual_seed(seed)
    if n_train == len(raw.x_train) and not n_val:
        train, val = Split(raw.x_train.to(dev, copy=True), raw.y_train.to(dev, copy=True)), None
    else:
        perm = torch.randperm(len(raw.x_train), generator=gen)[:n_train]
        val_idx, train_idx = perm[:n_val], perm[n_val:]
        train = Split(raw.x_train[train_idx].to(dev), raw.y_train[train_idx].to(dev))
        val = Split(raw.x_train[val_idx].to(dev), raw.y_train[val_idx].to(dev)) if n_val else None
    if n_test == len(raw.x_test):
        test = Split(raw.x_test.to(dev, copy=True), raw.y_test.to(dev, copy=True))
    else:
        gen_test = torch.Generator().manual_seed(seed + 1)
        idx = torch.randperm(len(raw.x_test), generator=gen_test)[:n_test]
        test = Split(raw.x_test[idx].to(dev), raw.y_test[idx].to(dev))
    return ResidentDataset(info=info, train=train, test=test, val=val, device=dev,
                           normalize=normalize)
