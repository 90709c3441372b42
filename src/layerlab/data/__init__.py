"""Data sets: the catalogue, readers, toy generators, fetching and resident tensors.

The catalogue and the file lookup are plain Python; the resident tensors need torch, so those
names load on first use (PEP 562) and checking a spec never imports torch.
"""
from __future__ import annotations

import importlib

from .catalogue import DATASETS, DatasetInfo, SourceFile, dataset_names, get_info
from .fetch import available, fetch, locate, search_dirs

__all__ = ["DATASETS", "DatasetInfo", "SourceFile", "dataset_names", "get_info",
           "available", "fetch", "locate", "search_dirs", "ResidentDataset", "Split", "load_dataset"]

_RESIDENT = ("ResidentDataset", "Split", "load_dataset")


def __getattr__(name: str):
    if name not in _RESIDENT:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(".resident", __name__), name)
    globals()[name] = value
    return value
