"""The web server's JSON API: every route, bad input (4xx with the reason, never 500), the token,
the body limit, the Host check, the worker pool and the server-sent event stream.

Runs that really train use a tiny spec (digits or a Fashion-MNIST subset, a few thousand
examples) in a worker process; the stream tests write to the store from a thread instead, so
the order and the end of the stream are checked exactly.
"""
from __future__ import annotations

import json
import re
import struct
import subprocess
import sys
import threading
import time
import zlib

import httpx
import pytest
from fastapi.testclient import TestClient

from layerlab.server import create_app
from layerlab.server.images import png_bytes
from layerlab.server.stream import parse_cursor
from layerlab.server.testing import LiveServer
from layerlab.store import Store

TINY = {"name": "tiny", "data": {"dataset": "digits"},
        "model": ["flatten", {"fc": {"units": 10}}], "train": {"examples": 2000, "batch_size": 64}}
# A write with no JSON body (stop, resume, delete) says it is no form: what api.js sends on every request.
ACT = {"X-Layerlab": "1"}


@pytest.fixture()
def store(tmp_path):
    s = Store(tmp_path / "runs.db")
    yield s
    s.close()


@pytest.fixture()
def client(store):
    with TestClient(create_app(store, workers=1), base_url="http://127.0.0.1") as c:
        yield c


def wait_status(client, run_id, statuses=("finished", "stopped", "diverged", "failed", "interrupted"), timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = client.get(f"/api/runs/{run_id}").json()
        if run["status"] in statuses:
            return run
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} is still {run['status']} after {timeout} s")


