"""``train.on_divergence: continue``: a diverged model is trained and evaluated to the end of its budget.

The practicum's "learning rate 10 gives a flat accuracy curve" needs the curve after the NaN:
the run goes on (NaN cost, chance accuracy), is still ``diverged``, and its diagnosis is the
first NaN's.
"""
from __future__ import annotations

import math

import pytest
import torch

from layerlab.builder import build
from layerlab.spec import load_spec
from layerlab.train import WEIGHTS_ARTIFACT, load_weights, train

from train_helpers import MLP, digits, store  # noqa: F401  (fixtures)

pytestmark = pytest.mark.usefixtures("one_thread")


def _spec(on_divergence: str):
    # lr 1e35: the first update's weights overflow, so the loss is NaN (or exploded) within a few updates
    return load_spec({"name": "lr-huge", "data": {"dataset": "digits"}, "model": MLP,
                      "train": {"lr": 1e35, "momentum": 0.0, "epochs": 2, "batch_size": 32, "eval_every": 400,
                                "on_divergence": on_divergence}})


def test_continue_keeps_writing_rows_to_the_end_of_the_budget(store, digits):  # noqa: F811
    spec = _spec("continue")
    r = train(spec, store=store, data=digits, log_every=5)
    run = store.get_run(r.run_id)
    assert r.status == run["status"] == "diverged"
    assert r.examples == r.total_examples == 2 * len(digits.train)  # the whole budget was trained
    assert r.diverged_at_step is not None and r.diverged_at_step <= 5
    assert "learning rate 1e35 is too high" in r.diagnosis and r.diagnosis == run["diagnosis"]
    assert [d["kind"] for d in r.diagnoses] == ["diverged"]  # nothing else is "found" about a broken model
    assert len(store.events(r.run_id, kinds=["divergence"])) == 1

    steps = {m["step"] for m in store.metrics(r.run_id, names=["cost"])}
    assert max(steps) == r.steps == math.ceil(len(digits.train) / 32) * 2  # a cost row up to the last update
    after = [(m["step"], m["value"]) for m in store.metrics(r.run_id, names=["cost"]) if m["step"] > r.diverged_at_step + 5]
    assert len(after) >= 10 and all(math.isnan(v) for _, v in after)  # NaN kept as NaN by the store

    live = [(m["step"], m["value"]) for m in store.metrics(r.run_id, names=["test_accuracy_subset"])]
    later = [v for step, v in live if step > r.diverged_at_step]
    assert len(later) >= 5 and max(later) < 0.3  # evaluated to the end: chance accuracy, the flat curve
    full = [(m["step"], m["value"]) for m in store.metrics(r.run_id, names=["test_accuracy"])]
    assert full[-1][0] == r.steps and r.test_accuracy == full[-1][1] < 0.3
    assert len(r.history) == 2 and math.isnan(r.history[-1]["train_loss"])  # both epochs' rows

    model = build(spec)  # the weights kept are the last finite ones, as when the run stops
    load_weights(model, store.get_artifact(r.run_id, WEIGHTS_ARTIFACT))
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_stop_is_the_default_and_ends_the_run_at_once(store, digits):  # noqa: F811
    r = train(_spec("stop"), store=store, data=digits, log_every=5)
    assert r.status == "diverged" and r.examples < len(digits.train)
    assert max(m["step"] for m in store.metrics(r.run_id, names=["cost"])) == r.steps
    assert load_spec({"model": MLP, "data": {"dataset": "digits"}}).train.on_divergence == "stop"


def test_best_test_accuracy_never_counts_the_untrained_model(store, digits):  # noqa: F811
    r = train(_spec("stop"), store=store, data=digits, log_every=5)
    full = [(m["step"], m["value"]) for m in store.metrics(r.run_id, names=["test_accuracy"])]
    assert full[0][0] == 0 and r.step0_test_accuracy == full[0][1]
    assert r.best_test_accuracy == max(v for step, v in full if step > 0)
    assert store.get_run(r.run_id)["best_test_accuracy"] == r.best_test_accuracy  # the runs page's number
