"""The dashboard and the runs page tell the truth (issue 12, findings 1, 2, 4, 6 and 10), in Chromium.

Real runs (Fashion-MNIST subsets, a small fc network) on a live server over a temporary store: a healthy run,
one at lr 10 that finishes at chance with dead ReLUs, and one at lr 1e6 that diverges. Each test reads what the
page shows and compares it with what the API's results say (values, not just presence); 1400x900, and 390x844 for
what this part adds (definitions, the batched line, the scale toggles).
"""
from __future__ import annotations

import math
import re
import time

import httpx
import pytest

pytestmark = [pytest.mark.browser, pytest.mark.network, pytest.mark.slow]

from browser_helpers import browser, playwright_api  # noqa: E402,F401  (browser: a fixture)

from layerlab.data import locate  # noqa: E402
from layerlab.metric_defs import DEFINITIONS  # noqa: E402
from layerlab.server.testing import LiveServer  # noqa: E402
from layerlab.store import Store  # noqa: E402

if locate("fashion-mnist") is None:  # pragma: no cover - the practicum machines have it
    pytest.skip("Fashion-MNIST is not on this machine", allow_module_level=True)

MODEL = ["flatten", {"fc": {"units": 32}}, "relu", {"fc": {"units": 10}}]
DATA = {"dataset": "fashion-mnist", "train_size": 2000, "test_size": 500}
OVER = ("finished", "stopped", "diverged", "failed", "interrupted")
TICK = re.compile(r"^(\d{1,3}(,\d{3})*|\d+(\.\d+)?[kMG])$")  # 0, 2, 1,000, 20k, 1.5M: never 500m


def spec(name: str, **train) -> dict:
    return {"name": name, "data": DATA, "model": MODEL, "train": {"batch_size": 64, "examples": 6000, **train}}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("truth") / "runs.db")
    with LiveServer(store, workers=1) as srv:
        yield srv
    store.close()


def post(server, body: dict) -> int:
    out = httpx.post(server.url + "api/runs", json={"spec": body}, timeout=30)
    assert out.status_code == 201, out.text
    return out.json()["id"]


