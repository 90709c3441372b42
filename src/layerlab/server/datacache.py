"""Data sets the server keeps in memory: statistics, example images and untrained predictions.

Loading Fashion-MNIST takes about 0.3 s, so the last few loaded data sets (keyed by their
``DataSpec``) stay resident on the CPU. The server never downloads: a data set whose files
are missing is ``DataUnavailable``, which says how to fetch it. Data are loaded by
``DataSpec.load``, as the trainer loads them, so test example ``i`` here is test example
``i`` of a run.
"""
from __future__ import annotations

import threading
from collections import OrderedDict

from ..data import DATASETS, ResidentDataset, available, get_info
from ..errors import DataError, spec_error
from ..spec import DataSpec

__all__ = ["DataCache", "dataset_json", "available", "PREDICTION_COUNT"]

PREDICTION_COUNT = 20  # the trainer's default: the first 20 test examples get prediction snapshots


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
    """The last ``size`` loaded data sets, keyed by their ``DataSpec``; one load at a time per key."""

    def __init__(self, size: int = 3):
        self.size = size
        self._items: OrderedDict[str, ResidentDataset] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}

    def get(self, dataset: str, **fields) -> ResidentDataset:
        """Data set ``dataset`` with ``DataSpec`` fields (normalize, train_size, ...), on the CPU."""
        if dataset not in DATASETS:
            get_info(dataset)  # raises the catalogue's UnknownDataset
        return self.for_data_spec(DataSpec(dataset=dataset, **fields))

    def for_data_spec(self, data_spec: DataSpec) -> ResidentDataset:
        """The data a run of ``data_spec`` trains on, loaded by ``DataSpec.load`` like the trainer's."""
        key = data_spec.model_dump_json()
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            gate = self._loading.setdefault(key, threading.Lock())
        with gate:  # two requests for one data set load it once
            with self._lock:
                if key in self._items:
                    return self._items[key]
            problems = data_spec.problems()
            if problems:
                raise spec_error(problems)  # DataUnavailable (409) when the files are all that is missing
            data = data_spec.load(device="cpu")
            data.stats()  # computed once, while we are here
            with self._lock:
                self._items[key] = data
                while len(self._items) > self.size:
                    self._items.popitem(last=False)
                self._loading.pop(key, None)
            return data

    def for_spec(self, spec) -> ResidentDataset:
        """The data set a ``Spec`` trains on, as its trainer loads it."""
        return self.for_data_spec(spec.data)

    def for_spec_data(self, data: dict | None) -> ResidentDataset:
        """Same, from a stored run's spec data (``spec["data"]``)."""
        return self.for_data_spec(DataSpec.model_validate(data or {}))

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
