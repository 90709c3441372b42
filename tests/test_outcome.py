"""The verdict on a run, the learning rates it suggests, and the dashboard's definitions (one source, the docs').

A run that finished at chance accuracy is failed-to-learn everywhere (RunResults.outcome); a suggested lr is well
below the one that failed and bounded by the optimiser; every definition the page shows is in docs/metrics.md.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from layerlab.metric_defs import DEFINITIONS
from layerlab.server import create_app
from layerlab.store import Store
from layerlab.train.diagnose import Watch, explain_divergence, StepRecord, suggest_lr
from layerlab.train.results import RunResults

DOCS = Path(__file__).resolve().parent.parent / "docs" / "metrics.md"
TEN = {"classes": [str(i) for i in range(10)], "matrix": [[0] * 10 for _ in range(10)]}


def results(**fields) -> RunResults:
    base = dict(status="finished", device="cpu", task="classification", loss="cross_entropy", params=100,
                examples=1000, steps=10, epochs=1.0, total_examples=1000, elapsed_s=1.0, train_time_s=1.0,
                confusion=TEN)
    return RunResults(**{**base, **fields})


@pytest.mark.parametrize("lr, optimizer, want", [
    (10, "sgd", 0.5), (1e6, "sgd", 0.5), (0.1, "sgd", 0.005), (1, "adam", 0.01), (0.01, "adam", 0.0005),
    (3, "adadelta", 0.1), (1e35, None, 1.0)])
def test_suggested_lr_is_well_below_the_failed_one_and_bounded_by_the_optimiser(lr, optimizer, want):
    got = suggest_lr(lr, optimizer)
    assert got == want
    assert got <= lr / 20


def test_a_divergence_at_lr_1e6_does_not_advise_lr_100000():
    records = [StepRecord(s, 1e6, 2.0 * 3 ** s, 10.0 ** s, 1.0 * 2 ** s) for s in range(1, 13)]
    text = explain_divergence(records, bad_step=13, what="the loss became NaN", lr=1e6, optimizer="sgd")
    assert text.endswith("try lr ≤ 0.5"), text
    assert "100000" not in text


def test_a_cost_spike_and_dead_relus_are_named_with_the_lr():
    w = Watch()
    for i, cost in enumerate([2.3, 9.6e4, 40.0, 2.31, 2.30, 2.30, 2.31, 2.30]):
        w.add_cost(cost, step=10 * (i + 1), examples=640 * (i + 1), lr=10.0)
    w.add_probe({"zero_hidden_grads": True, "dead": {"relu1": 1.0}})
    notes = dict(w.notes(zero_init=False, lr=10.0, final=True, optimizer="sgd", reference_loss=2.3))
    assert notes["loss_spike"].startswith("the cost jumped to 96,000 at 1,280 examples with lr 10, 41,739 times the "
                                          "untrained model's test loss (2.3)")
    assert notes["loss_spike"].endswith("try lr ≤ 0.5")
    assert notes["dead_relu"].startswith("every ReLU of relu1 is dead")
    assert "zero_gradients" not in notes  # the dead ReLUs are the cause of the zero gradients
    healthy = Watch()
    for i, cost in enumerate([2.3, 1.5, 1.0, 0.8, 0.6, 0.5, 0.45, 0.4]):
        healthy.add_cost(cost, step=i + 1, examples=64 * (i + 1), lr=0.1)
    assert healthy.notes(zero_init=False, lr=0.1, final=True, optimizer="sgd", reference_loss=2.3) == []


def test_outcome_is_failed_to_learn_at_chance_and_carries_the_cause():
    spike = {"kind": "loss_spike", "text": "the cost jumped to 96,000 at 1,280 examples with lr 10", "step": 20}
    r = results(test_accuracy=0.1, diagnoses=[spike])
    assert r.outcome == {"kind": "failed_to_learn", "label": "failed to learn",
                         "text": "test accuracy 10.0% is chance level (1 in 10); " + spike["text"]}
    assert RunResults.from_json(r.to_json()).outcome == r.outcome  # computed again from the fields, the same
    assert results(test_accuracy=0.82).outcome == {"kind": "learned", "label": "finished", "text": None}
    assert results(test_accuracy=0.15).outcome["kind"] == "failed_to_learn"  # 1.5 × chance
    assert results(test_accuracy=0.16).outcome["kind"] == "learned"
    assert results(status="diverged", diagnosis="lr too high", test_accuracy=0.1).outcome == \
        {"kind": "diverged", "label": "diverged", "text": "lr too high"}
    assert results(status="stopped", test_accuracy=0.1).outcome["kind"] == "stopped"  # stopped early: no verdict
    flat = {"kind": "flat_loss", "text": "the cost did not move", "step": 9}
    assert results(task="regression", loss="mse", confusion=None, diagnoses=[flat]).outcome["kind"] == "failed_to_learn"


def test_every_definition_is_in_the_docs_and_served(tmp_path):
    docs = DOCS.read_text()
    for d in DEFINITIONS:
        assert f"| {d.label} | `{d.key}` | {d.definition} |" in docs, d.key
    store = Store(tmp_path / "runs.db")
    try:
        with TestClient(create_app(store, workers=0), base_url="http://127.0.0.1") as client:
            served = client.get("/api/metrics").json()
            assert served == [{"key": d.key, "label": d.label, "definition": d.definition} for d in DEFINITIONS]
            assert client.get("/api/meta").json()["metrics"] == served
            assert "/api/metrics" in client.get("/openapi.json").json()["paths"]
    finally:
        store.close()


def test_every_view_says_failed_to_learn_the_same_way(tmp_path):
    """One stored run at chance: the API's list and detail, ``runs --json``, ``runs show`` and the report agree."""
    import json

    from typer.testing import CliRunner

    from layerlab.cli import app
    from layerlab.report.html import render_report

    db = tmp_path / "runs.db"
    store = Store(db)
    spec = {"name": "hot", "data": {"dataset": "digits"}, "model": ["flatten", {"fc": {"units": 10}}],
            "train": {"optimizer": "sgd", "lr": 10.0}}
    run_id = store.create_run(spec, status="running")
    spike = {"kind": "loss_spike", "text": "the cost jumped to 96,000 at 1,280 examples with lr 10; try lr ≤ 0.5",
             "step": 20}
    r = results(run_id=run_id, test_accuracy=0.1, best_test_accuracy=0.12, diagnoses=[spike], diagnosis=spike["text"])
    store.set_results(run_id, r.to_json())
    store.set_status(run_id, "finished", diagnosis=r.diagnosis)
    want = r.outcome
    assert want["kind"] == "failed_to_learn"
    try:
        with TestClient(create_app(store, workers=0), base_url="http://127.0.0.1") as client:
            listed = client.get("/api/runs").json()["runs"][0]
            assert listed["outcome"] == want
            assert (listed["optimizer"], listed["lr"], listed["params"]) == ("sgd", 10.0, 100)
            assert listed["best_test_accuracy"] == 0.12  # the results' field
            assert client.get(f"/api/runs/{run_id}").json()["outcome"] == want
        out = CliRunner().invoke(app, ["runs", "--db", str(db), "--json"])
        assert out.exit_code == 0, out.output
        assert json.loads(out.output)[0]["outcome"] == want
        shown = CliRunner().invoke(app, ["runs", "show", str(run_id), "--db", str(db)])
        assert shown.exit_code == 0, shown.output
        assert "failed to learn" in shown.output and "is chance level" in " ".join(shown.output.split())
        html = render_report(store, [run_id])
        assert '<span class="bad">failed to learn</span>' in html and "Failed to learn." in html
    finally:
        store.close()
