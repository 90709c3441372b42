"""Decision boundaries: the grid, the per-neuron maps, their storage, the API routes and ``predict --boundary``.

Real parts: real toy data (spiral, plane), real training into a real SQLite store, the app over
HTTP (TestClient), the CLI in-process. The values a stored boundary holds are checked against a
model whose output is known in closed form, and against the run's own final weights.
"""
from __future__ import annotations

import base64
import math
import zlib

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from torch import nn
from typer.testing import CliRunner

from layerlab.builder import build
from layerlab.cli import app as cli_app
from layerlab.data import load_dataset
from layerlab.server.app import create_app
from layerlab.server.schemas import BoundaryOut
from layerlab.spec import load_spec
from layerlab.store import Store
from layerlab.train import train
from layerlab.train.checkpoint import WEIGHTS_ARTIFACT, load_weights
from layerlab.train.evaluation import default_objective
from layerlab.train.views import (GRID, MAX_POINTS, MAX_UNITS, NEURON_GRID, PAD, boundary, decode_boundary,
                                  dequantize, hidden_layers, plane_extent, plane_points, quantize)
from layerlab.views_read import read_boundary

SPIRAL = {"name": "spiral-net", "data": {"dataset": "spiral"},
          "model": [{"fc": {"units": 20}}, "tanh", {"fc": {"units": 6}}, "tanh", {"fc": {"units": 2}}],
          "train": {"epochs": 4, "batch_size": 25, "optimizer": "adam", "lr": 0.02}}


@pytest.fixture(scope="module")
def spiral_store(tmp_path_factory):
    torch.set_num_threads(1)
    store = Store(tmp_path_factory.mktemp("views") / "runs.db")
    result = train(SPIRAL, store=store)
    digits = train({"name": "digits", "data": {"dataset": "digits"}, "model": ["flatten", {"fc": {"units": 10}}],
                    "train": {"examples": 500}}, store=store)
    queued = store.create_run(load_spec(SPIRAL).to_dict(), name="waiting", status="queued")
    yield store, result.run_id, digits.run_id, queued
    store.close()


@pytest.fixture(scope="module")
def client(spiral_store):
    store = spiral_store[0]
    with TestClient(create_app(store, workers=0), base_url="http://127.0.0.1") as c:
        yield c


# ------------------------------------------------------------------ the computation


def test_plane_extent_and_points_cover_the_data_row_major():
    data = load_dataset("spiral")
    (x0, x1), (y0, y1) = plane_extent(data)
    xs = torch.cat([data.train.x, data.test.x])
    width = float(xs[:, 0].max() - xs[:, 0].min())
    assert x0 == pytest.approx(float(xs[:, 0].min()) - PAD * width, rel=1e-5)
    assert x1 == pytest.approx(float(xs[:, 0].max()) + PAD * width, rel=1e-5)
    pts = plane_points([[0, 4], [10, 12]], 4)
    assert pts.shape == (16, 2)
    assert pts[:4, 0].tolist() == [0.5, 1.5, 2.5, 3.5] and pts[:4, 1].tolist() == [10.25] * 4  # row 0: lowest y
    assert pts[4, 1].item() == 10.75


def test_quantize_keeps_values_within_half_a_level():
    v = torch.linspace(-3, 5, 1000)
    levels, lo, hi = quantize(v)
    assert (lo, hi) == (-3.0, 5.0) and len(levels) == 1000
    back = dequantize(levels, lo, hi, (1000,))
    assert np.abs(back - v.numpy()).max() <= (hi - lo) / 510 + 1e-6
    const, a, b = quantize(torch.full((7,), 2.5))
    assert (a, b) == (2.5, 2.5) and dequantize(const, a, b, (7,)).tolist() == [2.5] * 7
    nan_levels, a, b = quantize(torch.tensor([float("nan")] * 3))
    assert math.isnan(a) and np.isnan(dequantize(nan_levels, a, b, (3,))).all()


def test_maps_are_quantised_column_by_column_as_one_grid_is():
    from layerlab.train.views import _quantize_columns
    v = torch.randn(50, 3)
    v[4, 1] = float("nan")
    v[:, 2] = float("nan")
    levels, lows, highs = _quantize_columns(v)
    for u in range(2):
        one, lo, hi = quantize(v[:, u])
        assert levels[u * 50:(u + 1) * 50] == one and (lows[u], highs[u]) == (lo, hi)
    assert math.isnan(lows[2]) and levels[100:] == bytes(50)


