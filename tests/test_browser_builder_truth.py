"""Issue 12, part B, in a real browser: the builder tells the truth and works for everyone.

Each test is one finding of the issue, run in Debian's Chromium at the desktop size (1400x900)
and at a phone's (390x844), against a real server (``LiveServer``, in this process) over a
temporary SQLite store: a data set that is not here is invalid and can be downloaded (from a
loopback mirror serving tiny files in the real MNIST format); subsets larger than the split are
invalid; the keyboard keeps its place; bad numbers are named; a draft is never replaced without
an Undo; the phone layout does not scroll sideways; the API docs work offline; names, marks and
live regions are there for screen readers. It also writes docs/screenshots/builder-phone.png.
"""
from __future__ import annotations

import contextlib
import re
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.network]

from browser_helpers import browser, playwright_api  # noqa: E402,F401  (browser: a fixture)
from data_fixtures import _Handler, data_env, patch_entry, refused_url, tiny_mnist_files  # noqa: E402,F401

from layerlab.data import locate  # noqa: E402
from layerlab.server.testing import LiveServer  # noqa: E402
from layerlab.store import Store  # noqa: E402

SHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
FASHION = locate("fashion-mnist") is not None
VIEWPORTS = {"desktop": (1400, 900), "phone": (390, 844)}
expect = playwright_api.expect


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    s = Store(tmp_path_factory.mktemp("truth") / "runs.db")
    yield s
    s.close()


@pytest.fixture(scope="module")
def server(store):
    with LiveServer(store, workers=0) as srv:  # nothing trains here: runs are written to the store directly
        yield srv


def new_page(browser, size, errors):
    width, height = size
    context = browser.new_context(viewport={"width": width, "height": height})
    pg = context.new_page()
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    pg.set_default_timeout(15_000)
    return context, pg


@pytest.fixture(params=list(VIEWPORTS), ids=list(VIEWPORTS))
def page(request, browser):
    errors: list[str] = []
    context, pg = new_page(browser, VIEWPORTS[request.param], errors)
    yield pg
    context.close()
    assert not errors, errors


@pytest.fixture()
def phone(browser):
    errors: list[str] = []
    context, pg = new_page(browser, VIEWPORTS["phone"], errors)
    yield pg
    context.close()
    assert not errors, errors


def card(n: int) -> str:
    return f"#layers li:nth-child({n})"


def start_from(page, url, preset: str, dataset: str = "digits"):
    page.goto(url)
    page.select_option("#dataset", dataset)
    page.select_option("#preset", preset)
    expect(page.locator("#validity")).to_have_class(re.compile(r"\bok\b"))


def finished_run(store, name="seeded", *, status="finished") -> int:
    """A run as the store holds it after training (its metrics written directly: nothing trains here)."""
    spec = {"name": name, "data": {"dataset": "digits"}, "model": ["flatten", {"fc": {"units": 10}}],
            "train": {"examples": 640}}
    run = store.create_run(spec, name=name, status="running")
    now = time.time()
    store.add_metrics(run, [(m, s, s * 64, now, v) for s in (1, 5, 10)
                            for m, v in (("cost", 2.0 / s), ("train_accuracy", 0.1 * s ** 0.5),
                                         ("test_accuracy_subset", 0.09 * s ** 0.5), ("examples_per_sec", 9000.0))])
    if status != "running":
        store.set_status(run, status)
    return run


# ------------------------------------------------------------------ 3: data you can get


class _SlowMirror(_Handler):
    """The loopback mirror, a little slow per file, so the page's progress bar is seen between 0 and 1."""

    delay = 0.3

    def do_GET(self):  # noqa: N802
        time.sleep(self.delay)
        super().do_GET()


@contextlib.contextmanager
def slow_mirror(files):
    handler = type("Mirror", (_SlowMirror,), {"routes": {f"/{n}": (200, b, None) for n, b in files.items()},
                                               "hits": []})
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}/"
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=5)


