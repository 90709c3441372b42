"""Same spec, seed and device: the same metric values."""
from __future__ import annotations

import pytest

from layerlab.data import load_dataset
from layerlab.spec import load_spec
from layerlab.store import Store
from layerlab.train import train


pytestmark = pytest.mark.usefixtures("one_thread")


TIMING = ("examples_per_sec", "inferences_per_sec", "inferences_per_sec_b1", "latency_ms_b1")


def _values(store, run_id):
    return [(m["name"], m["step"], m["examples"], m["value"]) for m in store.metrics(run_id)
            if m["name"] not in TIMING]


def test_two_runs_with_the_same_seed_give_identical_metrics(tmp_path):
    store = Store(tmp_path / "runs.db")
    data = load_dataset("digits")
    spec = {"data": {"dataset": "digits"},
            "model": ["flatten", {"fc": {"units": 32}}, "relu", {"dropout": {"rate": 0.2}}, {"fc": {"units": 10}}],
            "train": {"epochs": 1.5, "batch_size": 50, "schedule": "cosine", "seed": 7}}
    a = train(load_spec(spec), store=store, data=data)
    b = train(load_spec(spec), store=store, data=data)
    rows = _values(store, a.run_id)
    assert len(rows) > 50
    assert rows == _values(store, b.run_id)
    assert [e["payload"] for e in store.events(a.run_id, kinds=["prediction"])] == \
           [e["payload"] for e in store.events(b.run_id, kinds=["prediction"])]
    spec["train"]["seed"] = 8
    c = train(load_spec(spec), store=store, data=data)
    assert _values(store, c.run_id) != rows
