"""Data sets the server keeps in memory: statistics, example images and untrained predictions.

Loading Fashion-MNIST takes about 0.3 s, so the last few loaded data sets (keyed by their
``DataSpec``) stay resident on the CPU, at most ``DEFAULT_CACHE_BYTES`` (512 MiB) of tensors
together: the least recently used are dropped first, and one larger than that is refused. The server never downloads: a data set whose files
are missing is ``DataUnavailable``, which says how to fetch it. Data are loaded by
``DataSpec.load``, as the trainer loads them, so test example ``i`` here is test example
``i`` of a run. The warm workers of the pool keep their own ``DataCache`` of the data sets
their runs train on (``refuse_larger=False``: a data set over the bound is loaded for that run
and not kept), keyed also by device and by where the files are looked for.
"""
from __future__ import annotations

import threading
from collections import OrderedDict

from ..data import DATASETS, ResidentDataset, available, get_info
from ..errors import DataError, DataTooLarge, spec_error
from ..data.fetch import search_dirs
from ..spec import DataSpec

__all__ = ["DataCache", "DataTooLarge", "resident_bytes", "dataset_json", "available", "PREDICTION_COUNT",
           "DEFAULT_CACHE_BYTES", "data_key"]

PREDICTION_COUNT = 20  # the trainer's default: the first 20 test examples get prediction snapshots
DEFAULT_CACHE_BYTES = 512 * 2**20  # tensors of the data sets the server keeps loaded, all together


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
    """Loaded data sets, keyed by their ``DataSpec``; one load at a time per key.

    Bounded twice: at most ``size`` data sets and at most ``max_bytes`` bytes of their tensors
    (``resident_bytes``) together; the least recently used go first. A single data set larger
    than ``max_bytes`` is refused (``DataTooLarge``, 413) rather than kept.
    """

    def __init__(self, size: int = 3, *, max_bytes: int = DEFAULT_CACHE_BYTES, refuse_larger: bool = True):
        if size < 1 or max_bytes < 1:
            raise ValueError(f"a data cache needs size >= 1 and max_bytes >= 1, got {size} and {max_bytes}")
        self.size, self.max_bytes, self.refuse_larger = size, int(max_bytes), refuse_larger
        self._items: OrderedDict[tuple, tuple[ResidentDataset, int]] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}

    @property
    def nbytes(self) -> int:
        """Bytes held by the cached data sets' tensors."""
        with self._lock:
            return sum(n for _, n in self._items.values())

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def get(self, dataset: str, **fields) -> ResidentDataset:
        """Data set ``dataset`` with ``DataSpec`` fields (normalize, train_size, ...), on the CPU."""
        if dataset not in DATASETS:
            get_info(dataset)  # raises the catalogue's UnknownDataset
        return self.for_data_spec(DataSpec(dataset=dataset, **fields))

    def holds(self, data_spec: DataSpec, *, device="cpu") -> bool:
        """Whether ``data_spec`` on ``device`` is resident (a ``for_data_spec`` would not load)."""
        with self._lock:
            return _key(data_spec, device) in self._items

    def resident(self) -> list[str]:
        """``data_key`` of each resident data set, least recently used first."""
        with self._lock:
            return [key[0] for key in self._items]

    def for_data_spec(self, data_spec: DataSpec, *, device="cpu") -> ResidentDataset:
        """The data a run of ``data_spec`` trains on, loaded by ``DataSpec.load`` like the trainer's."""
        key = _key(data_spec, device)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key][0]
            gate = self._loading.setdefault(key, threading.Lock())
        with gate:  # two requests for one data set load it once
            with self._lock:
                if key in self._items:
                    return self._items[key][0]
            try:
                problems = data_spec.problems()
                if problems:
                    raise spec_error(problems)  # DataUnavailable (409) when the files are all that is missing
                data = data_spec.load(device=device)
                nbytes = resident_bytes(data)
                if nbytes > self.max_bytes and not self.refuse_larger:
                    return data  # this caller's alone: not kept
                if nbytes > self.max_bytes:
                    del data
                    raise DataTooLarge(f"{data_spec.dataset} as asked holds {nbytes / 2**20:,.0f} MiB in memory, more "
                                       f"than the server keeps for previews ({self.max_bytes / 2**20:,.0f} MiB); "
                                       "ask for fewer examples (train_size, test_size, or the set's n_train/n_test "
                                       "options) to preview it here; a run trains on it in its own process")
                data.stats()  # computed once, while we are here
                with self._lock:
                    self._items[key] = (data, nbytes)
                    total = sum(n for _, n in self._items.values())
                    while len(self._items) > 1 and (len(self._items) > self.size or total > self.max_bytes):
                        _, (_, freed) = self._items.popitem(last=False)  # least recently used first
                        total -= freed
                return data
            finally:
                with self._lock:
                    self._loading.pop(key, None)

    def for_spec(self, spec) -> ResidentDataset:
        """The data set a ``Spec`` trains on, as its trainer loads it."""
        return self.for_data_spec(spec.data)

    def for_spec_data(self, data: dict | None) -> ResidentDataset:
        """Same, from a stored run's spec data (``spec["data"]``)."""
        return self.for_data_spec(DataSpec.model_validate(data or {}))

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


def data_key(data_spec: DataSpec) -> str:
    """What identifies a data set as asked (the ``DataSpec``'s JSON); the pool matches runs to workers by it."""
    return data_spec.model_dump_json()


def _key(data_spec: DataSpec, device) -> tuple:
    # The same spec read from other files (LAYERLAB_DATA changed) or on another device is another data set.
    return data_key(data_spec), str(device), tuple(map(str, search_dirs(data_spec.dataset)))


def resident_bytes(data: ResidentDataset) -> int:
    """Bytes of a resident data set's tensors (every split's inputs and targets)."""
    total = 0
    for split in (data.train, data.test, data.val):
        if split is not None:
            total += sum(t.element_size() * t.nelement() for t in (split.x, split.y))
    return total


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