def test_a_missing_data_set_is_invalid_and_the_page_downloads_it(data_env, monkeypatch, browser, request):
    """The check the CLI uses says the set is not here; Download fetches and verifies it with a progress bar."""
    files = tiny_mnist_files()
    patch_entry(monkeypatch, "mnist", files, mirrors=(refused_url(),))
    errors: list[str] = []
    store = Store(data_env / "runs.db")
    with slow_mirror(files) as mirror, LiveServer(store, workers=0) as srv:
        monkeypatch.setenv("LAYERLAB_MIRRORS", mirror)
        for size in (VIEWPORTS["phone"], VIEWPORTS["desktop"]):  # the desktop page downloads, last
            context, page = new_page(browser, size, errors)
            page.goto(srv.url)
            page.select_option("#dataset", "mnist")
            validity = page.locator("#validity")
            expect(validity).to_have_class(re.compile(r"\bbad\b"))
            expect(validity).to_contain_text("data set 'mnist' is not on this machine")
            expect(validity).to_contain_text("press the Download button below")
            text = validity.inner_text() + page.locator("#data-panel").inner_text()
            assert "download=False" not in text and str(data_env) not in text and "/.cache" not in text
            expect(page.locator("#train-btn")).to_be_disabled()
            expect(page.locator("#dataset-stats")).to_contain_text("not on the server yet")
            button = page.get_by_role("button", name="Download mnist")
            expect(button).to_be_visible()
            if size == VIEWPORTS["desktop"]:
                total = sum(len(b) for b in files.values())
                button.click()
                seen = set()
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline:
                    value = page.evaluate("document.querySelector('#download-progress')?.value ?? null")
                    if value is None:  # done: the box is gone
                        break
                    seen.add(round(float(value), 3))
                    time.sleep(0.05)
                assert any(0 < v < 1 for v in seen), f"the bar never showed progress between 0 and 1: {seen}"
                # done: the same server-side check no longer names the data set, and its statistics load
                expect(page.locator("#download-box")).to_be_hidden()
                expect(validity).not_to_contain_text("mnist")
                expect(page.locator("#dataset option[value='mnist']")).to_have_text("mnist")
                expect(page.locator("#dataset-stats")).to_contain_text("30 train")
                assert sorted(p.name for p in (data_env / "data" / "mnist").iterdir()) == sorted(files)
                assert total == sum((data_env / "data" / "mnist" / n).stat().st_size for n in files)
            else:
                expect(button).to_be_enabled()
            context.close()
    store.close()
    assert not errors, errors


