"""Divergence and not learning, diagnosed in words; an untrained model's accuracy."""
from __future__ import annotations

import math

import pytest
import torch

from layerlab.builder import build
from layerlab.data import load_dataset
from layerlab.spec import load_spec
from layerlab.store import Store
from layerlab.train import CHECKPOINT_ARTIFACT, WEIGHTS_ARTIFACT, load_weights, train
from layerlab.train.diagnose import StepRecord, explain_divergence


pytestmark = pytest.mark.usefixtures("one_thread")


SUBSET = ["data.train_size=2000", "data.test_size=1000"]


@pytest.fixture(scope="module")
def fashion():
    return load_dataset("fashion-mnist", train_size=2000, test_size=1000)


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "runs.db")


def test_learning_rate_10_diverges_and_the_diagnosis_names_the_learning_rate(fashion, store):
    spec = load_spec("fc100-relu-fc10", overrides=SUBSET + ["train.lr=10", "train.momentum=0.9"])
    events = []
    results = train(spec, store=store, data=fashion, on_event=events.append)
    run = store.get_run(results.run_id)
    assert results.status == run["status"] == "diverged"
    text = results.diagnosis
    assert text == run["diagnosis"]
    assert "learning rate 10 is too high" in text and "try lr ≤ 0.5" in text
    assert f"at step {results.diverged_at_step}" in text and "gradient norm grew" in text
    assert results.examples < 2000  # stopped at once, not at the end of the budget
    assert any(e["type"] == "diagnosis" and e["kind"] == "diverged" for e in events)
    # the evidence: the gradient norm really grew over the replayed steps
    norms = [r["grad_norm"] for r in results.evidence]
    assert norms[-1] > 10 * norms[0]
    # the weights kept are finite (the last finite checkpoint), and so is the checkpoint
    model = build(spec)
    load_weights(model, store.get_artifact(results.run_id, WEIGHTS_ARTIFACT))
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert CHECKPOINT_ARTIFACT in {a["name"] for a in store.list_artifacts(results.run_id)}


def test_nan_probabilities_are_explained_not_crashed_on(store):
    # A learning rate so large that the very next forward pass overflows: the practicum's
    # "accuracy plummets and probabilities show NaN%".
    spec = load_spec({"data": {"dataset": "digits"}, "model": ["flatten", {"fc": {"units": 32}}, "relu",
                                                                 {"fc": {"units": 10}}],
                      "train": {"lr": 1e35, "momentum": 0.0, "epochs": 1}})
    results = train(spec, store=store, log_every=1)
    assert results.status == "diverged"
    assert "learning rate 1e35 is too high" in results.diagnosis, results.diagnosis
    last = store.events(results.run_id, kinds=["prediction"])[-1]["payload"]
    probs = [p for item in last["predictions"] for _, p in item["top"]]
    assert "NaN" in probs  # NaN is kept, written as the string "NaN" (standard JSON)
    assert all(isinstance(p, (float, str)) for p in probs)
    assert results.test_accuracy < 0.3 < results.step0_test_accuracy + 0.3


def test_stacked_linear_layers_are_mentioned_when_they_diverge(fashion):
    spec = load_spec("fc10-fc10", overrides=SUBSET + ["train.lr=10", "train.momentum=0.9"])
    results = train(spec, data=fashion, predictions=0)
    assert results.status == "diverged"
    assert "layer 2 (fc) and layer 3 (fc) have no activation between them" in results.diagnosis


def test_all_zeros_init_is_reported_as_not_learning(fashion, store):
    spec = load_spec("fc100-relu-fc10", overrides=SUBSET + ["train.init=zeros"])
    results = train(spec, store=store, data=fashion)
    assert results.status == "finished"
    assert "all weights start at zero" in results.diagnosis and "he_normal" in results.diagnosis
    assert store.get_run(results.run_id)["diagnosis"] == results.diagnosis
    assert store.series(results.run_id, "grad_norm/fc1")[-1][1] == 0.0
    kinds = [e["payload"]["kind"] for e in store.events(results.run_id, kinds=["diagnosis"])]
    assert kinds == ["zero_init"]


def test_a_healthy_run_has_no_diagnosis(fashion):
    spec = load_spec("fc100-relu-fc10", overrides=SUBSET + ["train.init=he_normal", "train.lr=0.05"])
    results = train(spec, data=fashion, predictions=0)
    assert results.status == "finished" and results.diagnosis is None


def test_a_flat_loss_is_reported():
    spec = load_spec({"data": {"dataset": "digits"}, "model": ["flatten", {"fc": {"units": 10}}],
                      "train": {"optimizer": "sgd", "lr": 1e-7, "epochs": 2}})
    results = train(spec, predictions=0)
    assert results.status == "finished"
    assert "the cost did not move" in results.diagnosis and "too small" in results.diagnosis


@pytest.mark.parametrize("preset", ["linear", "fc100-relu-fc10", "mnist-conv"])
def test_an_untrained_model_is_right_about_one_time_in_ten(preset, fashion):
    spec = load_spec(preset, overrides=SUBSET + ["train.examples=64"])
    results = train(spec, data=fashion, predictions=0)
    assert 0.02 <= results.step0_test_accuracy <= 0.25


def test_explain_divergence_wording():
    records = [StepRecord(s, 10.0, 2.0 * 3 ** s, 10.0 ** s, 1.0 * 2 ** s) for s in range(1, 13)]
    text = explain_divergence(records, bad_step=13, what="the loss became NaN", lr=10.0)
    assert text.startswith("learning rate 10 is too high for this model: the gradient norm grew 2,048-fold over "
                           "the last 12 steps before the loss became NaN at step 13")
    assert "the logits reached 1e12" in text and text.endswith("try lr ≤ 0.5")
    sudden = [StepRecord(s, 0.1, 2.0, 5.0, 1.0) for s in range(1, 5)]
    text = explain_divergence(sudden, bad_step=5, what="the loss became NaN", lr=0.1)
    assert "sudden" in text and "clip_grad" in text
    assert "first update" in explain_divergence([], bad_step=1, what="the loss became NaN", lr=0.1)
    assert not math.isnan(len(text))