def wait_for(what: str, predicate, timeout: float = 30.0):
    """Poll ``predicate`` until it is true (and return its value); fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.05)
    return value


def assert_4xx(resp, status=None, contains=None):
    assert 400 <= resp.status_code < 500, (resp.status_code, resp.text)
    if status is not None:
        assert resp.status_code == status, resp.text
    detail = resp.json()["detail"]
    assert isinstance(detail, str) and detail
    if contains is not None:
        assert contains in detail, detail
    return resp.json()


# ----------------------------------------------------------------------------- page and static files


def test_index_names_hashed_static_files(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert page.headers["cache-control"] == "no-cache"
    prefix = re.search(r'src="(/static/[0-9a-f]{12})/js/main.js"', page.text).group(1)
    js = client.get(f"{prefix}/js/main.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    assert "immutable" in js.headers["cache-control"]
    plotly = client.get(f"{prefix}/vendor/plotly.min.js")
    assert plotly.status_code == 200 and len(plotly.content) > 1_000_000  # the package's bundle
    assert "immutable" in plotly.headers["cache-control"]
    css = client.get(f"{prefix}/css/app.css")
    assert css.status_code == 200 and "text/css" in css.headers["content-type"]
    old = client.get("/static/000000000000/js/main.js")
    assert old.status_code == 200 and old.headers["cache-control"] == "no-cache"


@pytest.mark.parametrize("path", ["../app.py", "..%2Fapp.py", "js/../../app.py", "/etc/passwd", "index.html", "js/nope.js"])
def test_static_paths_are_table_keys_only(client, path):
    resp = client.get(f"/static/x/{path}")
    assert resp.status_code == 404


def test_openapi_lists_the_routes(client):
    spec = client.get("/openapi.json").json()
    paths = set(spec["paths"])
    for route in ("/api/check", "/api/predict", "/api/runs", "/api/runs/{run_id}", "/api/runs/{run_id}/stream",
                  "/api/runs/{run_id}/stop", "/api/datasets/{name}/stats", "/api/layers", "/api/presets"):
        assert route in paths
    assert client.get("/docs").status_code == 200


# ----------------------------------------------------------------------------- catalogue


def test_meta_and_catalogues(client):
    meta = client.get("/api/meta").json()
    kinds = {k["kind"]: k for k in meta["layers"]}
    units = next(p for p in kinds["fc"]["params"] if p["name"] == "units")
    assert units["type"] == "integer" and units["ge"] == 1 and units["default"] == 10
    assert meta["optimizers"]["params"]["sgd"] == ["lr", "weight_decay"]
    assert "beta1" in meta["optimizers"]["params"]["adam"]
    lr = next(f for f in meta["train_fields"] if f["name"] == "lr")
    assert lr["gt"] == 0 and lr["default"] == 0.1
    names = {d["name"]: d for d in meta["datasets"]}
    assert names["fashion-mnist"]["images"] and names["fashion-mnist"]["num_classes"] == 10
    assert names["digits"]["available"] is True
    presets = {p["name"]: p for p in meta["presets"]}
    assert presets["mnist-conv"]["valid"] and presets["mnist-conv"]["spec"]["model"]
    assert client.get("/api/layers").json() == meta["layers"]
    assert client.get("/api/presets/fc10-relu-fc10").json()["spec"]["model"][0] == "flatten"
    assert_4xx(client.get("/api/presets/nope"), 404, "unknown preset")
    assert len(client.get("/api/inits").json()) >= 5
    assert client.get("/api/optimizers").json()["names"][0] == "sgd"
    assert client.get("/api/datasets/digits").json()["input_shape"] == [1, 8, 8]
    assert_4xx(client.get("/api/datasets/nope"), 404, "unknown data set")


def test_dataset_stats(client):
    out = client.get("/api/datasets/digits/stats").json()
    stats = out["stats"]
    assert stats["counts"] == {"train": 1438, "test": 359}
    assert stats["input_shape"] == [1, 8, 8] and stats["label_shape"] == []
    assert stats["pixel_range"] == [0.0, 16.0]
    assert sum(stats["class_balance"]["train"].values()) == 1438
    sub = client.get("/api/datasets/digits/stats?train_size=100&test_size=50").json()["stats"]
    assert sub["counts"] == {"train": 100, "test": 50}
    assert_4xx(client.get("/api/datasets/digits/stats?train_size=999999"), 400, "train_size")
    assert_4xx(client.get("/api/datasets/digits/stats?train_size=0"), 422)
    assert_4xx(client.get("/api/datasets/nope/stats"), 404)


def _png_size(data: bytes) -> tuple[int, int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    w, h, depth, color = struct.unpack(">IIBB", data[16:26])
    return w, h, color


def test_png_encoder_round_trip():
    import numpy as np
    img = np.arange(12, dtype=np.uint8).reshape(3, 4)
    data = png_bytes(img)
    assert _png_size(data) == (4, 3, 0)
    idat = data[data.index(b"IDAT") + 4:]
    raw = zlib.decompress(idat[: struct.unpack(">I", data[data.index(b"IDAT") - 4:data.index(b"IDAT")])[0]])
    rows = [raw[i * 5 + 1:(i + 1) * 5] for i in range(3)]  # filter byte + 4 pixels per row
    assert b"".join(rows) == img.tobytes()
    assert _png_size(png_bytes(np.zeros((2, 2, 3), np.uint8))) == (2, 2, 2)


def test_dataset_images(client):
    resp = client.get("/api/datasets/digits/images/3.png")
    assert resp.status_code == 200 and resp.headers["content-type"] == "image/png"
    assert _png_size(resp.content) == (8, 8, 0)
    assert "max-age" in resp.headers["cache-control"]
    assert_4xx(client.get("/api/datasets/digits/images/359.png"), 400, "out of range")
    assert_4xx(client.get("/api/datasets/digits/images/-1.png"), 422)
    assert_4xx(client.get("/api/datasets/circle/images/0.png"), 400, "no images")


# ----------------------------------------------------------------------------- check and predict


def test_check_rows_and_problems(client):
    ok = client.post("/api/check", json=TINY).json()
    assert ok["valid"] and [r["output_shape"] for r in ok["layers"]] == [[64], [10]]
    assert ok["total_params"] == 650
    bad = client.post("/api/check", json={**TINY, "model": [{"fc": {"units": 10}}]}).json()
    assert not bad["valid"]
    (p,) = bad["problems"]
    assert p["layer"] == 0 and "flat input" in p["message"] and p["hint"] == "add flatten before layer 1"
    empty = client.post("/api/check", json={**TINY, "model": []}).json()
    assert "no layers" in empty["problems"][0]["message"]
    field = client.post("/api/check", json={**TINY, "train": {"lr": -1}}).json()
    assert field["problems"][0]["field"] == "train.lr" and "must be > 0" in field["problems"][0]["message"]


def test_check_says_a_data_set_is_not_here_as_train_would(client, tmp_path, monkeypatch):
    """Before: 'mnist (not downloaded)' passed as a valid model, and the run failed later."""
    monkeypatch.setenv("LAYERLAB_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    spec = {**TINY, "data": {"dataset": "mnist"}}
    verdict = client.post("/api/check", json=spec).json()
    assert verdict["valid"] is False and [r["status"] for r in verdict["layers"]] == ["ok", "ok"]
    (p,) = verdict["problems"]
    assert (p["category"], p["field"], p["hint"]) == (
        "data", "data.dataset", "fetch it with `layerlab data fetch mnist`, or pick a data set from `layerlab data list`")
    refused = assert_4xx(client.post("/api/runs", json={"spec": spec}), 409, "not on this machine")
    assert refused["error"] == "DataUnavailable" and refused["problems"] == verdict["problems"]
    assert_4xx(client.post("/api/predict", json=spec), 409, "not on this machine")


def test_check_never_reads_a_path_or_errors(client):
    for body in ("/etc/passwd", "fc10-relu-fc10", [1, 2], 3, {"model": "preset/../../etc"}, {"model": [{}]},
                 {"model": [{"fc": {"units": "ten"}}]}, {"data": "x", "model": 5, "train": []}):
        resp = client.post("/api/check", json=body)
        assert resp.status_code == 200, (body, resp.text)
        assert resp.json()["valid"] is False and resp.json()["problems"]
    assert_4xx(client.post("/api/check", content=b"{not json", headers={"content-type": "application/json"}), 422)
    assert_4xx(client.post("/api/check", headers=ACT), 422, "required")


def test_check_is_fast_enough_for_every_keystroke(client):
    spec = {**TINY, "data": {"dataset": "fashion-mnist"}, "model": "preset/mnist-conv"}
    client.post("/api/check", json=spec)
    t0 = time.perf_counter()
    for _ in range(20):
        assert client.post("/api/check", json=spec).json()["valid"]
    assert (time.perf_counter() - t0) / 20 < 0.05


def test_predict_random_weights(client):
    out = client.post("/api/predict", json=TINY).json()
    assert out["task"] == "classification" and out["classes"][0] == "0" and out["step"] == 0
    assert len(out["predictions"]) == 20
    first = out["predictions"][0]
    assert set(first) == {"index", "label", "top", "correct"} and len(first["top"]) == 3
    assert out["image_url"] == "/api/datasets/digits/images/{index}.png"
    again = client.post("/api/predict", json=TINY).json()
    assert again["predictions"] == out["predictions"]  # seeded: the same random weights
    reseeded = client.post("/api/predict", json={**TINY, "train": {**TINY["train"], "seed": 7}}).json()
    assert reseeded["predictions"] != out["predictions"]
    body = assert_4xx(client.post("/api/predict", json={**TINY, "model": ["fc"]}), 400, "flat input")
    assert body["problems"][0]["layer"] == 0
    assert_4xx(client.post("/api/predict", json="/etc/passwd"), 400)


# ----------------------------------------------------------------------------- spec files


def test_spec_parse_and_export(client):
    text = "name: up\ndata: {dataset: digits}\nmodel:\n  - flatten\n  - fc: {units: 10}\n"
    out = client.post("/api/spec/parse", json={"text": text, "filename": "x.yaml"}).json()
    assert out["spec"]["model"] == ["flatten", {"fc": {"units": 10}}] and out["check"]["valid"]
    js = client.post("/api/spec/parse", json={"text": json.dumps(TINY), "filename": "x.json"}).json()
    assert js["spec"] == TINY
    assert_4xx(client.post("/api/spec/parse", json={"text": "!!python/object/apply:os.system ['echo hi']"}),
               400, "invalid YAML")
    assert_4xx(client.post("/api/spec/parse", json={"text": "[1, 2]"}), 400, "mapping")
    assert_4xx(client.post("/api/spec/parse", json={"text": "{bad", "format": "json"}), 400, "invalid JSON")
    assert_4xx(client.post("/api/spec/parse", json={"text": "a: .nan"}), 400, "finite")
    assert_4xx(client.post("/api/spec/parse", json={"text": "x", "path": "/etc/passwd"}), 422, "path")
    yml = client.post("/api/spec/export", json={"spec": TINY, "format": "yaml"})
    assert yml.headers["content-disposition"] == 'attachment; filename="tiny.yaml"'
    back = client.post("/api/spec/parse", json={"text": yml.text}).json()["spec"]
    assert back == TINY
    evil = client.post("/api/spec/export", json={"spec": {**TINY, "name": "../../etc/x\"y"}, "format": "json"})
    assert evil.headers["content-disposition"] == 'attachment; filename="..-..-etc-x-y.json"'
    assert json.loads(evil.text)["model"] == TINY["model"]


# ----------------------------------------------------------------------------- runs


def test_run_lifecycle_through_a_worker(client, store):
    created = client.post("/api/runs", json={"spec": TINY, "name": "first"})
    assert created.status_code == 201
    run_id = created.json()["id"]
    assert created.json()["status"] == "queued" and created.json()["name"] == "first"
    run = wait_status(client, run_id)
    assert run["status"] == "finished", run
    assert run["results"]["confusion"]["classes"][0] == "0" and len(run["results"]["worst"]) == 10
    assert run["spec"]["model"] == ["flatten", {"fc": {"units": 10, "bias": True}}]
    assert run["pid"] != client.get("/api/health").json().get("pid", -1)

    listed = client.get("/api/runs").json()["runs"]
    assert [r["id"] for r in listed] == [run_id] and listed[0]["best_test_accuracy"] > 0.5
    assert listed[0]["duration_s"] > 0
    assert client.get("/api/runs?status=finished&dataset=digits&search=fir").json()["runs"][0]["id"] == run_id
    assert client.get("/api/runs?status=running").json()["runs"] == []
    assert client.get("/api/runs?search=zzz").json()["runs"] == []

    series = client.get(f"/api/runs/{run_id}/series").json()["series"]
    assert series["test_accuracy"][-1][0] == 2000 and len(series["cost"]) > 3
    rows = client.get(f"/api/runs/{run_id}/metrics?names=cost&after_id=0&limit=2").json()
    assert len(rows["rows"]) == 2 and rows["last_id"] == rows["rows"][-1]["id"]
    more = client.get(f"/api/runs/{run_id}/metrics?names=cost&after_id={rows['last_id']}").json()["rows"]
    assert all(r["id"] > rows["last_id"] for r in more)
    events = client.get(f"/api/runs/{run_id}/events?kinds=status").json()["events"]
    assert [e["payload"]["status"] for e in events] == ["queued", "running", "finished"]
    preds = client.get(f"/api/runs/{run_id}/predictions").json()
    assert preds["snapshots"] >= 2 and len(preds["latest"]["predictions"]) == 20
    assert preds["latest"]["examples"] == 2000
    img = client.get(f"/api/runs/{run_id}/images/0.png")
    assert img.status_code == 200 and _png_size(img.content) == (8, 8, 0)

    renamed = client.patch(f"/api/runs/{run_id}", json={"name": "renamed"}).json()
    assert renamed["name"] == "renamed"
    assert_4xx(client.patch(f"/api/runs/{run_id}", json={"name": ""}), 422)
    assert_4xx(client.post(f"/api/runs/{run_id}/stop", headers=ACT), 409, "not running")
    assert_4xx(client.post(f"/api/runs/{run_id}/resume", headers=ACT), 409, "only interrupted or stopped")
    assert client.delete(f"/api/runs/{run_id}", headers=ACT).status_code == 204
    assert_4xx(client.get(f"/api/runs/{run_id}"), 404, "not found")
    assert_4xx(client.delete(f"/api/runs/{run_id}", headers=ACT), 404)
    assert_4xx(client.post(f"/api/runs/{run_id}/resume", headers=ACT), 404)


def test_create_run_rejects_bad_specs(client):
    body = assert_4xx(client.post("/api/runs", json={"spec": {**TINY, "model": ["fc"]}}), 400, "flat input")
    assert body["problems"][0]["hint"] == "add flatten before layer 1"
    assert_4xx(client.post("/api/runs", json={"spec": {**TINY, "train": {"lr": 0}}}), 400, "train.lr")
    assert_4xx(client.post("/api/runs", json={"spec": "preset/mnist-conv"}), 422, "spec")
    assert_4xx(client.post("/api/runs", json={"spec": TINY, "extra": 1}), 422, "extra")
    assert_4xx(client.post("/api/runs", json={"spec": TINY, "name": "x" * 201}), 422, "name")
    assert client.get("/api/runs").json()["runs"] == []


@pytest.mark.parametrize("method,path", [
    ("get", "/api/runs/abc"), ("get", "/api/runs/0"), ("get", "/api/runs/-3"), ("get", "/api/runs/99999999999999999999999"),
    ("get", "/api/runs/5"), ("get", "/api/runs/5/stream"), ("get", "/api/runs/5/series"), ("get", "/api/runs/5/metrics"),
    ("get", "/api/runs/5/events"), ("get", "/api/runs/5/predictions"), ("get", "/api/runs/5/images/0.png"),
    ("post", "/api/runs/5/stop"), ("post", "/api/runs/5/resume"), ("delete", "/api/runs/5"),
    ("get", "/api/runs?status=bogus"), ("get", "/api/runs?limit=0"), ("get", "/api/runs/5/metrics?after_id=-1"),
])
def test_bad_run_requests_are_4xx(client, method, path):
    resp = assert_4xx(getattr(client, method)(path, headers=ACT), None)
    assert "refused" not in resp["detail"]  # the request itself is wrong, not where it came from


def test_a_subset_larger_than_the_split_is_refused_before_a_run_exists(client):
    spec = {**TINY, "data": {"dataset": "digits", "test_size": 999999}}
    body = assert_4xx(client.post("/api/runs", json={"spec": spec}), 400, "test_size")
    assert [(p["field"], p["hint"]) for p in body["problems"]] == [
        ("data.test_size", "set test_size to 359 or less, or leave it out for the whole split")]
    assert client.get("/api/runs").json()["runs"] == []


def test_a_run_failing_at_data_load_is_marked_failed(client, tmp_path, monkeypatch):
    """Files that are there (so the run is accepted) but broken fail in the worker, and say why."""
    monkeypatch.setenv("LAYERLAB_DATA", str(tmp_path / "data"))  # the worker process inherits it
    (tmp_path / "data" / "mnist").mkdir(parents=True)
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                 "t10k-labels-idx1-ubyte.gz"):
        (tmp_path / "data" / "mnist" / name).write_bytes(b"not the real file")
    spec = {**TINY, "data": {"dataset": "mnist"}, "model": ["flatten", {"fc": {"units": 10}}]}
    run_id = client.post("/api/runs", json={"spec": spec}).json()["id"]
    run = wait_status(client, run_id)
    assert run["status"] == "failed" and "mnist/train-images-idx3-ubyte.gz" in run["error"], run["error"]


@pytest.mark.slow  # a worker process trains for several seconds
def test_pool_limits_concurrency_and_queued_runs_can_stop(client):
    slow = {**TINY, "train": {"examples": 10_000_000, "batch_size": 16}}
    first = client.post("/api/runs", json={"spec": slow}).json()["id"]
    second = client.post("/api/runs", json={"spec": TINY}).json()["id"]
    wait_status(client, first, statuses=("running",))
    listed = {r["id"]: r for r in client.get("/api/runs").json()["runs"]}
    assert listed[second]["status"] == "queued" and listed[second]["queue_position"] == 1
    assert client.get("/api/health").json()["pool"] == {"workers": 1, "running": [first], "queued": [second]}
    assert client.post(f"/api/runs/{second}/stop", headers=ACT).json()["status"] == "stopped"
    assert_4xx(client.delete(f"/api/runs/{first}", headers=ACT), 409, "running")
    assert_4xx(client.post(f"/api/runs/{first}/resume", headers=ACT), 409, "only interrupted or stopped")
    client.post(f"/api/runs/{first}/stop", headers=ACT)
    stopped = wait_status(client, first)
    assert stopped["status"] == "stopped"
    # Resume: a worker continues the stopped run from its checkpoint; asked twice, it is queued once.
    resumed = client.post(f"/api/runs/{first}/resume", headers=ACT)
    assert resumed.status_code == 200 and resumed.json()["status"] == "stopped", resumed.text
    twice = assert_4xx(client.post(f"/api/runs/{first}/resume", headers=ACT), 409)["detail"]
    assert "already" in twice or "is running" in twice, twice  # a warm worker may have started it by now
    again = wait_status(client, first, statuses=("running",))
    assert again["started_at"] > stopped["started_at"]
    client.post(f"/api/runs/{first}/stop", headers=ACT)
    assert wait_status(client, first)["status"] == "stopped"
    wait_for("the pool to drain", lambda: client.get("/api/health").json()["pool"]["queued"] == []
             and client.get("/api/health").json()["pool"]["running"] == [])
    assert client.get(f"/api/runs/{second}").json()["status"] == "stopped"
    statuses = [e["payload"]["status"] for e in client.get(f"/api/runs/{second}/events?kinds=status").json()["events"]]
    assert statuses == ["queued", "stopped"]  # the dispatcher skipped it: it never ran
    assert client.get(f"/api/runs/{first}/predictions").json()["latest"] is not None


# ----------------------------------------------------------------------------- guards


def test_token_is_required_everywhere(store):
    app = create_app(store, token="s3cret-token", workers=0)
    with TestClient(app, base_url="http://example.org") as c:
        for path in ("/", "/api/meta", "/api/runs", "/openapi.json", "/api/runs/1/stream"):
            resp = c.get(path)
            assert resp.status_code == 401 and "token" in resp.json()["detail"]
        assert c.post("/api/check", json=TINY).status_code == 401
        assert c.get("/api/meta", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.get("/api/meta", headers={"Authorization": "Bearer s3cret-token"}).status_code == 200
        assert c.post("/api/check", json=TINY, headers={"Authorization": "Bearer s3cret-token"}).json()["valid"]
        page = c.get("/?token=s3cret-token")
        assert page.status_code == 200 and "HttpOnly" in page.headers["set-cookie"]
        assert "SameSite=Strict" in page.headers["set-cookie"]
        # the cookie now carries the token for the page's own GETs (images, scripts, EventSource) ...
        assert c.get("/api/meta").status_code == 200
        # ... but never for writes: those must carry the header or the query token
        assert c.post("/api/check", json=TINY).status_code == 401
        assert c.post("/api/check?token=s3cret-token", json=TINY).status_code == 200
        c.cookies.clear()
        assert c.get("/api/meta?token=wrong").status_code == 401


def test_token_scheme_is_case_insensitive(store):
    """RFC 7235: the auth scheme is a case-insensitive token, so `bearer T` is as good as `Bearer T`."""
    with TestClient(create_app(store, token="s3cret-token", workers=0), base_url="http://example.org") as c:
        for auth in ("Bearer s3cret-token", "bearer s3cret-token", "BEARER s3cret-token", "  beArer   s3cret-token "):
            assert c.get("/api/meta", headers={"Authorization": auth}).status_code == 200, auth
        for auth in ("Basic s3cret-token", "bearer", "bearer wrong", "s3cret-token", "bearers3cret-token"):
            assert c.get("/api/meta", headers={"Authorization": auth}).status_code == 401, auth


# ----------------------------------------------------------------------------- cross-site writes (CSRF)

# Every POST, PUT, PATCH and DELETE is checked, the ones that change nothing included (check,
# predict, spec parse/export): one rule by method leaves no route to forget, and another site
# must not make a visitor's browser spend the server's CPU on models either.
EVIL = {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}
# What another site's page can send without a CORS preflight: a form (three encodings) or a
# fetch(url, {method: 'POST', mode: 'no-cors'}) with a text/plain body or none.
SIMPLE_SHAPES = {
    "text/plain": lambda body: {"content": json.dumps(body).encode(), "headers": {"content-type": "text/plain"}},
    "urlencoded": lambda body: {"content": b"spec=" + json.dumps(body).encode(),
                                "headers": {"content-type": "application/x-www-form-urlencoded"}},
    "multipart": lambda body: {"files": {"spec": ("spec.json", json.dumps(body).encode(), "application/json")}},
    "no body": lambda body: {},
}


def _write_routes(running: int, interrupted: int) -> list[tuple[str, str, object]]:
    return [("POST", f"/api/runs/{running}/stop", None), ("POST", "/api/runs", {"spec": TINY}),
            ("POST", f"/api/runs/{interrupted}/resume", None), ("PATCH", f"/api/runs/{running}", {"name": "pwned"}),
            ("DELETE", f"/api/runs/{interrupted}", None), ("POST", "/api/check", TINY), ("POST", "/api/predict", TINY),
            ("POST", "/api/spec/parse", {"text": "name: x"}), ("POST", "/api/spec/export", {"spec": TINY})]


def _store_state(store) -> list:
    runs = store.list_runs(limit=100)
    return [(r["id"], r["status"], r["name"], r["stop_requested"], len(store.events(r["id"]))) for r in runs]


@pytest.fixture()
def two_runs(store):
    """A run that is running (its 'trainer' is this very process, so it stays alive) and an interrupted one."""
    running = store.create_run(TINY, status="running", name="mine")
    interrupted = store.create_run(TINY, status="running", name="paused")
    store.set_status(interrupted, "interrupted")
    return running, interrupted


@pytest.mark.parametrize("headers", [EVIL, {"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site"},
                                     {"Sec-Fetch-Site": "same-site", "Origin": "http://127.0.0.1:8001"}, {}],
                         ids=["origin+fetch-site", "origin", "fetch-site", "same-site", "old-browser"])
def test_cross_site_writes_of_every_simple_shape_are_refused(client, store, two_runs, headers):
    """Before: a page on any site could POST /api/runs/{id}/stop with no body and stop the user's run."""
    before = _store_state(store)
    for method, path, body in _write_routes(*two_runs):
        for shape, make in SIMPLE_SHAPES.items():
            kwargs = make(body)
            kwargs["headers"] = {**kwargs.get("headers", {}), **headers}
            resp = client.request(method, path, **kwargs)
            assert resp.status_code == 403, (method, path, shape, headers, resp.status_code, resp.text)
            assert "refused" in resp.json()["detail"], resp.text
    assert _store_state(store) == before
    assert client.get("/api/health").json()["pool"]["queued"] == []


