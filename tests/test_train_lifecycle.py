"""Run lifecycle: statuses, what is stored, events for the live display."""
from __future__ import annotations

import json
import threading

import pytest
import torch

from train_helpers import digits, digits_spec, store  # noqa: F401  (digits, store: fixtures)

from layerlab.spec import load_spec
from layerlab.store import Store
from layerlab.train import CHECKPOINT_ARTIFACT, WEIGHTS_ARTIFACT, load_weights, train
from layerlab.builder import build


pytestmark = pytest.mark.usefixtures("one_thread")


def test_a_finished_run_records_everything(store, digits):
    events = []
    results = train(digits_spec(eval_every=500), store=store, data=digits, on_event=events.append)
    run_id = results.run_id
    run = store.get_run(run_id)
    assert run["status"] == "finished" == results.status
    assert run["results"]["test_accuracy"] == results.test_accuracy > 0.8
    assert results.examples == 2 * len(digits.train) and results.epochs == 2.0
    # evaluations at step 0, after the batch that passes each multiple of 500 examples, at each
    # epoch end (1438 examples) and at the end; each with a prediction snapshot. The live points use
    # the evaluation subset (test_accuracy_subset); the full split is evaluated at step 0, epoch ends
    # and the end. digits has 359 test examples, fewer than the default subset: every point is full.
    evals = store.series(run_id, "test_accuracy_subset")
    assert [e for e, _ in evals] == [0, 512, 1024, 1438, 1502, 2014, 2526, 2876]
    assert store.series(run_id, "test_accuracy") == evals
    assert results.eval_every == 500 and results.eval_subset == len(digits.test)
    assert 0 < results.eval_time_s < results.elapsed_s
    predictions = store.events(run_id, kinds=["prediction"])
    assert [p["payload"]["examples"] for p in predictions] == [e for e, _ in evals]
    first = predictions[0]["payload"]["predictions"]
    assert len(first) == 20 and first[0]["index"] == 0
    assert len(first[0]["top"]) == 3 and first[0]["label"] == int(digits.test.y[0])
    assert first[0]["correct"] == (first[0]["top"][0][0] == first[0]["label"])
    # metric names: cost and friends at log points, diagnostics at evaluations, speed at the end
    names = {m["name"] for m in store.metrics(run_id)}
    assert {"cost", "train_accuracy", "test_accuracy", "test_loss", "test_accuracy_subset", "test_loss_subset",
            "examples_per_sec", "lr", "epoch",
            "grad_norm/fc1", "grad_norm/fc2", "weight_norm/fc1", "dead_relu/relu1", "inferences_per_sec",
            "inferences_per_sec_b1", "latency_ms_b1"} <= names
    # per-epoch history, confusion matrix and worst examples
    assert [h["epoch"] for h in results.history] == [1, 2]
    assert results.history[-1]["test_accuracy"] == results.test_accuracy
    matrix = results.confusion["matrix"]
    assert sum(map(sum, matrix)) == len(digits.test)
    assert sum(matrix[i][i] for i in range(10)) / len(digits.test) == pytest.approx(results.test_accuracy)
    stored = json.loads(store.get_artifact(run_id, "confusion.json"))
    assert stored["matrix"] == matrix and stored["classes"][3] == "3"
    worst = results.worst
    assert len(worst) == 10 and worst[0]["p_true"] <= worst[-1]["p_true"]
    assert results.inferences_per_sec > 0 and results.latency_ms_b1 > 0
    # final weights load into a fresh model and reproduce the test accuracy
    model = build(digits_spec())
    meta = load_weights(model, store.get_artifact(run_id, WEIGHTS_ARTIFACT))
    assert meta["step"] == results.steps
    with torch.no_grad():
        acc = (model(digits.prepare(digits.test.x)).argmax(1) == digits.test.y).float().mean().item()
    assert acc == pytest.approx(results.test_accuracy)
    # the live display's events
    kinds = [e["type"] for e in events]
    assert kinds[0] == "status" and events[-1] == {"type": "status", "status": "finished", "diagnosis": None,
                                                   "error": None}
    assert {"progress", "eval", "epoch"} <= set(kinds)
    first_eval = next(e for e in events if e["type"] == "eval")
    assert first_eval["full"] and first_eval["test_accuracy"] == results.step0_test_accuracy
    assert {"test_accuracy_subset", "test_loss_subset", "test_examples", "seconds"} <= set(first_eval)
    progress = next(e for e in events if e["type"] == "progress")
    assert {"step", "examples", "epoch", "cost", "train_accuracy", "examples_per_sec", "lr", "elapsed"} <= set(progress)


