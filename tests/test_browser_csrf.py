"""Cross-site writes, in a real browser: another site's page cannot stop (or start) a run.

A second local HTTP server, on another port, serves the attacker's page, opened once as
``http://localhost:PORT`` (another site) and once as ``http://127.0.0.1:PORT`` (the same site,
another origin). It fires everything a page can send without a CORS preflight at the layerlab
server on 127.0.0.1: ``fetch(url, {method: 'POST', mode: 'no-cors'})`` with no body, a text/plain
body and a form body, and the three kinds of HTML form submission. The run trains on regardless.
Then the layerlab page's own Stop button stops it, and its Resume button continues it.

Before: the bodiless no-cors POST to ``/api/runs/{id}/stop`` stopped the user's run.
"""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.network]


from browser_helpers import browser, playwright_api  # noqa: E402,F401  (browser: a fixture)

import httpx  # noqa: E402

from layerlab.server.testing import LiveServer  # noqa: E402
from layerlab.store import Store  # noqa: E402

ENDLESS = {"name": "victim", "data": {"dataset": "digits"}, "model": ["flatten", {"fc": {"units": 10}}],
           "train": {"examples": 50_000_000, "batch_size": 16}}  # trains until stopped
FORGED = {"spec": {**ENDLESS, "name": "forged"}}


def attacker_page(target: str, run_id: int) -> str:
    """Everything another site can send without a preflight, at ``target`` (the layerlab server)."""
    stop = f"{target}api/runs/{run_id}/stop"
    forged = json.dumps(FORGED)[:-1] + ', "pad": "'  # a text/plain form body that is JSON: name + "=" + value
    return f"""<!doctype html><meta charset="utf-8"><title>cute cats</title>
<form id="plain" method="POST" action="{stop}" enctype="text/plain" target="sink"><input name="a" value="b"></form>
<form id="urlenc" method="POST" action="{stop}" target="sink"><input name="a" value="b"></form>
<form id="multi" method="POST" action="{stop}" enctype="multipart/form-data" target="sink"><input name="a" value="b"></form>
<form id="create" method="POST" action="{target}api/runs" enctype="text/plain" target="sink">
  <input name='{forged}' value='"}}'></form>
<iframe name="sink"></iframe>
<script>
window.attack = async () => {{
  const shots = [
    ['{stop}', undefined], ['{stop}', 'x'], ['{stop}', new URLSearchParams({{a: 'b'}})],
    ['{target}api/runs', {json.dumps(json.dumps(FORGED))}],
    ['{target}api/runs/{run_id}/resume', undefined],
  ];
  const out = [];
  for (const [url, body] of shots) {{
    try {{ await fetch(url, {{method: 'POST', mode: 'no-cors', body, credentials: 'include'}}); out.push('sent'); }}
    catch (e) {{ out.push('blocked: ' + e); }}
  }}
  // A JSON request needs a preflight, which the server never grants: the browser does not send it.
  try {{ await fetch('{stop}', {{method: 'POST', headers: {{'Content-Type': 'application/json'}}, body: '{{}}'}});
         out.push('sent'); }} catch (e) {{ out.push('blocked: ' + e); }}
  return out;
}};
</script>"""


class Attacker:
    """A plain HTTP server on another port that serves ``html`` at ``/``."""

    def __init__(self):
        self.html = ""
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                body = outer.html.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def wait_for(what, predicate, timeout):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.1)
    return value


def test_another_sites_page_cannot_stop_a_run_but_the_page_can(browser, tmp_path):
    expect = playwright_api.expect
    store = Store(tmp_path / "runs.db")
    attacker = Attacker()
    with LiveServer(store, workers=1) as server:
        run_id = httpx.post(server.url + "api/runs", json={"spec": ENDLESS}).json()["id"]
        wait_for("the run to train", lambda: store.get_run(run_id)["status"] == "running", 60)
        attacker.html = attacker_page(server.url, run_id)
        context = browser.new_context()
        evil = context.new_page()
        evil.set_default_timeout(20_000)
        answers: list[tuple[str, str, int]] = []
        evil.on("response", lambda r: answers.append((r.request.method, r.url, r.status))
                if r.url.startswith(server.url) else None)
        for origin in (f"http://localhost:{attacker.port}/", f"http://127.0.0.1:{attacker.port}/"):
            evil.goto(origin)
            shots = evil.evaluate("attack()")
            assert shots[:5] == ["sent"] * 5, shots  # no-cors: the browser sends them (the answer is opaque)
            assert shots[5].startswith("blocked"), shots  # no preflight granted
            for form in ("plain", "urlenc", "multi", "create"):
                evil.goto(origin)
                with evil.expect_response(lambda r: r.url.startswith(server.url)) as answer:
                    evil.evaluate(f"document.getElementById('{form}').submit()")
                assert answer.value.status == 403, (form, answer.value.status)
        posts = [a for a in answers if a[0] == "POST"]
        assert len(posts) == 2 * (5 + 4) and {s for _, _, s in posts} == {403}, posts
        run = store.get_run(run_id)
        assert (run["status"], run["stop_requested"]) == ("running", False)
        assert [r["id"] for r in store.list_runs()] == [run_id]  # nothing forged either
        context.close()

        # The layerlab page itself: Stop works, then Resume continues the run from its checkpoint.
        context = browser.new_context(viewport={"width": 1440, "height": 1000})
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.set_default_timeout(20_000)
        page.goto(f"{server.url}#/run/{run_id}")
        status = page.locator("#run-status")
        expect(status).to_have_text("running")
        expect(page.locator("#resume-btn")).to_be_hidden()
        page.click("#stop-btn")
        expect(status).to_have_text("stopped", timeout=60_000)
        expect(page.locator("#banner")).to_contain_text("Resume continues")
        resume = page.locator("#resume-btn")
        expect(resume).to_be_visible()
        stopped_at = store.get_run(run_id)["examples"]
        resume.click()
        expect(status).to_have_text("running", timeout=60_000)
        expect(resume).to_be_hidden()
        wait_for("the resumed run to train on", lambda: store.get_run(run_id)["examples"] > stopped_at, 60)
        page.click("#stop-btn")
        expect(status).to_have_text("stopped", timeout=60_000)
        statuses = [e["payload"]["status"] for e in store.events(run_id, kinds=["status"])]
        assert statuses == ["queued", "running", "stopped", "running", "stopped"], statuses
        context.close()
        assert not errors, errors
    attacker.close()
    store.close()