def test_cross_site_json_and_custom_header_are_refused_too(client, store, two_runs):
    """A browser sends those only after a CORS preflight (never granted here); refused all the same."""
    running, _ = two_runs
    before = _store_state(store)
    for headers in (EVIL, {**EVIL, **ACT}, {"Origin": "null", **ACT}, {"Origin": "http://127.0.0.1.evil.example", **ACT},
                    {"Origin": "https://127.0.0.1", **ACT}, {"Origin": "http://127.0.0.1:8000", **ACT}):
        resp = client.post(f"/api/runs/{running}/stop", json={}, headers=headers)
        assert resp.status_code == 403, (headers, resp.text)
    detail = client.post(f"/api/runs/{running}/stop", headers=EVIL).json()["detail"]
    assert "another site" in detail and "Sec-Fetch-Site: cross-site" in detail
    assert "another origin" in client.post("/api/check", json=TINY, headers={"Origin": "http://evil.example"}).json()["detail"]
    assert _store_state(store) == before


def test_the_page_and_programs_still_write(client, store, two_runs):
    """The page (same origin, X-Layerlab on every request), curl/httpx (no Origin, JSON or the header)."""
    running, interrupted = two_runs
    page = {"Origin": "http://127.0.0.1", "Sec-Fetch-Site": "same-origin", **ACT}
    assert client.patch(f"/api/runs/{running}", json={"name": "renamed"}, headers=page).json()["name"] == "renamed"
    assert client.post("/api/check", json=TINY, headers={"Sec-Fetch-Site": "same-origin"}).json()["valid"]
    assert client.post("/api/check", json=TINY, headers={"Sec-Fetch-Site": "none"}).json()["valid"]  # typed by the user
    assert client.post("/api/check", json=TINY).json()["valid"]  # a program
    bodiless = client.post(f"/api/runs/{running}/stop")  # a program that forgot the header: told what to send
    assert_4xx(bodiless, 403, "X-Layerlab: 1")
    assert not store.get_run(running)["stop_requested"]
    assert client.post(f"/api/runs/{running}/stop", headers=page).json()["stop_requested"] is True
    assert client.delete(f"/api/runs/{interrupted}", headers=ACT).status_code == 204
    with TestClient(create_app(store, workers=0), base_url="http://localhost:8765") as other:
        own = {"Origin": "http://localhost:8765", "Sec-Fetch-Site": "same-origin"}
        assert other.post("/api/check", json=TINY, headers=own).status_code == 200
        assert other.post("/api/check", json=TINY, headers={"Origin": "http://localhost:8766"}).status_code == 403


