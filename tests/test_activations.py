"""GET /api/runs/{id}/activations: every layer's output for one test example, and the conv filters.

One real mnist-conv run on a Fashion-MNIST subset (500 train, 100 test examples, trained once
per module into a real SQLite store) answers through the real app: its layers' shapes are the
shape checker's, its fc output is what the stored weights compute, its maps and filters are
PNGs of the stated sizes, and bad requests get 404 / 400 / 409 with the reason.
"""
from __future__ import annotations

import base64
import statistics
import struct
import time
import zlib

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from layerlab.data import locate
from layerlab.presets import preset_data
from layerlab.prepare import prepare_run
from layerlab.server import create_app
from layerlab.server.activations import MAX_CHANNELS, example_activations
from layerlab.server.datacache import DataCache
from layerlab.shapes import check
from layerlab.store import Store
from layerlab.studies.common import trained_model
from layerlab.train import CHECKPOINT_ARTIFACT, train

pytestmark = [pytest.mark.slow,  # a real training run in the module fixture (3-8 s on 2 shared cores)
              pytest.mark.skipif(locate("fashion-mnist") is None, reason="Fashion-MNIST files are not on this machine")]

TEST_SIZE = 100


def conv_spec() -> dict:
    spec = preset_data("mnist-conv")
    spec["data"].update(train_size=500, test_size=TEST_SIZE)
    return spec


def png_image(b64: str) -> np.ndarray:
    """Decode one of our 8-bit PNGs (greyscale or RGB, filter 0, one IDAT) back to an array."""
    raw = base64.b64decode(b64)
    assert raw[:8] == b"\x89PNG\r\n\x1a\n"
    w, h, depth, color = struct.unpack(">IIBB", raw[16:26])
    assert depth == 8 and color in (0, 2)
    n = struct.unpack(">I", raw[33:37])[0]
    assert raw[37:41] == b"IDAT"
    channels = 3 if color == 2 else 1
    rows = np.frombuffer(zlib.decompress(raw[41:41 + n]), np.uint8).reshape(h, 1 + w * channels)
    assert (rows[:, 0] == 0).all()
    return rows[:, 1:].reshape(h, w, channels) if channels == 3 else rows[:, 1:]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    s = Store(tmp_path_factory.mktemp("act") / "runs.db")
    yield s
    s.close()


@pytest.fixture(scope="module")
def run_id(store):
    return train(conv_spec(), store=store).run_id


@pytest.fixture(scope="module")
def client(store):
    with TestClient(create_app(store, workers=0), base_url="http://127.0.0.1") as c:
        yield c


def test_layers_have_the_shape_checkers_shapes(client, run_id):
    resp = client.get(f"/api/runs/{run_id}/activations", params={"index": 3})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    rows = check(conv_spec()).rows
    assert [layer["output_shape"] for layer in body["layers"]] == [list(r.output_shape) for r in rows]
    assert [layer["kind"] for layer in body["layers"]] == ["conv2d", "relu", "maxpool2d", "conv2d", "relu",
                                                          "maxpool2d", "flatten", "fc"]
    assert [layer["name"] for layer in body["layers"]][:4] == ["conv2d1", "relu1", "maxpool2d1", "conv2d2"]
    assert body["index"] == 3 and body["weights"]["source"] == "final"
    assert body["weights"]["examples"] == 500
    assert body["max_channels"] == MAX_CHANNELS == 16
    for layer in body["layers"]:
        shape = layer["output_shape"]
        assert layer["min"] <= layer["max"]
        if len(shape) == 3:
            assert layer["view"] == "maps" and layer["channels"] == shape[0]
            assert len(layer["maps"]) == min(shape[0], MAX_CHANNELS)
            img = png_image(layer["maps"][0])
            assert img.shape == tuple(shape[1:])
        else:
            assert layer["view"] == "vector" and layer["channels"] == shape[0]
            assert len(layer["values"]) == shape[0]
            assert min(layer["values"]) == pytest.approx(layer["min"]) and max(layer["values"]) == pytest.approx(
                layer["max"])
    relu = body["layers"][1]
    assert relu["min"] >= 0.0  # after ReLU


def test_values_are_what_the_stored_weights_compute(client, store, run_id):
    body = client.get(f"/api/runs/{run_id}/activations", params={"index": 7}).json()
    spec, model = trained_model(store, run_id)
    data = spec.data.load(device="cpu")
    x = data.prepare(data.test.x[7:8])
    with torch.no_grad():
        pooled = model[:3](x)[0]     # (8, 14, 14) after conv-relu-pool
        logits = model(x)[0]         # (10,)
    assert body["layers"][7]["values"] == pytest.approx(logits.tolist(), abs=1e-5)
    assert body["label"] == int(data.test.y[7]) and body["class_name"] == data.info.class_names[body["label"]]
    pool = body["layers"][2]
    assert pool["min"] == pytest.approx(float(pooled.min()), abs=1e-6)
    assert pool["max"] == pytest.approx(float(pooled.max()), abs=1e-6)
    # Each map is the channel scaled from the layer's min..max to 0..255.
    lo, hi = float(pooled.min()), float(pooled.max())
    expected = np.clip(np.round((pooled[0].numpy() - lo) * 255.0 / (hi - lo)), 0, 255)
    assert np.abs(png_image(pool["maps"][0]).astype(int) - expected.astype(int)).max() <= 1