@pytest.mark.skipif(not FASHION, reason="Fashion-MNIST is not installed (dataset-fashion-mnist)")
def test_a_subset_larger_than_the_split_is_invalid(server, page):
    start_from(page, server.url, "linear", dataset="fashion-mnist")
    page.fill("#test-size", "20000")
    validity = page.locator("#validity")
    expect(validity).to_have_class(re.compile(r"\bbad\b"))
    expect(validity).to_contain_text("must be at most 10000 (the test split of fashion-mnist has 10000), got 20000")
    expect(page.locator("#test-size")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#train-btn")).to_be_disabled()
    page.fill("#test-size", "200")
    expect(validity).to_have_class(re.compile(r"\bok\b"))
    expect(page.locator("#train-btn")).to_be_enabled()


# ------------------------------------------------------------------ 5: the keyboard keeps its place


def test_changing_a_kind_keeps_keyboard_focus(server, page):
    page.goto(server.url)
    page.select_option("#dataset", "digits")
    page.click("#add-layer")
    page.click("#add-layer")
    kind = page.locator(f"{card(2)} select.kind")
    kind.focus()
    kind.select_option("relu")
    expect(page.locator(f"{card(2)}")).to_have_attribute("data-kind", "relu")
    expect(page.locator(f"{card(2)} select.kind")).to_be_focused()
    page.keyboard.press("ArrowDown")  # the next kind, straight from the keyboard, focus still there
    expect(page.locator(f"{card(2)}")).not_to_have_attribute("data-kind", "relu")
    expect(page.locator(f"{card(2)} select.kind")).to_be_focused()
    assert page.evaluate("document.activeElement.getAttribute('aria-label')") == "Layer 2 kind"


# ------------------------------------------------------------------ 7: bad numbers are named where they are typed


def test_letters_in_a_number_field_are_named_and_mark_only_their_card(server, page):
    start_from(page, server.url, "fc100-relu-fc10")
    units = page.locator(f"{card(2)} input[data-field='model[1].fc.units']")
    units.fill("abc")
    msg = page.locator(f"{card(2)} .card-msg")
    expect(msg).to_contain_text("units: must be an integer, got 'abc'")
    expect(page.locator("#validity")).to_contain_text("model[1].fc.units: must be an integer, got 'abc'")
    expect(page.locator("#validity")).not_to_contain_text("None")
    expect(units).to_have_attribute("aria-invalid", "true")
    # one bad parameter marks its own card; the valid ones before and after it are not dimmed
    expect(page.locator(card(2))).to_have_class(re.compile(r"\berror\b"))
    expect(page.locator("#layers li.error")).to_have_count(1)
    expect(page.locator("#layers li.unchecked")).to_have_count(0)
    units.fill("")
    expect(msg).to_contain_text("units: must be an integer, got nothing")
    units.fill("100")
    lr = page.locator("#opt-params input[data-field='train.lr']")
    lr.fill("fast")
    expect(page.locator("#validity")).to_contain_text("train.lr: must be a number, got 'fast'")
    expect(lr).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#layers li.error")).to_have_count(0)
    lr.fill("0.05")
    expect(page.locator("#validity")).to_have_class(re.compile(r"\bok\b"))


def test_a_loaded_yaml_with_an_unknown_optimiser_shows_every_problem(server, page):
    page.goto(server.url)
    text = ("name: broken\ndata: {dataset: digits}\nmodel: [flatten, {fc: {units: 0}}]\n"
            "train: {optimizer: adamm, lr: -1}\n")
    page.set_input_files("#load-file", files=[{"name": "broken.yaml", "mimeType": "text/yaml",
                                               "buffer": text.encode()}])
    validity = page.locator("#validity")
    expect(validity).to_contain_text("3 problems")
    expect(validity).to_contain_text("train.optimizer: must be one of")
    expect(validity).to_contain_text("got 'adamm'")
    expect(validity).to_contain_text("train.lr: must be > 0.0, got -1")
    expect(validity).to_contain_text("model[1].fc.units: must be >= 1, got 0")
    expect(page.locator("#optimizer")).to_have_value("adamm")
    expect(page.locator("#opt-params input[data-field='train.lr']")).to_have_value("-1")


# ------------------------------------------------------------------ 9: a draft is not lost without a word


def test_a_preset_replacing_an_edited_draft_offers_undo(server, page):
    start_from(page, server.url, "fc100-relu-fc10")
    page.fill(f"{card(2)} input[data-field='model[1].fc.units']", "77")
    page.select_option("#preset", "linear")
    expect(page.locator("#layers li")).to_have_count(2)
    toast = page.locator("#toast")
    expect(toast).to_contain_text("The model was replaced by the preset linear.")
    toast.get_by_role("button", name="Undo").click()
    expect(page.locator("#layers li")).to_have_count(4)
    expect(page.locator(f"{card(2)} input[data-field='model[1].fc.units']")).to_have_value("77")
    expect(toast).to_be_hidden()


def test_opening_a_run_over_an_edited_draft_offers_undo(server, store, page):
    run = finished_run(store, "to-open")
    start_from(page, server.url, "fc10-relu-fc10")
    page.fill("#spec-name", "my precious draft")
    page.click(".tabs a[data-page='runs']")
    page.locator(f"#runs-body tr[data-id='{run}']").get_by_role("link", name="Open", exact=True).click()
    expect(page.locator("#run-title")).to_have_text("to-open")
    expect(page.locator("#spec-name")).to_have_value("to-open")
    toast = page.locator("#toast")
    expect(toast).to_contain_text(f"Run #{run}'s spec replaced your draft")
    toast.get_by_role("button", name="Undo").click()
    expect(page.locator("#spec-name")).to_have_value("my precious draft")
    expect(page.locator("#layers li")).to_have_count(4)
    expect(page).to_have_url(re.compile(r"#/(builder|spec/[\w-]+)$"))  # the builder, or its share link


def test_editing_during_a_run_keeps_the_drafts_verdict_apart_from_the_runs_charts(server, store, page):
    run = finished_run(store, "still-running", status="running")  # no worker: it stays running
    try:
        page.goto(f"{server.url}#/run/{run}")
        expect(page.locator("#run-status")).to_have_text("running")
        # edit: two linear layers in a row, which the checker warns about
        page.click("#add-layer")
        expect(page.locator(f"{card(3)} select.kind")).to_have_value("fc")
        page.locator(card(3)).locator("input[data-field='model[2].fc.units']").fill("10")
        validity = page.locator("#validity")
        expect(validity).to_have_class(re.compile(r"\bdraft-scope\b"))
        expect(validity).to_contain_text(f"Your edited draft is valid — it is not run #{run}, whose charts are below.")
        expect(page.locator("#layers .wmsg").first).to_be_visible()  # the warning stays on its layer card
        warning = page.locator("#layers .wmsg").first.inner_text().lstrip("⚠ ").split(" — ")[0]
        expect(validity).not_to_contain_text(warning)
        expect(page.locator("#run-title")).to_have_text("still-running")
    finally:
        store.set_status(run, "stopped")  # the module's store is shared: never leave it running


# ------------------------------------------------------------------ 8: phones


def no_sideways_scroll(page) -> None:
    width, inner = page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
    assert width <= inner, f"the page is {width} px wide in a {inner} px window"


def clipped(page, selector: str) -> list[str]:
    return page.evaluate("""sel => [...document.querySelectorAll(sel)]
        .filter(e => e.offsetParent !== null && e.scrollWidth > e.clientWidth + 1).map(e => e.textContent)""", selector)


def test_the_phone_layout_fits_and_reaches_train_near_the_top(server, store, phone):
    page = phone
    start_from(page, server.url, "mnist-fc")
    no_sideways_scroll(page)
    page.evaluate("document.activeElement.blur(); scrollTo(0, 0)")
    top = page.locator("#train-btn").bounding_box()["y"]
    assert top < 250, f"Train is {top:.0f} px down the page"
    expect(page.locator("#train-btn")).to_be_in_viewport()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "builder-phone.png"))

    run = finished_run(store, "a run with a long name to fit on a phone")
    page.goto(f"{server.url}#/run/{run}")
    expect(page.locator("#run-status")).to_have_text("finished")
    no_sideways_scroll(page)
    assert clipped(page, "#run-title, .c-label, .c-value, .chart-box figcaption") == []

    page.goto(f"{server.url}#/runs")
    expect(page.locator(f"#runs-body tr[data-id='{run}']")).to_be_visible()
    no_sideways_scroll(page)
    wrap = page.locator(".table-wrap").bounding_box()
    assert wrap["x"] >= 0 and wrap["x"] + wrap["width"] <= 390
    assert page.locator(".table-wrap").evaluate("e => getComputedStyle(e).overflowX") == "auto"