def test_examples_budget_wins_over_epochs(digits):
    results = train(digits_spec(epochs=5, examples=1000), data=digits, predictions=0)
    assert results.examples == 1000 and results.epochs == pytest.approx(1000 / len(digits.train))
    assert results.history[-1]["partial"] is True


def test_fractional_epochs(digits):
    results = train(digits_spec(epochs=1.5), data=digits, predictions=0)
    assert results.examples == round(1.5 * len(digits.train))
    assert [h["partial"] for h in results.history] == [False, True]


def test_stop_event_stops_and_keeps_what_was_learned(store, digits):
    stop = threading.Event()

    def on_event(e):
        if e["type"] == "progress" and e["examples"] >= 3000:
            stop.set()

    results = train(digits_spec(epochs=50), store=store, data=digits, on_event=on_event, stop_event=stop)
    run = store.get_run(results.run_id)
    assert results.status == run["status"] == "stopped"
    assert 3000 <= results.examples < 50 * len(digits.train)
    assert results.test_accuracy > 0.5  # evaluated at the stop
    assert store.series(results.run_id, "test_accuracy")[-1][0] == results.examples  # the full split, at the stop
    names = {a["name"] for a in store.list_artifacts(results.run_id)}
    assert {CHECKPOINT_ARTIFACT, WEIGHTS_ARTIFACT} <= names


def test_store_request_stop_stops_the_run(store, digits):
    run_id = []

    def on_event(e):
        if e["type"] == "status" and e["status"] == "running":
            run_id.append(e["run_id"])
        if e["type"] == "progress" and len(run_id) == 1:
            store.request_stop(run_id[0])  # as `layerlab runs stop` would, from another process
            run_id.append("asked")

    results = train(digits_spec(epochs=1000), store=store, data=digits, on_event=on_event)
    assert results.status == store.get_run(run_id[0])["status"] == "stopped"
    assert results.stop_reason == "stop requested in the store"
    assert results.examples < 1000 * len(digits.train)


def test_an_unexpected_error_marks_the_run_failed_and_is_raised(store, digits):
    spec = load_spec("fc100-relu-fc10")  # 28x28 inputs; the digits are 8x8
    with pytest.raises(RuntimeError):
        train(spec, store=store, data=digits)
    run = store.list_runs()[0]
    assert run["status"] == "failed"
    assert "RuntimeError" in run["error"]


def test_an_invalid_spec_is_refused_before_a_run_exists(store):
    from layerlab.errors import SpecError
    bad = {"data": {"dataset": "digits"}, "model": [{"fc": {"units": 10}}]}  # no flatten
    with pytest.raises(SpecError, match="flatten"):
        train(bad, store=store)
    assert store.list_runs() == []


def test_amp_on_cpu_is_ignored_with_a_note(digits):
    events = []
    results = train(digits_spec(amp=True, epochs=0.5), data=digits, on_event=events.append, predictions=0)
    assert results.status == "finished"
    assert any(e["type"] == "note" and "amp" in e["text"] for e in events)


def test_a_queued_run_is_executed_in_place(store, digits):
    spec = digits_spec(epochs=0.5)
    run_id = store.create_run(spec.to_dict())
    results = train(spec, store=store, run_id=run_id, data=digits)
    assert results.run_id == run_id and store.get_run(run_id)["status"] == "finished"


@pytest.mark.slow
def test_compiled_training_matches_the_plain_result(digits):
    plain = train(digits_spec(epochs=1), data=digits, predictions=0)
    compiled = train(digits_spec(epochs=1, compile=True), data=digits, predictions=0)
    assert compiled.status == "finished"
    assert compiled.test_accuracy == pytest.approx(plain.test_accuracy, abs=0.02)


def test_regression_predictions_and_results(tmp_path):
    store = Store(tmp_path / "runs.db")
    spec = load_spec({"data": {"dataset": "toy-functions", "normalize": "none"},
                      "model": [{"fc": {"units": 16}}, "relu", {"fc": {"units": 3}}],
                      "train": {"optimizer": "adam", "lr": 0.01, "epochs": 2, "batch_size": 32}})
    results = train(spec, store=store, predictions=[0, 5])
    assert results.task == "regression" and results.test_accuracy is None
    payload = store.events(results.run_id, kinds=["prediction"])[-1]["payload"]
    assert [p["index"] for p in payload["predictions"]] == [0, 5]
    assert len(payload["predictions"][0]["target"]) == len(payload["predictions"][0]["output"]) == 3
    assert "train_accuracy" not in {m["name"] for m in store.metrics(results.run_id)}
