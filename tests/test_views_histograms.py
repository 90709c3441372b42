"""Weight and gradient histograms over time: the bins, what the trainer stores, the route, the report,
the diagnoses that point at a layer, and the bounded space on a real Fashion-MNIST epoch.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from torch import nn

from layerlab.data import locate
from layerlab.server.app import create_app
from layerlab.server.schemas import HistogramsOut
from layerlab.store import Store
from layerlab.train import train
from layerlab.train.diagnose import diagnosis_layer
from layerlab.train.views import BINS, MAX_POINTS, histograms
from layerlab.views_read import read_histograms

DIGITS = {"name": "digits-mlp", "data": {"dataset": "digits"},
          "model": ["flatten", {"fc": {"units": 16}}, "relu", {"fc": {"units": 10}}],
          "train": {"epochs": 2, "batch_size": 32}}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    torch.set_num_threads(1)
    store = Store(tmp_path_factory.mktemp("hist") / "runs.db")
    ok = train(DIGITS, store=store)
    dead = train({**DIGITS, "name": "dead", "train": {**DIGITS["train"], "epochs": 1, "optimizer": "sgd", "lr": 30.0}},
                 store=store)
    yield store, ok.run_id, dead.run_id
    store.close()


def test_histogram_bins_count_every_finite_value():
    layer = nn.Linear(50, 20)
    with torch.no_grad():
        layer.weight[0, :3] = torch.tensor([float("nan"), float("inf"), -float("inf")])
    model = nn.Sequential()
    model.add_module("fc1", layer)
    model.add_module("relu1", nn.ReLU())
    out = histograms(model)
    (h,) = out["layers"]
    w = h["weights"]
    finite = layer.weight.detach()[torch.isfinite(layer.weight.detach())]
    assert (h["index"], h["name"], h["shape"]) == (0, "fc1", [20, 50]) and out["bins"] == BINS
    assert sum(w["counts"]) == w["n"] == 997 and w["nonfinite"] == 3 and len(w["counts"]) == BINS
    assert (w["lo"], w["hi"]) == (float(finite.min()), float(finite.max()))
    expect, _ = np.histogram(finite.detach().numpy(), bins=BINS, range=(w["lo"], w["hi"]))
    assert np.abs(np.array(w["counts"]) - expect).max() <= 1  # torch.histc and numpy agree up to edge rounding
    assert h["grads"] is None  # no update yet
    model.fc1.weight.grad = torch.zeros_like(layer.weight)
    g = histograms(model)["layers"][0]["grads"]
    assert (g["lo"], g["hi"]) == (-0.5, 0.5) and g["counts"][BINS // 2] == 1000  # a constant tensor: one bin


def test_the_trainer_stores_histograms_per_layer_with_edges(runs):
    store, run_id, _ = runs
    out = read_histograms(store, run_id)
    assert [(l["index"], l["name"], l["shape"]) for l in out["layers"]] == [(1, "fc1", [16, 64]), (3, "fc2", [10, 16])]
    steps = out["steps"]
    assert steps[0] == 0 and steps[-1] == store.get_run(run_id)["step"] and len(steps) <= MAX_POINTS + 2
    for layer in out["layers"]:
        first, last = layer["points"][0], layer["points"][-1]
        assert first["grads"] is None and last["grads"]["n"] == math.prod(layer["shape"])
        assert last["weights"]["n"] == math.prod(layer["shape"]) == sum(last["weights"]["counts"])
        edges = last["weights"]["edges"]
        assert len(edges) == BINS + 1 and edges[0] == last["weights"]["lo"] and edges[-1] == pytest.approx(last["weights"]["hi"])
        assert first["weights"] != last["weights"]  # the weights moved


def test_histograms_route(runs):
    store, run_id, _ = runs
    with TestClient(create_app(store, workers=0), base_url="http://127.0.0.1") as c:
        out = c.get(f"/api/runs/{run_id}/histograms").json()
        HistogramsOut.model_validate(out)
        read = read_histograms(store, run_id)
        assert out["steps"] == read["steps"] and out["run_id"] == run_id
        assert out["layers"][1]["points"][-1]["grads"]["counts"] == read["layers"][1]["points"][-1]["grads"]["counts"]
        assert [l["name"] for l in out["layers"]] == ["fc1", "fc2"] and out["bins"] == BINS
        one = c.get(f"/api/runs/{run_id}/histograms?layer=3").json()
        assert [l["name"] for l in one["layers"]] == ["fc2"]
        missing = c.get(f"/api/runs/{run_id}/histograms?layer=2")
        assert missing.status_code == 404 and "no histograms of layer 2; layers with weights: 1, 3" in missing.json()["detail"]
        assert c.get("/api/runs/12345/histograms").status_code == 404


def test_a_dead_relu_diagnosis_points_at_the_layer_feeding_it(runs):
    store, _, dead_id = runs
    out = read_histograms(store, dead_id)
    kinds = {d["kind"] for d in out["diagnoses"]}
    assert kinds & {"dead_relu", "diverged"}, store.get_run(dead_id)["diagnosis"]
    for d in out["diagnoses"]:
        assert (d["layer"], d["layer_name"]) in ((1, "fc1"), (3, "fc2")) and d["text"]


def test_diagnosis_layer_rules():
    kinds = ["flatten", "fc", "relu", "fc", "relu", "fc"]
    assert diagnosis_layer("dead_relu", {}, kinds, dead={"relu1": 0.2, "relu2": 0.99}) == {"layer": 3, "layer_name": "fc2"}
    assert diagnosis_layer("dead_relu", {}, kinds, dead={"relu1": 0.5}) is None  # not dead enough to be reported
    records = [{"layer_grad_norms": {"fc1": 1.0, "fc2": 9.0, "fc3": 2.0}},
               {"layer_grad_norms": {"fc1": "Infinity", "fc2": 3.0, "fc3": 2.0}}]
    assert diagnosis_layer("diverged", {"records": records}, kinds) == {"layer": 1, "layer_name": "fc1"}
    assert diagnosis_layer("diverged", {"records": records[:1]}, kinds) == {"layer": 3, "layer_name": "fc2"}
    assert diagnosis_layer("flat_loss", {}, kinds) is None


def test_the_report_draws_the_histograms(runs, tmp_path):
    from layerlab.report.html import render_report
    store, run_id, _ = runs
    page = render_report(store, [run_id])
    assert "<h3>Weights and gradients over time</h3>" in page
    assert f"Weight and gradient histograms of run {run_id}" in page
    assert "Decision boundary" not in page  # digits has no 2-D inputs


@pytest.mark.slow
@pytest.mark.skipif(locate("fashion-mnist") is None, reason="Fashion-MNIST is not on this machine")
def test_a_fashion_mnist_epoch_stores_a_few_hundred_kb_of_views(tmp_path):
    """One epoch on the real 60,000 images, evaluated every 600 examples: thinned to at most MAX_POINTS."""
    torch.set_num_threads(1)
    store = Store(tmp_path / "f.db")
    spec = {"name": "fmnist", "data": {"dataset": "fashion-mnist", "test_size": 1000},
            "model": ["flatten", {"fc": {"units": 64}}, "relu", {"fc": {"units": 32}}, "relu", {"fc": {"units": 10}}],
            "train": {"epochs": 1, "batch_size": 200, "eval_every": 600, "eval_subset": 200}}
    result = train(spec, store=store)
    size = store.views_size(result.run_id)
    steps = store.view_steps(result.run_id, "histograms")
    assert store.view_steps(result.run_id, "boundary") == []
    assert steps[0] == 0 and steps[-1] == result.steps and len(steps) <= MAX_POINTS + 2
    assert size <= 300_000, f"{size} bytes of views for {len(steps)} points"


def test_the_recorder_thins_by_examples_and_by_time(tmp_path, monkeypatch):
    from layerlab.data import load_dataset
    from layerlab.spec import load_spec
    from layerlab.train import views
    from layerlab.train.evaluation import default_objective
    from layerlab.train.record import Recorder
    store = Store(tmp_path / "r.db")
    spec = load_spec({"data": {"dataset": "xor"}, "model": [{"fc": {"units": 4}}, "relu", {"fc": {"units": 2}}]})
    from layerlab.builder import build
    model, data = build(spec), load_dataset("xor")
    rid = store.create_run(spec.to_dict(), name="r", status="queued")
    rec = Recorder(store, rid)
    monkeypatch.setattr(views, "TIME_SHARE", 1e9)  # time never limits: only the examples' spacing
    every = views.ViewRecorder(rec, data, default_objective(data, model), total_examples=1000, max_points=10)
    stored = [step for step in range(0, 101) if every.record(model, step, step * 10, force=step in (0, 100))]
    assert stored == list(range(0, 101, 10))  # 100 examples apart, and the forced ends
    monkeypatch.setattr(views, "TIME_SHARE", 0.0)  # no time for views: only the forced ones
    rid2 = store.create_run(spec.to_dict(), name="r2", status="queued")
    none = views.ViewRecorder(Recorder(store, rid2), data, default_objective(data, model), total_examples=1000)
    stored = [step for step in range(0, 101) if none.record(model, step, step * 10, force=step in (0, 100))]
    assert stored == [0, 100] and store.view_steps(rid2, "boundary") == [0, 100]
