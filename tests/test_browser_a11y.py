"""Automated accessibility check: axe-core on the builder, a finished run's dashboard and the runs page.

axe-core comes inside the ``axe-playwright-python`` package (its ``axe.min.js``), injected into
the page by Playwright, so the check runs offline. Each page is checked in Debian's Chromium at
the desktop size (1400x900) and a phone's (390x844), against a real server over a temporary
SQLite store holding one run trained for real (tiny: digits, 640 examples). The bar is the
issue's: zero violations of impact "serious" or "critical"; the others are printed.
"""
from __future__ import annotations

import re

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

from browser_helpers import browser, playwright_api  # noqa: E402,F401  (browser: a fixture)

axe_module = pytest.importorskip("axe_playwright_python.sync_playwright")

from layerlab.server.testing import LiveServer  # noqa: E402
from layerlab.store import Store  # noqa: E402

VIEWPORTS = {"desktop": (1400, 900), "phone": (390, 844)}
TINY = {"name": "a11y-run", "data": {"dataset": "digits"}, "model": ["flatten", {"fc": {"units": 32}}, "relu",
                                                                      {"fc": {"units": 10}}],
        "train": {"examples": 640, "batch_size": 32}}
expect = playwright_api.expect


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from layerlab.train import train

    store = Store(tmp_path_factory.mktemp("a11y") / "runs.db")
    train(TINY, store=store)
    with LiveServer(store, workers=0) as srv:
        srv.run_id = store.list_runs(limit=1)[0]["id"]
        yield srv
    store.close()


@pytest.fixture(params=list(VIEWPORTS), ids=list(VIEWPORTS))
def page(request, browser):
    width, height = VIEWPORTS[request.param]
    context = browser.new_context(viewport={"width": width, "height": height})
    pg = context.new_page()
    outside: list[str] = []
    pg.on("request", lambda r: outside.append(r.url) if not r.url.startswith(("http://127.0.0.1", "data:")) else None)
    pg.set_default_timeout(60_000)
    yield pg
    context.close()
    assert outside == [], f"the page or axe reached outside the machine: {outside}"


def serious(page) -> list[str]:
    """axe's violations of impact serious or critical, one line each (rule, impact, first targets)."""
    results = axe_module.Axe().run(page)
    found = []
    for v in results.response["violations"]:
        line = f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes'][:4]]}"
        print(line)
        if v["impact"] in ("serious", "critical"):
            found.append(line)
    assert results.response["testEngine"]["name"] == "axe-core"
    return found


def test_builder(server, page):
    page.goto(server.url)
    page.select_option("#dataset", "digits")
    page.select_option("#preset", "fc100-relu-fc10")
    expect(page.locator("#validity")).to_have_class(re.compile(r"\bok\b"))
    expect(page.locator("#pred-grid .pred")).to_have_count(20, timeout=60_000)  # untrained predictions drawn too
    page.fill("#opt-params input[data-field='train.lr']", "-1")  # and a field marked invalid
    expect(page.locator("#validity")).to_have_class(re.compile(r"\bbad\b"))
    assert serious(page) == []


def test_dashboard_of_a_finished_run(server, page):
    page.goto(f"{server.url}#/run/{server.run_id}")
    expect(page.locator("#run-status")).to_have_text("finished")
    expect(page.locator("#results")).to_be_visible()
    expect(page.locator("#worst .w").first).to_be_visible()
    assert serious(page) == []


def test_runs_page(server, page):
    page.goto(f"{server.url}#/runs")
    row = page.locator(f"#runs-body tr[data-id='{server.run_id}']")
    expect(row).to_contain_text("a11y-run")
    row.locator("input.run-check").check()
    page.wait_for_function("document.querySelector('#chart-compare').data?.length === 1")
    assert serious(page) == []
