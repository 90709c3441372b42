"""End to end in a real browser: Debian's Chromium driven by Playwright against a real server.

The server is ``layerlab serve`` without its command line (``LiveServer``: the same app under
uvicorn on a free 127.0.0.1 port) over a temporary SQLite store, with one worker process. The
tests build a model by hand, watch it become valid, train it while the stream fills the charts,
find it on the runs page, and watch a run started from the CLI appear there by itself. They
write docs/screenshots/builder.png and dashboard.png.
"""
from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.network]

SHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"

from browser_helpers import browser, playwright_api, watched_page  # noqa: E402,F401  (browser: a fixture)

from layerlab.data import locate  # noqa: E402
from layerlab.server.testing import LiveServer  # noqa: E402
from layerlab.store import Store  # noqa: E402

FASHION = locate("fashion-mnist") is not None
PERCENT = re.compile(r"^\d+\.\d%$")


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    return tmp_path_factory.mktemp("ui") / "runs.db"


@pytest.fixture(scope="module")
def server(db):
    store = Store(db)
    with LiveServer(store, workers=1) as srv:
        yield srv
    store.close()


@pytest.fixture()
def page(browser):
    with watched_page(browser) as pg:
        yield pg


def layer(page, n: int) -> str:
    return f"#layers li:nth-child({n})"


def test_build_check_train_and_list(server, page):
    expect = playwright_api.expect
    page.goto(server.url)
    dataset = "fashion-mnist" if FASHION else "digits"
    page.select_option("#dataset", dataset)
    if FASHION:
        page.fill("#train-size", "2000")
        page.fill("#test-size", "200")
    expect(page.locator("#dataset-stats")).to_contain_text("Input shape")
    page.select_option("#preset", "")  # Custom (empty)

    # An empty model is invalid, says why, and cannot be trained.
    validity = page.locator("#validity")
    expect(validity).to_have_class(re.compile(r"\bbad\b"))
    expect(validity).to_contain_text("Invalid model")
    expect(validity).to_contain_text("the model has no layers")
    expect(page.locator("#train-btn")).to_be_disabled()

    # An fc straight on the image: the broken layer is marked in place with the fix.
    page.click("#add-layer")
    page.select_option(f"{layer(page, 1)} select.kind", "fc")
    card = page.locator(layer(page, 1))
    expect(card).to_have_class(re.compile(r"\berror\b"))
    expect(card.locator(".card-msg")).to_contain_text("fc needs a flat input")
    expect(card.locator(".card-msg .fix")).to_have_text("add flatten before layer 1")
    expect(validity).to_contain_text("layer 1 (fc)")

    # Fix it: flatten first (inserted with the keyboard and moved up), then fc(10).
    card.focus()
    page.keyboard.press("Insert")
    expect(page.locator("#layers li")).to_have_count(2)
    page.select_option(f"{layer(page, 2)} select.kind", "flatten")
    page.locator(layer(page, 2)).focus()
    page.keyboard.press("Alt+ArrowUp")
    expect(page.locator(f"{layer(page, 1)} select.kind")).to_have_value("flatten")
    page.fill(f"{layer(page, 2)} input[data-field='model[1].fc.units']", "10")
    expect(validity).to_have_class(re.compile(r"\bok\b"))
    expect(validity).to_contain_text("Valid model")
    expect(page.locator(f"{layer(page, 2)} .shape")).to_contain_text("→ 10")
    expect(page.locator(f"{layer(page, 2)} .pcount")).to_have_text("7,850 params" if FASHION else "650 params")
    expect(page.locator("#train-btn")).to_be_enabled()

    # A valid model shows the predictions of its random weights at once.
    expect(page.locator("#pred-grid .pred")).to_have_count(20)
    expect(page.locator("#pred-grid .pred img").first).to_have_js_property("complete", True)
    expect(page.locator("#pred-note")).to_contain_text("untrained")
    assert page.locator("#pred-grid .pred img").first.evaluate("i => i.naturalWidth") > 0

    # A bad hyper-parameter is marked where it is typed; only the optimiser's own ones are shown.
    page.select_option("#optimizer", "sgd")
    expect(page.locator("#opt-params input")).to_have_count(2)  # lr, weight_decay
    page.select_option("#optimizer", "adam")
    expect(page.locator("#opt-params input[data-field='train.beta1']")).to_be_visible()
    page.fill("#opt-params input[data-field='train.lr']", "-1")
    expect(page.locator("#opt-params input[data-field='train.lr']")).to_have_attribute("aria-invalid", "true")
    expect(validity).to_contain_text("must be > 0")
    page.fill("#opt-params input[data-field='train.lr']", "0.01")
    expect(validity).to_have_class(re.compile(r"\bok\b"))
    page.fill("#spec-name", "ui-run")
    page.check("#budget-examples")
    page.fill("#budget-value", "100000")
    page.fill("#batch-size", "8")
    expect(page.locator("#train-btn")).to_be_enabled()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("document.activeElement.blur()")
    page.locator("#model-panel").evaluate("e => e.scrollIntoView({block: 'start'})")
    page.screenshot(path=str(SHOTS / "builder.png"))

    # Train: the stream moves the counters and fills the charts while the run is running.
    page.click("#train-btn")
    expect(page).to_have_url(f"{server.url}#/run/1")
    expect(page.locator("#run-title")).to_have_text("ui-run")
    seen, points_seen = set(), set()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = page.locator("#run-status").text_content()
        if status == "running":
            seen.add(page.locator("#c-examples").text_content())
            points_seen.add(page.evaluate("document.querySelector('#chart-accuracy').data[0].x.length"))
        if status in ("finished", "failed", "diverged"):
            break
        time.sleep(0.1)
    assert status == "finished", status
    assert seen - {"0", "100,000"}, f"the counter did not move while running: {seen}"
    assert len(points_seen - {0}) >= 1, f"the accuracy chart did not grow while running: {points_seen}"
    expect(page.locator("#c-examples")).to_have_text("100,000")
    points = page.evaluate("document.querySelector('#chart-accuracy').data.map(t => t.x.length)")
    assert points[0] > 5 and points[1] >= 2, points  # train and test accuracy curves
    assert page.evaluate("document.querySelector('#chart-speed').data[0].x.length") > 5
    expect(page.locator("#c-test")).to_have_text(PERCENT)
    expect(page.locator("#c-latency")).to_contain_text("ms")
    expect(page.locator("#pred-note")).to_contain_text("after 100,000 examples")
    expect(page.locator("#results")).to_be_visible()
    expect(page.locator("#worst .w")).to_have_count(10)
    assert page.evaluate("document.querySelector('#chart-confusion').data[0].z.length") == 10
    expect(page.locator("#stop-btn")).to_be_disabled()
    page.locator(".col-dash").evaluate("e => e.scrollTo(0, 0)")
    page.screenshot(path=str(SHOTS / "dashboard.png"))

    # The runs page lists it; opening it again replays the stream.
    page.click(".tabs a[data-page='runs']")
    row = page.locator("#runs-body tr[data-id='1']")
    expect(row).to_contain_text("ui-run")
    expect(row).to_contain_text("finished")
    expect(row).to_contain_text("100,000")


