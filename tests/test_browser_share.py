"""A shareable link, in a real browser: the whole experiment in the URL fragment, nothing on the server.

Debian's Chromium builds a model in the builder, copies its link (clipboard API), and a fresh
browser context opens it and finds the same experiment: the same spec sent to /api/check (the
builder's own account of itself), the same form. The link is what docs/ui.md says it is
(deflate-raw, base64url, behind ``#/spec/z``), a plain-JSON link (``#/spec/j``) opens too, and a
damaged one says why in the page and keeps the default draft.
"""
from __future__ import annotations

import base64
import json
import re
import time
import zlib

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.network]

from browser_helpers import browser, playwright_api  # noqa: E402,F401  (browser: a fixture)

from layerlab.server.testing import LiveServer  # noqa: E402
from layerlab.store import Store  # noqa: E402


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("share") / "runs.db")
    with LiveServer(store, workers=0) as srv:
        yield srv
    store.close()


class Page:
    """A page in its own browser context that remembers the last spec the builder sent to /api/check."""

    def __init__(self, browser, server):
        self.context = browser.new_context(viewport={"width": 1440, "height": 1000})
        self.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url.rstrip("/"))
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.checked: list[dict] = []
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("request", self._request)
        self.page.set_default_timeout(20_000)

    def _request(self, request):
        if request.method == "POST" and request.url.endswith("/api/check"):
            self.checked.append(json.loads(request.post_data))

    def settled_spec(self) -> dict:
        """The spec of the builder's latest check, once the page shows its verdict."""
        playwright_api.expect(self.page.locator("#validity")).to_have_class(re.compile(r"\b(ok|bad)\b"))
        # the check is debounced (150 ms): the last edit's request may not be sent yet when the verdict of
        # the one before shows, so wait until no new check has been sent for 600 ms (at most 10 s)
        seen, quiet_since, deadline = len(self.checked), time.monotonic(), time.monotonic() + 10
        while time.monotonic() - quiet_since < 0.6 and time.monotonic() < deadline:
            self.page.wait_for_timeout(100)
            if len(self.checked) != seen:
                seen, quiet_since = len(self.checked), time.monotonic()
        self.page.wait_for_load_state("networkidle")
        return self.checked[-1]

    def close(self):
        self.context.close()
        assert not self.errors, self.errors


@pytest.fixture()
def pages(browser, server):
    made = []
    yield lambda: made.append(Page(browser, server)) or made[-1]
    for p in made:
        p.close()


def decode_link(url: str) -> dict:
    data = url.split("#/spec/", 1)[1]
    raw = base64.urlsafe_b64decode(data[1:] + "=" * (-len(data[1:]) % 4))
    assert data[0] == "z"
    return json.loads(zlib.decompress(raw, -15))  # deflate-raw: no zlib header


FORM = ["#dataset", "#train-size", "#test-size", "#preset", "#optimizer", "#batch-size", "#budget-value", "#seed",
        "#init", "#spec-name"]


def form_of(page) -> dict:
    values = {sel: page.locator(sel).input_value() for sel in FORM}
    values["layers"] = page.locator("#layers li select.kind").evaluate_all("els => els.map(e => e.value)")
    values["params"] = page.locator("#layers li [data-field]").evaluate_all(
        "els => els.map(e => [e.dataset.field, e.value])")
    values["opt"] = page.locator("#opt-params [data-field]").evaluate_all("els => els.map(e => [e.dataset.field, e.value])")
    return values