def test_boundary_of_a_known_model():
    """A regression net whose output is x - 2y and whose one hidden unit is relu(x): the grids say so."""
    data = load_dataset("plane", normalize="none")
    model = nn.Sequential()
    model.add_module("fc1", nn.Linear(2, 1))
    model.add_module("relu1", nn.ReLU())
    model.add_module("fc2", nn.Linear(1, 1))
    with torch.no_grad():
        model.fc1.weight.copy_(torch.tensor([[1.0, 0.0]]))
        model.fc1.bias.zero_()
        model.fc2.weight.fill_(1.0)
        model.fc2.bias.zero_()
    linear = nn.Sequential()
    linear.add_module("fc1", nn.Linear(2, 1))
    with torch.no_grad():
        linear.fc1.weight.copy_(torch.tensor([[1.0, -2.0]]))
        linear.fc1.bias.zero_()
    extent = plane_extent(data)
    objective = default_objective(data)
    meta, blob = boundary(linear, data, objective, extent)
    assert meta["task"] == "regression" and meta["value"] == "output" and meta["neurons"] == []
    grid = decode_boundary(meta, blob)["grid"]
    pts = plane_points(extent, GRID).numpy()
    expect = (pts[:, 0] - 2 * pts[:, 1]).reshape(GRID, GRID)
    assert grid.shape == (GRID, GRID)
    assert np.abs(grid - expect).max() <= (meta["max"] - meta["min"]) / 510 + 1e-4

    meta, blob = boundary(model, data, objective, extent)
    (layer,) = meta["neurons"]
    assert (layer["layer"], layer["name"], layer["output"], layer["units"], layer["shown"]) == (0, "fc1", "relu1", 1, 1)
    unit = decode_boundary(meta, blob)["neurons"][0][0]
    small = plane_points(extent, NEURON_GRID).numpy()
    assert unit.shape == (NEURON_GRID, NEURON_GRID)
    assert np.abs(unit - np.maximum(small[:, 0], 0).reshape(NEURON_GRID, NEURON_GRID)).max() < 0.05


def test_neuron_maps_cover_two_hidden_layers_of_at_most_16_units():
    spec = load_spec({"data": {"dataset": "xor"}, "model": [{"fc": {"units": 40}}, "relu", {"fc": {"units": 5}},
                                                            "sigmoid", {"fc": {"units": 4}}, "relu", {"fc": {"units": 2}}]})
    model = build(spec)
    assert hidden_layers(model) == [(0, 1), (2, 3)]  # the third hidden layer gets no maps
    data = load_dataset("xor")
    meta, blob = boundary(model, data, default_objective(data, model), plane_extent(data))
    assert [(n["name"], n["output"], n["units"], n["shown"]) for n in meta["neurons"]] == \
        [("fc1", "relu1", 40, MAX_UNITS), ("fc2", "sigmoid1", 5, 5)]
    assert meta["value"] == "p(positive)"
    raw = zlib.decompress(blob)
    assert len(raw) == GRID * GRID + (MAX_UNITS + 5) * NEURON_GRID ** 2
    assert len(blob) < 16_000  # bounded: a boundary with 21 maps is at most a few KB compressed


# ------------------------------------------------------------------ stored by the trainer


def test_the_trainer_stores_boundaries_that_match_the_final_weights(spiral_store):
    store, run_id, _, _ = spiral_store
    steps = store.view_steps(run_id, "boundary")
    run = store.get_run(run_id)
    assert steps[0] == 0 and steps[-1] == run["step"] and len(steps) <= MAX_POINTS + 2
    assert steps == store.view_steps(run_id, "histograms")
    kinds = [e["payload"] for e in store.events(run_id, kinds=["view"])]
    assert [k["step"] for k in kinds] == steps and all(k["kinds"] == ["boundary", "histograms"] for k in kinds)
    got = read_boundary(store, run_id)
    assert got["step"] == run["step"] and got["steps"] == steps
    # The same grid from the run's final weights, recomputed here.
    spec = load_spec(run["spec"])
    model = build(spec)
    load_weights(model, store.get_artifact(run_id, WEIGHTS_ARTIFACT))
    data = spec.data.load()
    model.eval()
    with torch.no_grad():
        probs = torch.softmax(model(data.prepare(plane_points(got["meta"]["extent"], GRID))), 1)[:, 1]
    expect = probs.reshape(GRID, GRID).numpy()
    assert np.abs(got["grid"] - expect).max() <= (got["meta"]["max"] - got["meta"]["min"]) / 510 + 1e-5
    first = read_boundary(store, run_id, step=0)["grid"]
    assert np.abs(first - got["grid"]).max() > 0.05  # training moved the boundary