def test_cli_run_appears_live_and_compares(server, page, db, tmp_path):
    expect = playwright_api.expect
    page.goto(server.url + "#/runs")
    expect(page.locator("#runs-count")).to_contain_text("run")
    spec = tmp_path / "cli.yaml"
    spec.write_text("name: from-cli\ndata: {dataset: digits}\nmodel: [flatten, {fc: {units: 32}}, relu, {fc: {units: 10}}]\n"
                    "train: {examples: 5000000, batch_size: 16, optimizer: sgd, lr: 0.05}\n")  # far more than the test waits: it must be stopped, not finish
    layerlab = Path(sys.executable).with_name("layerlab")
    proc = subprocess.Popen([str(layerlab), "train", str(spec), "--db", str(db)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        row = page.locator("#runs-body tr", has_text="from-cli")
        expect(row).to_be_visible(timeout=60_000)  # appears without a reload: the list is live
        run_id = row.get_attribute("data-id")
        expect(row.locator(".status-badge")).to_have_text("running", timeout=60_000)
        row.locator("a", has_text="Open").click()
        expect(page.locator("#run-title")).to_have_text("from-cli")
        expect(page.locator("#run-status")).to_have_text("running")
        # its builder shows the CLI's spec
        expect(page.locator("#layers li")).to_have_count(4)
        before = int(page.locator("#c-examples").text_content().replace(",", ""))
        expect(page.locator("#c-examples")).not_to_have_text(f"{before:,}", timeout=30_000)
        page.click("#stop-btn")
        expect(page.locator("#run-status")).to_have_text("stopped", timeout=60_000)
        expect(page.locator("#banner")).to_contain_text("Stopped")
        assert proc.wait(timeout=60) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    # Compare both runs on shared axes.
    page.click(".tabs a[data-page='runs']")
    page.locator(f"#runs-body tr[data-id='{run_id}'] input.run-check").check()
    page.locator("#runs-body tr[data-id='1'] input.run-check").check()
    expect(page.locator("#compare-note")).to_contain_text("2 runs")
    page.wait_for_function("document.querySelector('#chart-compare').data?.length === 2")
    # Rename inline, with the keyboard.
    page.locator(f"#runs-body tr[data-id='{run_id}'] button", has_text="Rename").click()
    expect(page.locator("input.rename")).to_be_focused()
    page.keyboard.press("Control+a")
    page.keyboard.type("cli renamed")
    page.keyboard.press("Enter")
    expect(page.locator(f"#runs-body tr[data-id='{run_id}']")).to_contain_text("cli renamed")


def test_diverged_run_shows_a_banner_and_nan_prints_truthfully(server, page):
    import httpx
    spec = {"name": "too-hot", "data": {"dataset": "digits"}, "model": ["flatten", {"fc": {"units": 10}}],
            "train": {"optimizer": "sgd", "lr": 1e6, "examples": 3000}}
    run = httpx.post(server.url + "api/runs", json={"spec": spec}).json()
    expect = playwright_api.expect
    page.goto(f"{server.url}#/run/{run['id']}")
    expect(page.locator("#run-status")).to_have_text("diverged", timeout=60_000)
    banner = page.locator("#banner")
    expect(banner).to_contain_text("Training diverged")
    expect(banner).to_contain_text("learning rate")
    prefix = page.evaluate("document.querySelector('script[type=module]').src.replace(/js\\/main.js$/, '')")
    shown = page.evaluate(f"import('{prefix}js/format.js').then(m => [m.pct('NaN'), m.pct(0.1234), m.pct(null)])")
    assert shown == ["NaN%", "12.3%", "—"]
    # a prediction payload with NaN probabilities renders as NaN%, not 0%
    html = page.evaluate(f"""import('{prefix}js/predictions.js').then(m => {{
        const grid = document.createElement('div');
        m.renderPredictions(grid, {{task: 'classification', classes: ['a', 'b', 'c'], predictions: [
            {{index: 0, label: 1, top: [[1, 'NaN'], [0, 'NaN'], [2, 'NaN']], correct: true}}]}}, null);
        return grid.textContent; }})""")
    assert html.count("NaN%") == 3
