"""In a real browser: a small model trains on `spiral` and its decision boundary changes on the dashboard.

Debian's Chromium (Playwright) against a real server with one worker over a temporary SQLite store.
The run is queued over the API, its dashboard followed live (the heatmap's step moves while it
runs), then the step slider shows the first and the last evaluation point: the two heatmaps differ
as images, and the grids the server serves for them differ too. The histograms show one block
per weighted layer. Writes docs/screenshots/boundary.png (README).
"""
from __future__ import annotations

import base64
import io
import re
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

pytestmark = [pytest.mark.browser, pytest.mark.network, pytest.mark.slow]

from browser_helpers import browser, playwright_api, watched_page  # noqa: E402,F401  (browser: a fixture)

from layerlab.server.testing import LiveServer  # noqa: E402
from layerlab.store import Store  # noqa: E402

SHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
SPIRAL = {"name": "spiral-ui", "data": {"dataset": "spiral", "options": {"noise": 0.1}},
          "model": [{"fc": {"units": 32}}, "relu", {"fc": {"units": 32}}, "relu", {"fc": {"units": 32}}, "relu",
                    {"fc": {"units": 2}}],
          "train": {"epochs": 300, "batch_size": 25, "optimizer": "adam", "lr": 0.01}}  # learns it: ~98 %


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("inside") / "runs.db")
    with LiveServer(store, workers=1) as srv:
        yield srv
    store.close()


@pytest.fixture()
def page(browser):
    with watched_page(browser, timeout_ms=30_000) as pg:
        yield pg


def _pixels(png: bytes) -> np.ndarray:
    from PIL import Image
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)


def test_the_spiral_boundary_changes_while_training(server, page):
    expect = playwright_api.expect
    resp = httpx.post(server.url + "api/runs", json={"spec": SPIRAL}, headers={"X-Layerlab": "1"})
    assert resp.status_code == 201, resp.text
    run_id = resp.json()["id"]
    page.goto(f"{server.url}#/run/{run_id}")
    boundary = page.locator("#inside-boundary")
    expect(page.locator("#inside")).to_be_visible()

    steps_seen = set()
    deadline = time.monotonic() + 240
    status = None
    while time.monotonic() < deadline:
        status = httpx.get(server.url + f"api/runs/{run_id}").json()["status"]  # the badge may say an outcome
        step = boundary.get_attribute("data-step")
        if status == "running" and step is not None:
            steps_seen.add(int(step))
        if status not in ("queued", "running"):
            break
        time.sleep(0.1)
    assert status == "finished", status
    final = httpx.get(server.url + f"api/runs/{run_id}/boundary").json()
    expect(boundary).to_have_attribute("data-step", str(final["step"]))
    # live: a heatmap shown while the run trained was replaced by a later one with no reload (on a loaded
    # machine the recorder may store few points in between, so the end counts as the later one)
    assert steps_seen and len(steps_seen | {final["step"]}) >= 2, \
        f"the heatmap did not update while the page was open: {steps_seen}, then {final['step']}"
    assert page.evaluate("document.querySelector('#inside-boundary').data[0].z.length") == final["size"]
    points = page.evaluate("document.querySelector('#inside-boundary').data.slice(1).map(t => t.x.length)")
    assert points == [250, 250], points  # training and test points over the heatmap
    expect(page.locator("#inside-neurons .inside-layer")).to_have_count(2)
    expect(page.locator("#inside-neurons canvas.inside-map")).to_have_count(16 + 16)  # the first 16 of 32 each
    expect(page.locator("#inside-hists .inside-hist-layer")).to_have_count(4)  # fc1 .. fc4
    for what in ("weights", "grads"):  # every layer's ridges are drawn, one per shown evaluation point
        counts = page.evaluate(f"[...document.querySelectorAll('.inside-hist[data-what={what}]')].map(d => d.data?.length || 0)")
        assert len(counts) == 4 and min(counts) >= 2, (what, counts)
    page.locator("#inside").scroll_into_view_if_needed()
    last = boundary.screenshot()

    # The first evaluation point (the untrained model) on the slider: another picture, another grid.
    slider = page.locator("#inside-step")
    expect(slider).to_be_enabled()
    slider.evaluate("s => { s.value = 0; s.dispatchEvent(new Event('input')); }")
    expect(boundary).to_have_attribute("data-step", "0")
    expect(page.locator("#inside-step-label")).to_contain_text("step 0 · 0 examples")
    first = boundary.screenshot()
    a, b = _pixels(first), _pixels(last)
    assert a.shape == b.shape
    changed = (np.abs(a - b).sum(axis=2) > 30).mean()
    assert changed > 0.05, f"only {changed:.1%} of the heatmap's pixels changed between step 0 and the end"
    at0 = httpx.get(server.url + f"api/runs/{run_id}/boundary?step=0").json()
    g0 = np.frombuffer(base64.b64decode(at0["grid"]["data"]), np.uint8).astype(float)
    g1 = np.frombuffer(base64.b64decode(final["grid"]["data"]), np.uint8).astype(float)
    v0 = at0["grid"]["min"] + g0 / 255 * (at0["grid"]["max"] - at0["grid"]["min"])
    v1 = final["grid"]["min"] + g1 / 255 * (final["grid"]["max"] - final["grid"]["min"])
    assert np.abs(v0 - v1).max() > 0.3, "the served grids hardly differ"

    # Back to the latest, and the README's screenshot of the whole view.
    slider.evaluate("s => { s.value = s.max; s.dispatchEvent(new Event('input')); }")
    expect(boundary).to_have_attribute("data-step", str(final["step"]))
    SHOTS.mkdir(parents=True, exist_ok=True)
    box = page.locator("#inside .inside-boundary-box")
    box.evaluate("e => e.scrollIntoView({block: 'center'})")
    box.screenshot(path=str(SHOTS / "boundary.png"))


def test_a_dead_relu_or_divergence_links_to_the_layers_histograms(server, page):
    """SGD at lr 30 kills the ReLUs of a digits MLP (or blows it up): the diagnosis names the layer and its
    button brings that layer's histograms, marked, into view."""
    expect = playwright_api.expect
    spec = {"name": "dead", "data": {"dataset": "digits"},
            "model": ["flatten", {"fc": {"units": 16}}, "relu", {"fc": {"units": 10}}],
            "train": {"epochs": 1, "batch_size": 32, "optimizer": "sgd", "lr": 30.0}}
    run_id = httpx.post(server.url + "api/runs", json={"spec": spec}, headers={"X-Layerlab": "1"}).json()["id"]
    deadline = time.monotonic() + 120
    while httpx.get(server.url + f"api/runs/{run_id}").json()["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, "the run did not end"
        time.sleep(0.2)
    diagnoses = httpx.get(server.url + f"api/runs/{run_id}/histograms").json()["diagnoses"]
    assert diagnoses, "the run was diagnosed with neither dead ReLUs nor a divergence"
    page.goto(f"{server.url}#/run/{run_id}")
    link = page.locator(".inside-diag-link").first
    expect(link).to_have_text(f"show {diagnoses[0]['layer_name']}'s histograms")
    section = page.locator(f"#hist-layer-{diagnoses[0]['layer']}")
    expect(section).to_have_class(re.compile(r"\bflagged\b"))
    link.click()
    expect(section).to_be_in_viewport()
    expect(section.locator(".inside-flag")).to_contain_text("at step")