def test_put_view_replaces_the_same_step_and_deleting_the_run_removes_views(tmp_path):
    store = Store(tmp_path / "v.db")
    rid = store.create_run(load_spec(SPIRAL).to_dict(), name="x", status="queued")
    store.put_view(rid, "histograms", 5, 50, {"bins": 30, "layers": []})
    store.put_view(rid, "histograms", 5, 51, {"bins": 30, "layers": [], "again": True})
    (row,) = store.views(rid, "histograms")
    assert row["examples"] == 51 and row["meta"]["again"] is True
    with pytest.raises(Exception, match="kind must be one of boundary, histograms"):
        store.put_view(rid, "pictures", 1, 1, {})
    store.delete_run(rid)
    assert store.views(rid, "histograms") == [] and store.views_size(rid) == 0


# ------------------------------------------------------------------ the API


def test_boundary_route(client, spiral_store):
    store, run_id, _, _ = spiral_store
    resp = client.get(f"/api/runs/{run_id}/boundary?points=true")
    assert resp.status_code == 200, resp.text
    out = resp.json()
    BoundaryOut.model_validate(out)  # the documented answer (the contract test's spiral run has one too)
    grid = np.frombuffer(base64.b64decode(out["grid"]["data"]), np.uint8)
    assert out["size"] == GRID and grid.shape == (GRID * GRID,) and out["value"] == "p(positive)"
    assert [len(n["maps"]) for n in out["neurons"]] == [16, 6]
    assert len(base64.b64decode(out["neurons"][1]["maps"][0]["data"])) == NEURON_GRID ** 2
    assert len(out["points"]["train"]["x"]) == 250 and set(out["points"]["test"]["y"]) == {0, 1}
    stored = read_boundary(store, run_id)
    assert grid.tobytes() == stored["levels"]["grid"] and len(stored["levels"]["grid"]) == GRID * GRID
    at0 = client.get(f"/api/runs/{run_id}/boundary?step=0").json()
    assert at0["step"] == 0 and at0["examples"] == 0 and at0["points"] is None and at0["grid"] != out["grid"]


@pytest.mark.parametrize("path, status, message", [
    ("/api/runs/999/boundary", 404, "run 999 not found"),
    ("/api/runs/{digits}/boundary", 400, "whose inputs are 1×8×8 values: a decision boundary needs inputs of 2 values"),
    ("/api/runs/{queued}/boundary", 409, "has no boundary stored yet"),
    ("/api/runs/{spiral}/boundary?step=3", 404, "has no boundary at step 3; it has"),
    ("/api/runs/{spiral}/boundary?step=-1", 422, "step"),
])
def test_boundary_route_refuses_bad_input(client, spiral_store, path, status, message):
    _, spiral, digits, queued = spiral_store
    resp = client.get(path.format(spiral=spiral, digits=digits, queued=queued))
    assert resp.status_code == status, resp.text
    assert message in resp.json()["detail"]


# ------------------------------------------------------------------ the CLI


def test_predict_writes_the_boundary_png(spiral_store, tmp_path):
    store, run_id, digits, _ = spiral_store
    runner = CliRunner()
    path = tmp_path / "b.png"
    got = runner.invoke(cli_app, ["predict", str(run_id), "--boundary", str(path), "--db", store.url])
    assert got.exit_code == 0, got.output
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
    bad = tmp_path / "no.png"
    refused = runner.invoke(cli_app, ["predict", str(digits), "--boundary", str(bad), "--db", store.url])
    assert refused.exit_code == 2 and "a decision boundary needs inputs of 2 values" in " ".join(refused.output.split())
    assert not bad.exists()