def test_every_response_forbids_framing_and_sniffing(store):
    want = {"x-frame-options": "DENY", "content-security-policy": "frame-ancestors 'none'",
            "x-content-type-options": "nosniff"}
    with TestClient(create_app(store, workers=0), base_url="http://127.0.0.1") as c:
        page = c.get("/")
        prefix = re.search(r'src="(/static/[0-9a-f]{12})/js/main.js"', page.text).group(1)
        answers = [page, c.get("/api/meta"), c.get(f"{prefix}/js/main.js"), c.get("/static/x/nope.js"),
                   c.get("/api/runs/99"), c.post("/api/check", json=TINY, headers=EVIL),
                   c.get("/api/health", headers={"Host": "attacker.example"}), c.get("/api/datasets/digits/images/0.png")]
    with TestClient(create_app(store, token="s3cret-token", workers=0), base_url="http://example.org") as c:
        answers.append(c.get("/api/meta"))
    assert [a.status_code for a in answers] == [200, 200, 200, 404, 404, 403, 400, 200, 401]
    for answer in answers:
        assert {k: answer.headers.get(k) for k in want} == want, (answer.request.url, answer.headers)


def test_no_workers_means_runs_come_from_elsewhere(store):
    with TestClient(create_app(store, workers=0), base_url="http://127.0.0.1") as c:
        assert_4xx(c.post("/api/runs", json={"spec": TINY}), 409, "no workers")