def test_a_copied_link_opens_the_same_experiment(server, pages):
    expect = playwright_api.expect
    first = pages()
    page = first.page
    page.goto(server.url)
    page.select_option("#dataset", "digits")
    page.select_option("#preset", "mnist-conv")
    page.fill("#spec-name", "shared model")
    page.fill("#train-size", "700")
    page.select_option("#optimizer", "adam")
    page.fill("#opt-params input[data-field='train.lr']", "0.003")
    page.fill("#batch-size", "32")
    page.check("#budget-examples")
    page.fill("#budget-value", "12345")
    page.fill("#seed", "7")
    first_field = page.locator("#layers li input.num[data-field]").first
    first_field.fill(str(int(first_field.input_value()) + 1))  # an edited preset layer
    spec = first.settled_spec()
    assert spec["name"] == "shared model" and spec["train"]["optimizer"] == "adam"
    assert spec["train"]["examples"] == 12345 and spec["data"]["train_size"] == 700
    # The address follows the builder as it is edited.
    expect(page).to_have_url(re.compile(re.escape(server.url) + r"#/spec/z[A-Za-z0-9_-]+$"))

    page.click("#copy-link")
    field = page.locator("#share-box input.share-link")
    expect(field).to_be_visible()
    expect(page.locator("#share-box .share-said")).to_contain_text("Link copied")
    link = field.input_value()
    assert page.evaluate("navigator.clipboard.readText()") == link
    assert link.startswith(server.url + "#/spec/z") and "token" not in link
    assert decode_link(link) == {"spec": spec, "preset": "mnist-conv"}
    before = form_of(page)

    second = pages()  # a fresh browser context: nothing shared but the link
    second.page.goto(link)
    assert second.settled_spec() == spec
    assert form_of(second.page) == before
    expect(second.page.locator("#preset")).to_have_value("mnist-conv")
    expect(second.page.locator("#share-box")).to_be_hidden()


def test_a_plain_json_link_opens_too(server, pages):
    """The fallback format of a browser without CompressionStream: base64url JSON behind "j"."""
    spec = {"name": "plain", "data": {"dataset": "digits", "normalize": "0..1"},
            "model": ["flatten", {"fc": {"units": 10}}],
            "train": {"optimizer": "sgd", "lr": 0.05, "batch_size": 16, "epochs": 2, "init": "default", "seed": 3}}
    data = base64.urlsafe_b64encode(json.dumps({"spec": spec}).encode()).decode().rstrip("=")
    p = pages()
    p.page.goto(server.url + "#/spec/j" + data)
    got = p.settled_spec()
    assert got["data"] == spec["data"] and got["name"] == "plain"
    assert got["model"][0] == "flatten" and got["model"][1]["fc"]["units"] == 10  # the builder adds the defaults
    assert got["train"]["lr"] == 0.05 and got["train"]["seed"] == 3 and got["train"]["epochs"] == 2
    playwright_api.expect(p.page.locator("#layers li")).to_have_count(2)


def _cut_link() -> str:
    """A real compressed link cut in half, as a chat program might leave it."""
    packer = zlib.compressobj(wbits=-15)
    raw = packer.compress(json.dumps({"spec": {"name": "cut", "data": {"dataset": "digits"}, "model": []}}).encode())
    raw += packer.flush()
    return "z" + base64.urlsafe_b64encode(raw[:len(raw) // 2]).decode().rstrip("=")


@pytest.mark.parametrize("data, why", [
    (_cut_link(), "its compressed data is damaged"),
    ("z%%%", "its data is not base64url text"),
    ("x" + "A" * 8, 'it starts with "x"'),
    ("j" + base64.urlsafe_b64encode(b"[1, 2]").decode().rstrip("="), "it holds no spec"),
    ("j" + base64.urlsafe_b64encode(b'{"spec": {"name": "x"}}').decode().rstrip("="), "its spec has no data set or no model"),
    ("j" + base64.urlsafe_b64encode(b"not json").decode().rstrip("="), "its data is not JSON"),
])
def test_a_damaged_link_says_why_and_keeps_the_default_draft(server, pages, data, why):
    expect = playwright_api.expect
    p = pages()
    p.page.goto(server.url + "#/spec/" + data)
    message = p.page.locator("#share-box .share-error")
    expect(message).to_contain_text("This link's experiment cannot be opened: " + why)
    expect(message).to_contain_text("The builder shows the default model instead.")
    spec = p.settled_spec()
    assert spec["name"] == "my-model" and spec["model"] == []  # the default draft (state.js emptyDraft)
    expect(p.page.locator("#layers li")).to_have_count(0)
    assert "#/spec/" + data not in p.page.url