def wait(server, run_id: int, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = httpx.get(f"{server.url}api/runs/{run_id}", timeout=30).json()
        if run["status"] in OVER:
            return run
        time.sleep(0.3)
    raise AssertionError(f"run {run_id} did not end in {timeout} s")


@pytest.fixture(scope="module")
def runs(server):
    ids = {"healthy": post(server, spec("healthy", optimizer="momentum", lr=0.1)),
           "hot": post(server, spec("lr-10", optimizer="sgd", lr=10)),
           "diverged": post(server, spec("lr-1e6", optimizer="sgd", lr=1e6))}
    return {k: wait(server, i) for k, i in ids.items()}


def new_page(browser, width=1400, height=900):
    context = browser.new_context(viewport={"width": width, "height": height})
    pg = context.new_page()
    pg.errors = []
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    pg.on("console", lambda m: pg.errors.append(m.text) if m.type == "error" else None)
    pg.set_default_timeout(30_000)
    return context, pg


@pytest.fixture()
def page(browser):
    context, pg = new_page(browser)
    yield pg
    context.close()
    assert not pg.errors, pg.errors


def js_format(page, fn: str, *args) -> str:
    """What format.js prints for ``args`` (the page's own formatter, so the test checks the number, not the style)."""
    prefix = page.evaluate("document.querySelector('script[type=module]').src.replace(/js\\/main.js$/, '')")
    return page.evaluate(f"(a) => import('{prefix}js/format.js').then(m => m.{fn}(...a))", list(args))


def open_run(page, server, run_id: int, status_text: str):
    page.goto(f"{server.url}#/run/{run_id}")
    playwright_api.expect(page.locator("#run-status")).to_have_text(status_text, timeout=60_000)
    page.wait_for_function("document.querySelector('#results') && !document.querySelector('#results').hidden || "
                           "document.querySelector('#run-status').textContent === 'diverged'")


def chart(page, el: str) -> dict:
    return page.evaluate(f"""(() => {{ const d = document.getElementById('{el}');
        return {{ names: d.data.map(t => t.name), x: d.data.map(t => t.x), y: d.data.map(t => t.y),
                 ytype: d.layout.yaxis.type, ticks: [...d.querySelectorAll('.xtick text')].map(t => t.textContent),
                 notes: (d.layout.annotations || []).map(a => a.text) }}; }})()""")


# ---------------------------------------------------------------- finding 1 and 2: the counters


def test_counters_show_the_runs_average_and_batch_1_with_definitions(server, runs, page):
    run = runs["healthy"]
    r = run["results"]
    assert run["status"] == "finished" and r["outcome"]["kind"] == "learned"
    open_run(page, server, run["id"], "finished")
    expect = playwright_api.expect
    # Examples / sec is the run's average (RunResults.examples_per_sec), not the last log interval.
    expect(page.locator("#c-speed")).to_have_text(js_format(page, "compact", r["examples_per_sec"]))
    # Inferences / sec is the Model Builder's batch-1 figure, the batched one beside it with its batch size.
    expect(page.locator("#c-infer")).to_have_text(js_format(page, "compact", r["inferences_per_sec_b1"]))
    expect(page.locator("#c-infer-batched")).to_have_text(
        f"batched (batch {r['inference_batch_size']}): {js_format(page, 'compact', r['inferences_per_sec'])}")
    # The chart keeps the interval rate, smoothed by the Model Builder's 0.7 moving average, and says so.
    speed = chart(page, "chart-speed")
    assert "0.7 moving average" in speed["names"][0]
    raw = httpx.get(f"{server.url}api/runs/{run['id']}/series?names=examples_per_sec").json()["series"]["examples_per_sec"]
    ema = None
    for _, v in raw:
        ema = v if ema is None else 0.7 * ema + 0.3 * v
    assert len(speed["y"][0]) == len(raw) >= 3
    assert speed["y"][0][-1] == pytest.approx(ema, rel=1e-9)
    # The live counter's running average (charts.js RunningRate over the same rows) ends at the run's average: one
    # definition, examples / seconds of training; the last interval alone is a different number.
    prefix = page.evaluate("document.querySelector('script[type=module]').src.replace(/js\\/main.js$/, '')")
    live = page.evaluate(f"(rows) => import('{prefix}js/charts.js').then(m => {{ const r = new m.RunningRate();"
                         f" rows.forEach(([e, v]) => r.push(e, v)); return r.value; }})", raw)
    assert live == pytest.approx(r["examples_per_sec"], rel=1e-6)
    # Every counter has a definition on hover and on keyboard focus, in the words the API serves (docs/metrics.md).
    served = {d["key"]: d["definition"] for d in httpx.get(server.url + "api/metrics").json()}
    assert served == {d.key: d.definition for d in DEFINITIONS}
    infos = page.locator("#counters .def-info")
    assert infos.count() == 7  # six counters and the batched line
    for i in range(infos.count()):
        info = infos.nth(i)
        key = info.get_attribute("data-def")
        tip = page.locator(f"#{info.get_attribute('aria-describedby')}")
        expect(tip).to_have_text(served[key])
        expect(tip).to_be_hidden()
        info.focus()
        expect(tip).to_be_visible()
        assert tip.get_attribute("role") == "tooltip"
        page.locator("#run-title").click()
        expect(tip).to_be_hidden()
        info.hover()
        expect(tip).to_be_visible()
        box = tip.bounding_box()
        assert box["x"] + box["width"] <= 1400 + 0.5, key
    page.mouse.move(0, 0)
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")


# ---------------------------------------------------------------- finding 4: failures named by their cause


def test_lr_10_is_failed_to_learn_with_the_cause_and_a_readable_cost_chart(server, runs, page):
    run = runs["hot"]
    r = run["results"]
    assert run["status"] == "finished" and r["outcome"]["kind"] == "failed_to_learn", r["outcome"]
    open_run(page, server, run["id"], "failed to learn")
    expect = playwright_api.expect
    badge = page.locator("#run-status")
    expect(badge).to_have_class(re.compile(r"\bfailed-to-learn\b"))
    assert page.evaluate("getComputedStyle(document.querySelector('#run-status')).color") != \
        page.evaluate("(() => { const s = document.createElement('span'); s.className = 'status-badge finished';"
                      " document.body.append(s); const c = getComputedStyle(s).color; s.remove(); return c; })()")
    banner = page.locator("#banner")
    expect(banner).to_contain_text("Failed to learn")
    expect(banner).to_contain_text(r["outcome"]["text"])
    for words in ("is chance level", "the cost jumped to", "with lr 10", "try lr ≤ 0.5", "dead"):
        expect(banner).to_contain_text(words)
    # The runs list and the CLI say the same (one outcome).
    listed = next(x for x in httpx.get(server.url + "api/runs").json()["runs"] if x["id"] == run["id"])
    assert listed["outcome"] == r["outcome"]
    # The cost chart with a spike of thousands is shown on a log axis (automatically), with a toggle.
    cost = chart(page, "chart-cost")
    costs = [y for y in cost["y"][0] if y is not None]
    assert max(costs) > 100 * sorted(costs)[len(costs) // 2]
    assert cost["ytype"] == "log"
    toggle = page.locator("#chart-cost").locator("xpath=..").locator("input.log-toggle")
    expect(toggle).to_be_checked()
    toggle.uncheck()
    page.wait_for_function("document.getElementById('chart-cost').layout.yaxis.type === 'linear'")
    toggle.check()
    page.wait_for_function("document.getElementById('chart-cost').layout.yaxis.type === 'log'")


def test_a_diverged_run_suggests_a_sensible_lr_and_leaves_no_waiting_placeholders(server, runs, page):
    run = runs["diverged"]
    assert run["status"] == "diverged"
    open_run(page, server, run["id"], "diverged")
    expect = playwright_api.expect
    banner = page.locator("#banner")
    expect(banner).to_contain_text("Training diverged")
    expect(banner).to_contain_text("try lr ≤ 0.5")
    assert "100000" not in banner.text_content()
    page.wait_for_timeout(500)
    for el in ("chart-accuracy", "chart-cost", "chart-speed"):
        c = chart(page, el)
        assert not any("waiting" in n for n in c["notes"]), (el, c["notes"])
        if not any(len(x) for x in c["x"]):  # nothing measured: it says why
            assert c["notes"] and "diverged" in c["notes"][0], (el, c["notes"])
        assert c["ticks"] and all(TICK.match(t) for t in c["ticks"]), (el, c["ticks"])
    assert "Waiting for" not in page.locator("#pred-grid").text_content()


# ---------------------------------------------------------------- finding 10: ticks, columns, best accuracy


def test_x_ticks_are_whole_examples_even_at_step_0(server, runs, page):
    open_run(page, server, runs["hot"]["id"], "failed to learn")
    for el in ("chart-accuracy", "chart-cost", "chart-speed"):
        ticks = chart(page, el)["ticks"]
        assert ticks and all(TICK.match(t) for t in ticks), (el, ticks)
    # Only step 0 measured (x = 0 everywhere): Plotly alone would tick 0, 500m, 1.
    prefix = page.evaluate("document.querySelector('script[type=module]').src.replace(/js\\/main.js$/, '')")
    ticks = page.evaluate(f"""import('{prefix}js/charts.js').then(async (m) => {{
        const d = document.createElement('div'); d.style.width = '400px'; document.body.append(d);
        await Plotly.newPlot(d, [{{x: [0], y: [0.1], type: 'scatter'}}], {{xaxis: m.examplesAxis(0)}});
        const t = [...d.querySelectorAll('.xtick text')].map(e => e.textContent); d.remove(); return t; }})""")
    assert ticks and all(TICK.match(t) for t in ticks), ticks


def test_runs_table_has_optimiser_lr_params_and_the_results_best_accuracy(server, runs, page):
    page.goto(server.url + "#/runs")
    expect = playwright_api.expect
    headers = [h.strip() for h in page.locator(".runs-table thead th").all_text_contents()]
    for name in ("Optimiser", "lr", "Params", "Best test acc."):
        assert name in headers, headers
    col = {name: headers.index(name) + 1 for name in ("Status", "Optimiser", "lr", "Params", "Best test acc.")}
    for key, opt, lr in (("healthy", "momentum", "0.1"), ("hot", "sgd", "10"), ("diverged", "sgd", "1000000")):
        run = runs[key]
        r = run["results"]
        row = page.locator(f"#runs-body tr[data-id='{run['id']}']")
        expect(row.locator(f"td:nth-child({col['Optimiser']})")).to_have_text(opt)
        expect(row.locator(f"td:nth-child({col['lr']})")).to_have_text(lr)
        expect(row.locator(f"td:nth-child({col['Params']})")).to_have_text(js_format(page, "compact", r["params"]))
        expect(row.locator(f"td:nth-child({col['Best test acc.']})")).to_have_text(
            js_format(page, "pct", r["best_test_accuracy"], 2))
        expect(row.locator(f"td:nth-child({col['Status']}) .status-badge")).to_have_text(r["outcome"]["label"])
    # lr 10's best is not the untrained model's step-0 accuracy
    hot = runs["hot"]["results"]
    assert hot["best_test_accuracy"] != hot["step0_test_accuracy"] or hot["best_test_accuracy"] is None


def test_compare_chart_log_scale_keeps_the_other_curves_readable(server, runs, page):
    page.goto(server.url + "#/runs")
    page.select_option("#compare-metric", "cost")
    for key in ("healthy", "hot"):
        page.locator(f"#runs-body tr[data-id='{runs[key]['id']}'] input.run-check").check()
    page.wait_for_function("document.querySelector('#chart-compare').data?.length === 2 && "
                           "document.querySelector('#chart-compare').data.every(t => t.x.length > 0)")
    c = chart(page, "chart-compare")
    assert c["ytype"] == "log"  # the lr-10 spike would flatten the healthy curve on a linear axis
    assert c["ticks"] and all(TICK.match(t) for t in c["ticks"]), c["ticks"]
    toggle = page.locator(".scale-toggle input").last
    playwright_api.expect(toggle).to_be_checked()
    toggle.uncheck()
    page.wait_for_function("document.querySelector('#chart-compare').layout.yaxis.type === 'linear'")


# ---------------------------------------------------------------- finding 6: the compare chart gets the final rows


def test_compare_chart_fetches_the_final_rows_of_a_run_that_finishes(server, runs, page):
    page.goto(server.url + "#/runs")
    page.select_option("#compare-metric", "test_accuracy")  # full-set points: the last one is written at the end
    busy = post(server, spec("busy", optimizer="momentum", lr=0.1, examples=5_000_000))  # holds the one worker
    ticked = post(server, spec("ticked", optimizer="momentum", lr=0.1, examples=8000))
    row = page.locator(f"#runs-body tr[data-id='{ticked}']")
    playwright_api.expect(row).to_be_visible()
    row.locator("input.run-check").check()  # while it waits for the worker
    assert httpx.get(f"{server.url}api/runs/{ticked}").json()["status"] == "queued"
    page.wait_for_function("document.querySelector('#chart-compare').data?.length === 1")
    assert httpx.post(f"{server.url}api/runs/{busy}/stop", headers={"X-Layerlab": "1"}, timeout=30).status_code == 200
    assert wait(server, busy)["status"] == "stopped"
    final = wait(server, ticked)
    want = httpx.get(f"{server.url}api/runs/{ticked}/series?names=test_accuracy").json()["series"]["test_accuracy"]
    assert final["status"] == "finished" and len(want) >= 2
    page.wait_for_function(f"document.querySelector('#chart-compare').data?.[0]?.x.length === {len(want)}",
                           timeout=15_000)
    shown = chart(page, "chart-compare")
    assert shown["x"][0] == [p[0] for p in want]
    assert shown["y"][0][-1] == pytest.approx(want[-1][1])


# ---------------------------------------------------------------- 390x844: what this part adds stays on screen


def test_what_this_part_adds_fits_a_phone(server, runs, browser):
    context, pg = new_page(browser, 390, 844)
    try:
        open_run(pg, server, runs["hot"]["id"], "failed to learn")
        inside = "(el) => { const b = el.getBoundingClientRect(); return b.left >= -0.5 && b.right <= innerWidth + 0.5; }"
        for sel in ("#c-infer-batched", ".scale-toggle", "#banner"):
            assert pg.locator(sel).first.evaluate(inside), sel
        infos = pg.locator("#counters .def-info")
        for i in range(infos.count()):
            info = infos.nth(i)
            info.focus()
            tip = pg.locator(f"#{info.get_attribute('aria-describedby')}")
            playwright_api.expect(tip).to_be_visible()
            assert tip.evaluate(inside), info.get_attribute("data-def")
            assert info.evaluate(inside), info.get_attribute("data-def")
        assert not pg.errors, pg.errors
    finally:
        context.close()