def test_the_desktop_layout_has_no_sideways_scroll(server, store, browser):
    errors: list[str] = []
    context, page = new_page(browser, VIEWPORTS["desktop"], errors)
    start_from(page, server.url, "mnist-fc")
    no_sideways_scroll(page)
    run = finished_run(store, "desk")
    for hash in (f"#/run/{run}", "#/runs"):
        page.goto(server.url + hash)
        page.wait_for_load_state("networkidle")
        no_sideways_scroll(page)
        assert clipped(page, "#run-title, .c-label, .chart-box figcaption") == []
    context.close()
    assert not errors, errors


# ------------------------------------------------------------------ 11: keyboards and screen readers


def contrast(fg: tuple[int, int, int], bg: tuple[int, int, int] = (255, 255, 255)) -> float:
    def lum(c):
        r, g, b = (x / 255 for x in c)
        f = [v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4 for v in (r, g, b)]
        return 0.2126 * f[0] + 0.7152 * f[1] + 0.0722 * f[2]
    a, b = sorted((lum(fg), lum(bg)), reverse=True)
    return (a + 0.05) / (b + 0.05)


def rgb(css: str) -> tuple[int, int, int]:
    return tuple(int(v) for v in re.findall(r"\d+", css)[:3])


def test_names_marks_and_live_regions(server, page):
    page.goto(server.url + "#/runs")
    expect(page.locator("#runs-count")).to_contain_text("run")
    assert page.locator("h1").count() == 1
    page.keyboard.press("Tab")
    skip = page.locator("#skip-link")
    expect(skip).to_be_focused()
    skip.press("Enter")
    expect(page.locator("#main")).to_be_focused()
    expect(page).to_have_url(re.compile(r"#/runs$"))  # the route is kept
    start_from(page, server.url, "fc100-relu-fc10")
    names = page.evaluate("""[...document.querySelectorAll('#layers input, #layers select')]
        .map(e => e.getAttribute('aria-label'))""")
    assert None not in names and len(names) == len(set(names)), names
    assert "Layer 2 fc units" in names and "Layer 4 fc units" in names
    expect(page.locator("#run-status")).to_have_attribute("role", "status")
    # right and wrong are said, not only coloured
    verdicts = page.locator("#pred-grid .pred .verdict")
    expect(verdicts).to_have_count(20, timeout=60_000)  # the first call starts the prediction worker
    assert set(verdicts.all_inner_texts()) <= {"✓ right", "✗ wrong"}
    # every text drawn in the charts reads at 4.5:1 or better on their white ground
    fills = page.evaluate("""[...document.querySelectorAll('.chart svg text')]
        .filter(t => t.textContent.trim()).map(t => getComputedStyle(t).fill)""")
    assert fills, "the charts drew no text"
    worst = min(contrast(rgb(f)) for f in fills)
    assert worst >= 4.5, f"chart text at {worst:.2f}:1"


def test_the_api_docs_render_offline(server, page):
    outside: list[str] = []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(server.url) else None)
    page.goto(server.url)
    with page.context.expect_page() as opened:
        page.click("a.toplink", modifiers=[])
    docs = opened.value
    docs.on("request", lambda r: outside.append(r.url) if not r.url.startswith(server.url) else None)
    expect(docs.locator(".swagger-ui .info .title")).to_contain_text("layerlab")
    expect(docs.locator(".opblock-summary-path", has_text="/api/datasets/{name}/download").first).to_be_visible()
    assert outside == [], outside
