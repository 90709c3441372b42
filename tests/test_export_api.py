"""GET /api/runs/{id}/export: the CLI's export files as downloads, and the dashboard's links to them.

One real MLP run on a Fashion-MNIST subset (trained once per module into a real SQLite store)
answers through the real app: each format's body is the file ``layerlab export`` makes, under a
name the PyTorch file expects for its weights; bad requests get 400 / 404 / 409 / 501 with the
reason, and the route is in the OpenAPI with those statuses. In Chromium, a finished run's
dashboard shows the four download links, and each one downloads its file.
"""
from __future__ import annotations

import sys

import pytest
import yaml
from fastapi.testclient import TestClient

from layerlab.data import locate
from layerlab.export import export_files
from layerlab.server import create_app
from layerlab.server.testing import LiveServer
from layerlab.store import Store
from layerlab.train import train

pytestmark = pytest.mark.skipif(locate("fashion-mnist") is None, reason="Fashion-MNIST files are not on this machine")

SPEC = {"name": "api fc", "data": {"dataset": "fashion-mnist", "train_size": 1000, "test_size": 300},
        "model": ["flatten", {"fc": {"units": 16}}, "relu", {"fc": {"units": 10}}], "train": {"epochs": 1}}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    s = Store(tmp_path_factory.mktemp("export-api") / "runs.db")
    yield s
    s.close()


@pytest.fixture(scope="module")
def run_id(store):
    return train(SPEC, store=store).run_id


@pytest.fixture(scope="module")
def client(store):
    with TestClient(create_app(store, workers=0), base_url="http://127.0.0.1") as c:
        yield c


def get(client, run_id, fmt=None):
    return client.get(f"/api/runs/{run_id}/export", params={} if fmt is None else {"format": fmt})


@pytest.mark.parametrize("fmt, media, suffix", [("pytorch", "text/x-python", ".py"),
                                                ("weights", "application/octet-stream", ".safetensors"),
                                                ("spec", "application/yaml", ".yaml")])
def test_each_format_downloads_the_cli_file(client, store, run_id, fmt, media, suffix):
    resp = get(client, run_id, fmt)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].split(";")[0] == media
    name = f"run-{run_id}-api-fc{suffix}"
    assert resp.headers["content-disposition"] == f'attachment; filename="{name}"'
    want = export_files(store, run_id, fmt)[name]
    if fmt == "weights":  # safetensors writes its metadata in hash order: the same file, not the same bytes
        from safetensors.torch import load
        got, expected = load(resp.content), load(want)
        assert got.keys() == expected.keys() and all(got[k].equal(expected[k]) for k in got)
    else:
        assert resp.content == want


def test_pytorch_is_the_default_and_names_the_weights_download(client, run_id):
    py = get(client, run_id)
    assert py.headers["content-disposition"].endswith('.py"')
    weights = get(client, run_id, "weights").headers["content-disposition"].split('filename="')[1].rstrip('"')
    assert f"WEIGHTS = {weights!r}" in py.text  # saved under its offered name, the file finds it
    assert yaml.safe_load(get(client, run_id, "spec").text)["name"] == "api fc"


@pytest.mark.slow
def test_onnx_downloads_an_onnx_model(client, run_id):
    onnx = pytest.importorskip("onnx")
    resp = get(client, run_id, "onnx")
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/onnx"
    model = onnx.load_from_string(resp.content)
    assert [i.name for i in model.graph.input] == ["input"] and [o.name for o in model.graph.output] == ["output"]


def test_bad_requests_get_their_status_and_reason(client, store, run_id, monkeypatch):
    resp = get(client, run_id, "zip")
    assert resp.status_code == 400
    assert resp.json()["detail"] == "unknown export format 'zip': use one of pytorch, weights, onnx, spec"
    resp = get(client, 987654, "pytorch")
    assert resp.status_code == 404 and resp.json() == {"error": "RunNotFound", "detail": "run 987654 not found"}
    queued = store.create_run(SPEC, name="waiting")
    resp = get(client, queued, "weights")
    assert resp.status_code == 409 and f"run {queued} is queued and has no weights stored yet" in resp.json()["detail"]
    assert get(client, queued, "spec").status_code == 200  # a spec needs no weights
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # a server installed without layerlab[onnx]
    resp = get(client, queued + 1000, "onnx")
    assert resp.status_code == 404  # the run is looked up first
    from layerlab.server import api_export
    monkeypatch.setattr(api_export, "_CACHE", type(api_export._CACHE)())  # no cached ONNX of the run
    resp = get(client, run_id, "onnx")
    assert resp.status_code == 501, resp.text
    assert resp.json()["error"] == "ExportUnavailable" and "pip install 'layerlab[onnx]'" in resp.json()["detail"]


def test_the_route_is_in_the_openapi(client):
    op = client.get("/openapi.json").json()["paths"]["/api/runs/{run_id}/export"]["get"]
    assert {"200", "400", "404", "409", "501", "503"} <= set(op["responses"])
    (fmt,) = [p for p in op["parameters"] if p["name"] == "format"]
    assert fmt["schema"]["enum"] == ["pytorch", "weights", "onnx", "spec"]
    assert "Content-Disposition" in op["responses"]["200"]["headers"]
    assert {"text/x-python", "application/octet-stream", "application/onnx", "application/yaml"} \
        <= set(op["responses"]["200"]["content"])


@pytest.mark.browser
@pytest.mark.network
def test_a_finished_runs_dashboard_links_its_exports(store, run_id):
    from browser_helpers import ARGS, CHROMIUM, playwright_api
    expect = playwright_api.expect
    with LiveServer(store, workers=0) as server, playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_context(accept_downloads=True).new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(server.url + f"#/run/{run_id}")
            links = page.locator("#export-bar a")
            expect(links).to_have_count(4, timeout=20_000)
            assert [links.nth(i).get_attribute("data-format") for i in range(4)] == \
                ["pytorch", "weights", "onnx", "spec"]
            for fmt, suffix in (("pytorch", ".py"), ("spec", ".yaml")):
                with page.expect_download() as info:
                    page.locator(f"#export-bar a[data-format='{fmt}']").click()
                download = info.value
                assert download.suggested_filename == f"run-{run_id}-api-fc{suffix}"
                assert open(download.path(), "rb").read() == export_files(store, run_id, fmt)[download.suggested_filename]
            page.goto(server.url)  # the draft: no export links
            expect(page.locator("#export-bar")).to_have_count(0)
            assert not errors, errors
        finally:
            browser.close()
