"""Inside the network, in a real browser: click a test image of a trained mnist-conv run and see every layer.

A tiny mnist-conv run (Fashion-MNIST, 500 training and 100 test examples) is trained into a
real SQLite store; Debian's Chromium opens its dashboard on a real server, a click (and the
keyboard) on an example of the predictions grid opens one panel per layer whose shapes are the
shape checker's, with feature maps, bars and filters drawn. Writes docs/screenshots/activations.png.
"""
from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

pytestmark = [pytest.mark.browser, pytest.mark.network, pytest.mark.slow]

from browser_helpers import browser, playwright_api, watched_page  # noqa: E402,F401  (browser: a fixture)

from layerlab.data import locate  # noqa: E402
from layerlab.presets import preset_data  # noqa: E402
from layerlab.server.testing import LiveServer  # noqa: E402
from layerlab.shapes import check  # noqa: E402
from layerlab.store import Store  # noqa: E402
from layerlab.train import train  # noqa: E402

SHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"

if locate("fashion-mnist") is None:  # pragma: no cover - the data sets are on the test machines
    pytest.skip("Fashion-MNIST files are not on this machine", allow_module_level=True)


def shape_text(shape) -> str:
    """As format.js writes a shape: 8×28×28, or 10 for a flat one."""
    return "×".join(map(str, shape))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("act-ui") / "runs.db")
    spec = preset_data("mnist-conv")
    spec["name"] = "conv-tiny"
    spec["data"].update(train_size=500, test_size=100)
    train(spec, store=store)
    with LiveServer(store, workers=0) as srv:
        yield srv
    store.close()


@pytest.fixture()
def page(browser):
    with watched_page(browser) as pg:
        yield pg


def test_click_a_test_image_shows_every_layer(server, page):
    expect = playwright_api.expect
    run = httpx.get(server.url + "api/runs/1").json()
    rows = check(run["spec"]).rows
    page.goto(server.url + "#/run/1")
    expect(page.locator("#run-status")).to_have_text("finished")
    picks = page.locator("#pred-grid .pred-pick")
    expect(picks).to_have_count(20)
    panel = page.locator("#activations")
    expect(panel).to_be_hidden()

    picks.nth(2).click()
    expect(panel).to_be_visible()
    expect(panel.locator("#act-title")).to_have_text("Inside the network — test example 2")
    layers = panel.locator(".act-layer")
    expect(layers).to_have_count(len(rows))
    expect(panel.locator(".act-shape")).to_have_text([shape_text(r.output_shape) for r in rows])
    kinds = [layer.kind for layer in rows]
    for n, (row, kind) in enumerate(zip(rows, kinds)):
        card = layers.nth(n)
        expect(card.locator(".act-head b")).to_have_text(f"layer {n + 1} · {kind}")
        expect(card.locator(".act-range")).to_have_text(re.compile(r"^min -?\d+\.\d{3} · max -?\d+\.\d{3}$"))
        if len(row.output_shape) == 3:
            expect(card.locator("img.act-map")).to_have_count(min(row.output_shape[0], 16))
            natural = card.locator("img.act-map").first.evaluate("i => [i.naturalWidth, i.naturalHeight]")
            assert natural == [row.output_shape[2], row.output_shape[1]], (kind, natural)
        else:
            bars = card.locator(".act-bars")
            expect(bars.locator(".main-svg").first).to_be_attached()
            assert bars.evaluate("d => d.data[0].y.length") == row.output_shape[0]
    # conv layers show their filters: 8 of 1x5x5, then 16 of 8x5x5 (inputs side by side)
    expect(layers.nth(0).locator("img.act-filter")).to_have_count(8)
    expect(layers.nth(3).locator("img.act-filter")).to_have_count(16)
    assert layers.nth(3).locator("img.act-filter").first.evaluate("i => [i.naturalWidth, i.naturalHeight]") == [47, 5]
    expect(layers.nth(1).locator("img.act-filter")).to_have_count(0)
    expect(panel.locator(".act-note")).to_contain_text("final weights after 500 examples")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1440, "height": 2600})  # the whole panel inside the dashboard's scroll box
    panel.evaluate("e => e.scrollIntoView({block: 'start'})")
    panel.screenshot(path=str(SHOTS / "activations.png"))
    page.set_viewport_size({"width": 1440, "height": 1000})

    # The keyboard does the same: the images are buttons in the tab order; Close gives focus back.
    picks.nth(5).focus()
    page.keyboard.press("Enter")
    expect(panel.locator("#act-title")).to_have_text("Inside the network — test example 5")
    expect(panel.locator("#act-title")).to_be_focused()
    expect(layers).to_have_count(len(rows))
    panel.locator(".act-close").click()
    expect(panel).to_be_hidden()
    expect(picks.nth(5)).to_be_focused()


def test_the_untrained_draft_has_no_pickable_images(server, page):
    """Activations are a run's: the builder's draft predictions stay plain images."""
    expect = playwright_api.expect
    page.goto(server.url + "#/builder")
    page.select_option("#dataset", "fashion-mnist")
    page.fill("#train-size", "500")
    page.fill("#test-size", "100")
    page.select_option("#preset", "mnist-conv")
    expect(page.locator("#pred-grid .pred img")).to_have_count(20)
    expect(page.locator("#pred-grid .pred-pick")).to_have_count(0)