def test_host_header_must_be_loopback_without_token(store):
    with TestClient(create_app(store, workers=0), base_url="http://127.0.0.1:8000") as c:
        assert c.get("/api/health").status_code == 200
        assert c.get("/api/health", headers={"Host": "localhost:8000"}).status_code == 200
        assert c.get("/api/health", headers={"Host": "[::1]:8000"}).status_code == 200
        evil = c.get("/api/health", headers={"Host": "attacker.example:8000"})
        assert evil.status_code == 400 and "Host" in evil.json()["detail"]


def test_body_size_limit(client):
    big = {"spec": {**TINY, "pad": "x" * (300 * 1024)}}
    resp = client.post("/api/runs", json=big)
    assert_4xx(resp, 413, "256 KiB")

    def chunks():
        for _ in range(40):
            yield b"x" * 10_000

    streamed = client.post("/api/check", content=chunks(), headers={"content-type": "application/json"})
    assert_4xx(streamed, 413)
    assert client.post("/api/check", json=TINY).status_code == 200


# ----------------------------------------------------------------------------- server-sent events


def parse_sse(text: str) -> list[dict]:
    out = []
    for block in text.split("\n\n"):
        fields = {}
        for line in block.splitlines():
            if line.startswith(":") or ":" not in line:
                continue
            key, _, value = line.partition(":")
            fields[key] = value[1:] if value.startswith(" ") else value
        if "event" in fields:
            out.append({"event": fields["event"], "id": fields.get("id"), "data": json.loads(fields["data"])})
    return out


