"""What the training tests share: a small MLP on scikit-learn's digits, resident once per module.

Imported by tests/test_train_*.py (pytest puts tests/ on sys.path).
"""
from __future__ import annotations

import pytest

from layerlab.data import load_dataset
from layerlab.spec import load_spec
from layerlab.store import Store

__all__ = ["MLP", "digits", "store", "digits_spec"]

MLP = ["flatten", {"fc": {"units": 32}}, "relu", {"fc": {"units": 10}}]


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "runs.db")


def digits_spec(**train_fields):
    return load_spec({"name": "digits-mlp", "data": {"dataset": "digits"}, "model": MLP,
                      "train": {"epochs": 2, "batch_size": 32, **train_fields}})
