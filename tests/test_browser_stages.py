"""The dashboard says which stage a starting run is in: queued with its place, then starting,
loading data, evaluating the untrained model, training (src/layerlab/stages.py).

A real server (``LiveServer``, one warm worker) and Debian's Chromium: a long run holds the
worker, a second run waits behind it, and the page that follows the second run records every
text its stage line shows (a MutationObserver keeps each one, however briefly it is shown).
"""
from __future__ import annotations

import time

import httpx
import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

from browser_helpers import browser, playwright_api  # noqa: E402,F401  (browser: a fixture)

from layerlab.server.testing import LiveServer  # noqa: E402
from layerlab.store import Store  # noqa: E402

ACT = {"X-Layerlab": "1"}
LONG = {"data": {"dataset": "digits"}, "model": ["flatten", {"fc": {"units": 10}}],
        "train": {"examples": 10_000_000, "batch_size": 16}}
SHORT = {"data": {"dataset": "digits"}, "model": ["flatten", {"fc": {"units": 32}}, "relu", {"fc": {"units": 10}}],
         "train": {"examples": 3000, "batch_size": 64}}
# Every text the page's stage line shows, in order (text nodes put into .run-stage).
RECORD = """
window.__stages = [];
new MutationObserver((records) => {
  for (const r of records) {
    if (!r.target.classList || !r.target.classList.contains('run-stage')) continue;
    for (const n of r.addedNodes) if (n.nodeType === Node.TEXT_NODE) window.__stages.push(n.textContent);
  }
}).observe(document, { childList: true, subtree: true });
"""


def wait_for(what, predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.1)
    return value


def test_a_starting_run_shows_its_stages(browser, tmp_path):
    expect = playwright_api.expect
    store = Store(tmp_path / "runs.db")
    with LiveServer(store, workers=1) as server, httpx.Client(base_url=server.url, timeout=30) as api:
        pool = server.app.state.pool
        wait_for("the worker to be warm", lambda: pool.warm_workers() == 1)
        blocker = api.post("/api/runs", json={"spec": LONG, "name": "blocker"}).json()["id"]
        wait_for("the blocker to train", lambda: api.get(f"/api/runs/{blocker}").json()["status"] == "running")
        waiting = api.post("/api/runs", json={"spec": SHORT, "name": "waiting"}).json()["id"]

        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.add_init_script(RECORD)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.set_default_timeout(30_000)
        page.goto(f"{server.url}#/run/{waiting}")
        stage = page.locator(".run-stage")
        expect(stage).to_have_text("queued: number 1 in line")
        expect(page.locator("#chart-accuracy .annotation-text")).to_have_text("queued: number 1 in line")

        assert api.post(f"/api/runs/{blocker}/stop", headers=ACT).status_code == 200
        expect(page.locator("#run-status")).to_have_text("finished", timeout=60_000)
        expect(stage).to_be_hidden()  # over: the status says it all
        shown = page.evaluate("window.__stages")
        context.close()
        assert not errors, errors
    store.close()

    steps = [t for i, t in enumerate(shown) if i == 0 or shown[i - 1] != t]
    assert steps == ["queued: number 1 in line", "starting on a warm worker", "data already in memory",
                     "evaluating the untrained model…", "training"], shown
