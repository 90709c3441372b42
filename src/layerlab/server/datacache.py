"""Data sets the server keeps in memory: statistics, example images and untrained predictions.

Loading Fashion-MNIST takes about 0.3 s, so the last few loaded data sets (keyed by every
argument that changes their tensors) stay resident on the CPU. The server never downloads:
a data set whose files are missing is a ``DataError`` that says how to fetch it. Test split
subsets are chosen exactly as the trainer chooses them (``load_dataset(seed=0)``), so test
example ``i`` here is test example ``i`` of a run.
"""
from __future__ import annotations

import json
import threading
from collections import OrderedDict

from ..data import DATASETS, ResidentDataset, get_info, load_dataset, locate
from ..errors import DataError

__all__ = ["DataCache", "dataset_json", "available", "PREDICTION_COUNT"]

PREDICTION_COUNT = 20  # the trainer's default: the first 20 test examples get prediction snapshots


def available(name: str) -> bool:
    """Whether the data set can be loaded without downloading."""
    info = get_info(name)
    return info.source != "files" or locate(name) is not None


def dataset_json(name: str) -> dict:
    info = get_info(name)
    return {
        "name": info.name, "doc": info.doc, "task": info.task, "input_shape": list(info.input_shape),
        "num_classes": info.num_classes, "class_names": list(info.class_names),
        "target_shape": list(info.target_shape), "target_names": list(info.target_names),
        "output_size": info.output_size, "train_size": info.train_size, "test_size": info.test_size,
        "pixel_range": list(info.pixel_range) if info.pixel_range else None, "options": info.options,
        "source": info.source, "citation": info.citation, "images": len(info.input_shape) == 3,
        "available": available(name),
    }


class DataCache:
    """The last ``size`` loaded data sets, one load at a time per key."""

    def __init__(self, size: int = 3):
        self.size = size
        self._items: OrderedDict[tuple, ResidentDataset] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[tuple, threading.Lock] = {}

    def get(self, dataset: str, *, normalize: str = "-1..1", train_size: int | None = None,
            test_size: int | None = None, val_fraction: float = 0.0, options: dict | None = None) -> ResidentDataset:
        if dataset not in DATASETS:
            get_info(dataset)  # raises the catalogue's DataError
        key = (dataset, normalize, train_size, test_size, float(val_fraction),
               json.dumps(options or {}, sort_keys=True, default=str))
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            gate = self._loading.setdefault(key, threading.Lock())
        with gate:  # two requests for one data set load it once
            with self._lock:
                if key in self._items:
                    return self._items[key]
            data = load_dataset(dataset, normalize=normalize, device="cpu", train_size=train_size,
                                test_size=test_size, val_fraction=val_fraction, seed=0, options=options,
                                download=False)
            data.stats()  # computed once, while we are here
            with self._lock:
                self._items[key] = data
                while len(self._items) > self.size:
                    self._items.popitem(last=False)
                self._loading.pop(key, None)
            return data

    def for_spec(self, spec) -> ResidentDataset:
        """The data set a ``Spec`` trains on, as its trainer loads it."""
        d = spec.data
        return self.get(d.dataset, normalize=d.normalize, train_size=d.train_size, test_size=d.test_size,
                        val_fraction=d.val_fraction, options=d.options)

    def for_spec_data(self, data: dict) -> ResidentDataset:
        """Same, from a stored run's spec data (``spec["data"]``)."""
        data = data or {}
        return self.get(data.get("dataset", "fashion-mnist"), normalize=data.get("normalize", "-1..1"),
                        train_size=data.get("train_size"), test_size=data.get("test_size"),
                        val_fraction=data.get("val_fraction", 0.0) or 0.0, options=data.get("options") or {})

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


def stats_json(data: ResidentDataset) -> dict:
    """``ResidentDataset.stats()`` as JSON data (tuples become lists)."""
    s = data.stats()
    out = dict(s)
    out["input_shape"] = list(s["input_shape"])
    out["label_shape"] = list(s["label_shape"])
    out["pixel_range"] = list(s["pixel_range"])
    return out


def check_index(data: ResidentDataset, index: int, split: str = "test") -> None:
    n = len(data.split(split))
    if not 0 <= index < n:
        raise DataError(f"example index {index} is out of range: the {split} split of {data.info.name} "
                        f"has {n} examples (0 to {n - 1})")
