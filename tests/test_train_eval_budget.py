"""Evaluation with a budget: a fixed stratified subset at live points, the full split where it counts,
an interval chosen from measured costs, and inference measurements that stop after about 0.3 s."""
from __future__ import annotations

import json
import math
import threading
import time
from collections import Counter

import pytest
import torch

from train_helpers import digits, digits_spec, store  # noqa: F401  (digits, store: fixtures)
from layerlab.builder import build
from layerlab.data import available, load_dataset
from layerlab.spec import load_spec
from layerlab.train import CHECKPOINT_ARTIFACT, load_weights, measure_inference, resume, train
from layerlab.train import plan as plan_module
from layerlab.train.checkpoint import WEIGHTS_ARTIFACT, read_position
from layerlab.train.evaluation import eval_subset_indices
from layerlab.train.plan import EVAL_FREE_S, EVAL_SHARE, MAX_EVALS, adaptive_eval_every, make_plan
from layerlab.train.trainer import SUBSET_ARTIFACT

pytestmark = pytest.mark.usefixtures("one_thread")

needs_fashion = pytest.mark.skipif(not available("fashion-mnist"), reason="Fashion-MNIST files are not here")


def rows(store, run_id, name):
    return [(m["step"], m["examples"], m["value"]) for m in store.metrics(run_id) if m["name"] == name]