def test_conv_filters_are_images_of_the_weights(client, store, run_id):
    body = client.get(f"/api/runs/{run_id}/activations", params={"index": 0}).json()
    _, model = trained_model(store, run_id)
    first, second = body["layers"][0]["filters"], body["layers"][3]["filters"]
    assert first["shape"] == [8, 1, 5, 5] and second["shape"] == [16, 8, 5, 5]
    assert len(first["images"]) == 8 and len(second["images"]) == 16
    assert png_image(first["images"][0]).shape == (5, 5)
    assert png_image(second["images"][0]).shape == (5, 8 * 5 + 7)  # 8 input channels, 1-pixel gaps
    w = model.conv2d1.weight.detach()
    assert first["min"] == pytest.approx(float(w.min())) and first["max"] == pytest.approx(float(w.max()))
    bound = float(w.abs().max())
    expected = np.clip(np.round((w[2, 0].numpy() + bound) * 255.0 / (2 * bound)), 0, 255)
    assert np.abs(png_image(first["images"][2]).astype(int) - expected.astype(int)).max() <= 1
    assert all("filters" not in layer or layer["kind"] == "conv2d" for layer in body["layers"])


def test_a_running_run_shows_its_latest_checkpoint(client, store, run_id):
    """A queued or running run has no final weights: its checkpoint is what the route loads."""
    other = prepare_run(conv_spec()).create_run(store, name="still running", status="running")
    store.put_artifact(other, CHECKPOINT_ARTIFACT, store.get_artifact(run_id, CHECKPOINT_ARTIFACT), kind="checkpoint")
    body = client.get(f"/api/runs/{other}/activations", params={"index": 7}).json()
    final = client.get(f"/api/runs/{run_id}/activations", params={"index": 7}).json()
    assert body["weights"]["source"] == "checkpoint"
    assert body["weights"]["examples"] == 500  # the trainer's checkpoint at the end of the run
    assert body["layers"][7]["values"] == pytest.approx(final["layers"][7]["values"], abs=1e-6)


def test_errors_say_what_is_wrong(client, store, run_id):
    resp = client.get("/api/runs/999999/activations", params={"index": 0})
    assert resp.status_code == 404 and resp.json()["detail"] == "run 999999 not found"

    resp = client.get(f"/api/runs/{run_id}/activations", params={"index": TEST_SIZE})
    assert resp.status_code == 400
    assert resp.json()["detail"] == (f"example index {TEST_SIZE} is out of range: the test split of fashion-mnist "
                                     f"has {TEST_SIZE} examples (0 to {TEST_SIZE - 1})")
    assert client.get(f"/api/runs/{run_id}/activations", params={"index": -1}).status_code == 422

    queued = prepare_run(conv_spec()).create_run(store, name="queued")
    resp = client.get(f"/api/runs/{queued}/activations", params={"index": 0})
    assert resp.status_code == 409 and resp.json()["error"] == "Conflict"
    assert f"run {queued} is queued and has no weights stored yet" in resp.json()["detail"]

    toy = prepare_run({"name": "toy", "data": {"dataset": "circle"}, "model": [{"fc": {"units": 2}}],
                       "train": {"examples": 100}}).create_run(store)
    resp = client.get(f"/api/runs/{toy}/activations", params={"index": 0})
    assert resp.status_code == 400 and resp.json()["error"] == "DataError"
    assert "trains on 'circle', whose examples are 2 values, not images" in resp.json()["detail"]


def test_one_example_takes_well_under_100_ms_warm(store, run_id, one_thread):
    """The issue's budget: server time for one example of mnist-conv under 100 ms (measured warm).

    One intra-op thread: a single example gains nothing from two, and two threads on a machine
    busy with other work stall each other (150 ms seen at load 12 on 2 cores, against 24 ms)."""
    cache = DataCache()
    example_activations(store, run_id, cache, 0)  # warm: data loaded, model built
    times = []
    for i in range(1, 11):
        t = time.perf_counter()
        example_activations(store, run_id, cache, i)
        times.append(time.perf_counter() - t)
    median = statistics.median(times)
    print(f"activations of one mnist-conv example: median {median * 1000:.1f} ms over 10 (warm)")
    assert median < 0.100, times


def test_the_html_report_shows_the_activations_of_one_fixed_example(store, run_id):
    from layerlab.report.html import ACTIVATIONS_EXAMPLE, render_report
    page = render_report(store, [run_id])
    assert f"Activations of test example {ACTIVATIONS_EXAMPLE}</h3>" in page
    assert "final weights after 500 examples" in page
    rows = check(conv_spec()).rows
    for n, row in enumerate(rows):
        shape = "×".join(map(str, row.output_shape))
        assert f"<h4>layer {n + 1} · {row.kind} · {shape} · min " in page
    assert page.count('alt="channel ') == 8 + 8 + 8 + 16 + 16 + 16
    assert page.count('alt="filter ') == 8 + 16
    assert page.count(" output values\"") == 2  # flatten and fc as bars


def test_the_report_of_a_run_without_weights_says_why(store):
    from layerlab.report.html import render_report
    queued = prepare_run(conv_spec()).create_run(store, name="queued for the report")
    page = render_report(store, [queued])
    assert f"Activations of test example 0 not shown: run {queued} is queued and has no weights stored yet" in page