def fake_trainer(store, run_id, *, steps=6, pause=0.15):
    """Write like a trainer: start, metric rows and prediction events over time, then finish."""
    time.sleep(pause)
    store.start_run(run_id, device="cpu", versions={})
    for step in range(1, steps + 1):
        store.add_metrics(run_id, [("cost", step, step * 64, time.time(), 1.0 / step),
                                   ("train_accuracy", step, step * 64, time.time(), step / (steps + 1))])
        store.add_event(run_id, "prediction", {"step": step, "examples": step * 64, "predictions": [
            {"index": 0, "label": 1, "top": [[1, float("nan")], [0, 0.2], [2, 0.1]], "correct": True}]})
        time.sleep(pause)
    store.set_results(run_id, {"test_accuracy": 0.5, "confusion": {"classes": ["a", "b"], "matrix": [[1, 0], [0, 1]]}})
    store.set_status(run_id, "finished")


@pytest.mark.network
def test_stream_sends_rows_in_order_and_ends_at_final_status(store):
    run_id = store.create_run(TINY, status="queued")
    with LiveServer(store, workers=0, stream_poll=0.05) as server:
        writer = threading.Thread(target=fake_trainer, args=(store, run_id), daemon=True)
        writer.start()
        t0 = time.monotonic()
        arrivals = []
        with httpx.stream("GET", f"{server.url}api/runs/{run_id}/stream", timeout=30) as resp:
            assert resp.headers["content-type"].startswith("text/event-stream")
            text = ""
            for chunk in resp.iter_text():
                text += chunk
                arrivals.append((time.monotonic() - t0, chunk.count("event: metrics")))
        writer.join()
    messages = parse_sse(text)
    kinds = [m["event"] for m in messages]
    assert kinds[0] == "run" and kinds[-1] == "end" and kinds.count("end") == 1
    assert messages[-1]["data"]["status"] == "finished"
    assert messages[-1]["data"]["run"]["results"]["confusion"]["matrix"] == [[1, 0], [0, 1]]
    rows = [r for m in messages if m["event"] == "metrics" for r in m["data"]["rows"]]
    assert len(rows) == 12 and [r["id"] for r in rows] == sorted(r["id"] for r in rows)
    assert [r["examples"] for r in rows if r["name"] == "cost"] == [64 * s for s in range(1, 7)]
    events = [m for m in messages if m["event"] in ("status", "prediction")]
    ids = [m["data"]["id"] for m in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    statuses = [m["data"]["payload"]["status"] for m in messages if m["event"] == "status"]
    assert statuses == ["queued", "running", "finished"]
    assert messages[kinds.index("prediction")]["data"]["payload"]["predictions"][0]["top"][0][1] == "NaN"
    # live: metric messages came in several pieces over time, not all at the end
    assert sum(1 for _, n in arrivals if n) >= 3
    # every message carries the cursor after it; the cursors never go back
    cursors = [parse_cursor(m["id"]) for m in messages]
    assert cursors == sorted(cursors)

    # Reconnecting with Last-Event-ID resumes after that message, and an over run just ends.
    middle = next(i for i, m in enumerate(messages) if m["event"] == "metrics")
    with LiveServer(store, workers=0, stream_poll=0.05) as server:
        resp = httpx.get(f"{server.url}api/runs/{run_id}/stream", headers={"Last-Event-ID": messages[middle]["id"]},
                         timeout=30)
    again = parse_sse(resp.text)
    again_rows = [r for m in again if m["event"] == "metrics" for r in m["data"]["rows"]]
    assert [r["id"] for r in again_rows] == [r["id"] for r in rows if r["id"] > cursors[middle][0]]
    assert again[-1]["event"] == "end"
    assert all(m["data"]["id"] > cursors[middle][1] for m in again if m["event"] in ("status", "prediction"))


@pytest.mark.network
def test_stream_of_a_finished_run_replays_and_ends(client):
    run_id = client.post("/api/runs", json={"spec": TINY}).json()["id"]
    wait_status(client, run_id)
    with client.stream("GET", f"/api/runs/{run_id}/stream") as resp:
        messages = parse_sse("".join(resp.iter_text()))
    kinds = [m["event"] for m in messages]
    assert kinds[0] == "run" and kinds[-1] == "end" and "prediction" in kinds and "metrics" in kinds
    assert messages[-1]["data"]["run"]["results"]["worst"]


def test_parse_cursor():
    assert parse_cursor("12-5") == (12, 5)
    for bad in (None, "", "x", "1-", "-1-2", "1-2-3", "9" * 30 + "-1"):
        assert parse_cursor(bad) == (0, 0)


# ----------------------------------------------------------------------------- the serve command


@pytest.mark.network
@pytest.mark.slow  # starts `layerlab serve` in a subprocess
def test_serve_command_prints_its_url_and_serves(tmp_path):
    db = tmp_path / "serve.db"
    proc = subprocess.Popen([sys.executable, "-m", "layerlab.server", "--port", "0", "--db", str(db), "--workers", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        url = re.search(r"(http://127\.0\.0\.1:\d+/)", line).group(1)
        deadline = time.monotonic() + 20
        while True:
            try:
                health = httpx.get(url + "api/health", timeout=2).json()
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "serve did not answer"
                time.sleep(0.1)
        assert health["ok"] and "serve.db" in health["store"]
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.mark.slow  # starts `layerlab serve` in a subprocess
def test_serve_refuses_public_bind_without_token(tmp_path):
    out = subprocess.run([sys.executable, "-m", "layerlab.server", "--host", "0.0.0.0", "--db", str(tmp_path / "x.db")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "--token" in out.stderr