def points(every: int, *, n: int = 1438, bs: int = 32, total: int = 2876) -> list[int]:
    """Examples after each update that passes a multiple of ``every``, and at each epoch end (batches
    never cross an epoch end, so the last one of an epoch may be short)."""
    out, done, pos, target = [0], 0, 0, every
    while done < total:
        take = min(bs, n - pos, total - done)
        done, pos = done + take, pos + take
        if pos == n or done >= target or done == total:
            out.append(done)
            target = (done // every + 1) * every
        pos %= n
    return out


def subset_of(store, run_id) -> list[int]:
    return json.loads(store.get_artifact(run_id, SUBSET_ARTIFACT))["indices"]


def accuracy(model, data, idx=None) -> float:
    x, y = (data.test.x, data.test.y) if idx is None else (data.test.x[idx], data.test.y[idx])
    with torch.no_grad():
        return (model(data.prepare(x)).argmax(1) == y).float().mean().item()


def test_the_subset_is_stratified_and_the_same_for_every_seed(store, digits):
    a = train(digits_spec(eval_subset=100, seed=0), store=store, data=digits)
    b = train(digits_spec(eval_subset=100, seed=5), store=store, data=digits)
    idx = subset_of(store, a.run_id)
    assert idx == subset_of(store, b.run_id) == sorted(set(idx)) and len(idx) == 100 == a.eval_subset
    labels = digits.test.y.tolist()
    share, whole = Counter(labels[i] for i in idx), Counter(labels)
    for c, n in whole.items():
        assert abs(share[c] - 100 * n / len(labels)) < 1, (c, share[c], n)
    assert rows(store, a.run_id, "test_accuracy") != rows(store, b.run_id, "test_accuracy")  # the seeds did differ
    # the live rows are the subset's: the final weights reproduce the last one on exactly those examples
    model = build(digits_spec())
    load_weights(model, store.get_artifact(a.run_id, WEIGHTS_ARTIFACT))
    assert rows(store, a.run_id, "test_accuracy_subset")[-1][2] == pytest.approx(accuracy(model, digits, idx))
    assert a.test_accuracy == pytest.approx(accuracy(model, digits))
    # regression data: a seeded random subset, the same every time
    toy = load_dataset("toy-functions")
    r = eval_subset_indices(toy, 50)
    assert len(r) == 50 and torch.equal(r, eval_subset_indices(toy, 50)) and torch.equal(r, r.sort().values)
    assert eval_subset_indices(toy, "all") is None and eval_subset_indices(toy, len(toy.test)) is None


def test_full_split_numbers_at_step0_epoch_ends_and_the_end(store, digits, monkeypatch):
    monkeypatch.setattr(plan_module, "EVAL_FREE_S", 0.0)  # costs would choose an interval: the given one wins
    r = train(digits_spec(eval_subset=100, eval_every=300), store=store, data=digits)
    full, live = rows(store, r.run_id, "test_accuracy"), rows(store, r.run_id, "test_accuracy_subset")
    assert [e for _, e, _ in full] == [0, 1438, 2876] == [e for _, e, _ in rows(store, r.run_id, "test_loss")]
    # live points after the update passing each multiple of 300 examples, plus every full point
    assert [e for _, e, _ in live] == points(300)
    assert [e for _, e, _ in live] == [e for _, e, _ in rows(store, r.run_id, "test_loss_subset")]
    assert r.eval_every == 300 and r.eval_subset == 100
    assert r.step0_test_accuracy == full[0][2] and r.test_accuracy == full[-1][2]
    assert r.best_test_accuracy == max(v for _, _, v in full)  # the subset's numbers never count
    assert [h["test_accuracy"] for h in r.history] == [full[1][2], full[2][2]]
    predictions = [e["payload"]["examples"] for e in store.events(r.run_id, kinds=["prediction"])]
    assert predictions == [e for _, e, _ in live]  # a snapshot at every evaluation point
    assert 0 < r.eval_time_s < r.elapsed_s


def test_eval_subset_all_evaluates_the_full_split_everywhere(store, digits):
    r = train(digits_spec(eval_subset="all", eval_every=500), store=store, data=digits)
    full = rows(store, r.run_id, "test_accuracy")
    assert [e for _, e, _ in full] == points(500) == [0, 512, 1024, 1438, 1502, 2014, 2526, 2876]  # as before
    assert rows(store, r.run_id, "test_accuracy_subset") == full
    assert rows(store, r.run_id, "test_loss_subset") == rows(store, r.run_id, "test_loss")
    assert r.best_test_accuracy == max(v for _, _, v in full) and r.eval_subset == len(digits.test)
    # a subset at least as large as the split is the split
    big = train(digits_spec(eval_subset=5000, eval_every=500), store=store, data=digits)
    assert rows(store, big.run_id, "test_accuracy_subset") == rows(store, big.run_id, "test_accuracy")
    with pytest.raises(Exception):
        store.get_artifact(big.run_id, SUBSET_ARTIFACT)


def fc10_on_fashion(events=None, store=None):
    spec = load_spec({"data": {"dataset": "fashion-mnist", "train_size": 20000},
                      "model": ["flatten", {"fc": {"units": 10}}], "train": {"epochs": 1}})
    return spec, train(spec, store=store, on_event=events.append if events is not None else None)


def live_seconds(events) -> float:
    """Measured: the seconds of every live (subset) evaluation point."""
    return sum(e["seconds"] for e in events if e["type"] == "eval" and not e["full"])


@needs_fashion
def test_a_costly_evaluation_is_spaced_to_cost_a_tenth_of_the_training(store, monkeypatch):
    # EVAL_FREE_S = 0: the interval comes from the measured costs, as it does for a model whose live
    # points cost more than half a second in all (mnist-conv on a CPU)
    monkeypatch.setattr(plan_module, "EVAL_FREE_S", 0.0)
    events = []
    spec, r = fc10_on_fashion(events, store)
    opts = read_position(store.get_artifact(r.run_id, CHECKPOINT_ARTIFACT))["options"]
    point, update = opts["eval_point_s"], opts["update_s"]
    assert point > 0 and update > 0 and opts["eval_every"] == r.eval_every
    plan = make_plan(spec.train, 20000)
    assert r.eval_every == adaptive_eval_every(plan, eval_point_s=point, update_s=update) < 20000
    live = {e for _, e, _ in rows(store, r.run_id, "test_accuracy_subset")} - \
        {e for _, e, _ in rows(store, r.run_id, "test_accuracy")}
    assert 1 <= len(live) <= MAX_EVALS and len(live) * point <= EVAL_SHARE * plan.total_steps * update
    assert len(live) >= 20000 // r.eval_every - 2  # only points before the interval was chosen are missing
    assert live_seconds(events) <= 0.15 * r.train_time_s + 0.01, (live_seconds(events), r.train_time_s)


@needs_fashion
def test_cheap_evaluations_keep_about_twenty_points(store):
    events = []
    _, r = fc10_on_fashion(events)
    assert r.eval_subset == 2000 and r.eval_every == 1000  # 20 points: 20000 examples / 20
    assert live_seconds(events) <= EVAL_FREE_S  # what makes them "cheap", measured
    assert r.eval_time_s < r.elapsed_s and r.test_accuracy > 0.6


def test_a_resume_after_a_stop_keeps_the_interval_and_every_row_once(store, digits, monkeypatch):
    monkeypatch.setattr(plan_module, "EVAL_FREE_S", 0.0)  # an interval from measured costs
    stop = threading.Event()
    spec = digits_spec(eval_subset=100, epochs=30)

    def on_event(e):
        if e["type"] == "progress" and e["examples"] >= 20000:
            stop.set()

    first = train(spec, store=store, data=digits, stop_event=stop, on_event=on_event)
    assert first.status == "stopped" and first.eval_every is not None
    every = first.eval_every
    monkeypatch.setattr(plan_module, "EVAL_SHARE", 1e-9)  # were it measured again, the interval would change
    done = resume(first.run_id, store=store, data=digits)
    assert done.status == "finished" and done.eval_every == every
    metrics = store.metrics(first.run_id)
    counts = Counter((m["name"], m["step"]) for m in metrics)
    assert max(counts.values()) == 1
    live = [e for _, e, _ in rows(store, first.run_id, "test_accuracy_subset")]
    full = {e for _, e, _ in rows(store, first.run_id, "test_accuracy")}
    # The first live point after the interval was chosen; on a loaded machine the measured costs
    # may leave no live point at all (then there is no spacing to check, only the rows above).
    choice = min((e for e in live if e not in full), default=done.total_examples)
    for k in range(math.ceil(choice / every), math.ceil(done.total_examples / every)):
        hits = [e for e in live if k * every <= e < k * every + 32]  # after the update passing k * every
        assert len(hits) == 1, (k, hits)
    assert first.examples in full and done.total_examples in full  # the stop and the end: full split


def test_the_training_does_not_depend_on_where_evaluations_fall(digits):
    # a measured interval moves the evaluation (and forced log) points: what is learned must not move
    runs = [train(digits_spec(eval_every=every, epochs=3), data=digits, predictions=0) for every in (100, 777, 5000)]
    assert runs[0].history == runs[1].history == runs[2].history
    assert runs[0].test_accuracy == runs[1].test_accuracy == runs[2].test_accuracy


@needs_fashion
def test_inference_measurement_stops_after_about_a_third_of_a_second():
    data = load_dataset("fashion-mnist", test_size=10000)
    model = build(load_spec("mnist-conv"))
    t0 = time.perf_counter()
    speed = measure_inference(model, data)
    assert time.perf_counter() - t0 < 1.2
    assert speed["inferences_per_sec"] > 0 and speed["inferences_per_sec_b1"] > 0
    assert speed["latency_ms_b1"] == pytest.approx(1000 / speed["inferences_per_sec_b1"])
