"""Untrusted text (issue 10): alias bombs, deep or huge specs, odd bytes, and binding every interface.

Each test is a finding that failed before its fix; the limits are spec.py's MAX_SPEC_* constants
(docs/security.md, "Untrusted input").
"""
from __future__ import annotations

import inspect
import json
import subprocess
import sys
import threading
import time

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from layerlab.cli import app as cli_app
from layerlab.errors import InvalidSpec
from layerlab.server import api_catalogue, create_app
from layerlab.server.app import is_loopback
from layerlab.server.testing import LiveServer
from layerlab.spec import (MAX_SPEC_BYTES, MAX_SPEC_DEPTH, apply_overrides, load_spec, parse_spec_text,
                           read_spec_file, spec_data)
from layerlab.store import Store

# Billion laughs: 9 levels of 9 aliases, about 400 bytes that name 9**9 (387 million) strings.
BOMB = "".join(f"{x}: &{x} [{', '.join([f'*{p}' if p else 'lol'] * 9)}]\n"
               for p, x in zip(["", *"abcdefgh"], "abcdefghi"))
# The same bomb inside a spec: every view of the model (a problem's repr, the JSON answer) expands it.
SPEC_BOMB = "name: bomb\n" + BOMB.replace("a: &a", "x: &a") + "model: [*i]\n"


def run_cli(*args):
    result = CliRunner().invoke(cli_app, [str(a) for a in args])
    return result


def console(*args, timeout=60, env=None):
    return subprocess.run([sys.executable, "-m", "layerlab", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env)


def problem(exc_info) -> "object":
    (p,) = exc_info.value.problems
    assert p.category == "syntax" and p.hint, p
    return p


@pytest.fixture()
def store(tmp_path):
    s = Store(tmp_path / "runs.db")
    yield s
    s.close()


# ------------------------------------------------------------------ finding 1: --host ""


@pytest.mark.parametrize("host", ["", "0.0.0.0", "::", "[::]", "192.168.1.10", "example.org"])
def test_wildcard_and_public_binds_are_not_loopback(host):
    assert not is_loopback(host)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_loopback_binds(host):
    assert is_loopback(host)


@pytest.mark.slow  # starts `layerlab serve` in a subprocess
def test_serve_refuses_an_empty_host(tmp_path):
    """`--host ""` bound every interface with no token; now it is refused before anything listens."""
    out = subprocess.run([sys.executable, "-m", "layerlab.server", "--host", "", "--port", "0",
                          "--db", str(tmp_path / "x.db")], capture_output=True, text=True, timeout=30)
    assert out.returncode == 2, out.stderr
    assert "every network interface" in out.stderr and "127.0.0.1" in out.stderr
    assert "Traceback" not in out.stderr


# ------------------------------------------------------------------ finding 2: YAML bombs and big input


def test_billion_laughs_is_refused_at_once():
    assert len(BOMB) < 500
    start = time.monotonic()
    with pytest.raises(InvalidSpec) as exc:
        parse_spec_text(BOMB, "yaml", source="bomb.yaml")
    assert time.monotonic() - start < 1.0
    p = problem(exc)
    assert "bomb.yaml" in p.message and "10,000 values" in p.message and "line " in p.message


def test_validate_of_a_bomb_file_ends_with_a_message(tmp_path):
    """A 400-byte file hung `layerlab validate` (the model's repr expands 9**9 strings)."""
    path = tmp_path / "bomb.yaml"
    path.write_text(SPEC_BOMB)
    proc = console("validate", path, timeout=60)
    assert proc.returncode == 2 and "over a limit" in proc.stderr and "Traceback" not in proc.stderr


def test_anchors_and_a_few_aliases_still_work():
    data = parse_spec_text("name: a\nx: &fc {fc: {units: 10}}\nmodel: [flatten, *fc]\n", "yaml")
    assert data["model"] == ["flatten", {"fc": {"units": 10}}]


def test_recursive_alias_is_refused():
    with pytest.raises(InvalidSpec) as exc:
        parse_spec_text("a: &a [*a]\n", "yaml")
    assert "recursive" in problem(exc).message


def test_too_many_aliases_is_refused():
    text = "a: &a 1\nb: [" + ", ".join(["*a"] * 101) + "]\n"
    with pytest.raises(InvalidSpec) as exc:
        parse_spec_text(text, "yaml")
    assert "100 aliases" in problem(exc).message


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_deep_nesting_is_refused(fmt):
    for depth in (MAX_SPEC_DEPTH + 1, 5_000):
        with pytest.raises(InvalidSpec) as exc:
            parse_spec_text("[" * depth + "]" * depth, fmt)
        assert f"more than {MAX_SPEC_DEPTH} levels" in problem(exc).message
    assert parse_spec_text("[" * 10 + "]" * 10, fmt) == [[[[[[[[[[]]]]]]]]]]


@pytest.mark.parametrize("fmt,text", [("yaml", "name: " + "1" * 5000), ("json", '{"name":\n ' + "1" * 5000 + "}")])
def test_integers_with_absurd_digit_counts(fmt, text):
    """Python refuses ints over 4,300 digits with a ValueError from inside the parser (a traceback)."""
    with pytest.raises(InvalidSpec) as exc:
        parse_spec_text(text, fmt, source="x")
    p = problem(exc)
    assert "5,000" in p.message and ("line 1" in p.message or "line 2" in p.message)


def test_oversized_text_is_refused():
    with pytest.raises(InvalidSpec) as exc:
        parse_spec_text("#" * (MAX_SPEC_BYTES + 1), "yaml")
    assert "too long" in problem(exc).message


def test_oversized_spec_file_is_refused_without_reading_it_all(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_bytes(b"#" * (MAX_SPEC_BYTES + 10))
    with pytest.raises(InvalidSpec) as exc:
        read_spec_file(path)
    assert "big.yaml" in problem(exc).message


def test_non_utf8_spec_file_names_file_and_offset(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\u00e9\n".encode("utf-8") + b"data: {dataset: \xe9t\xe9}\n")
    with pytest.raises(InvalidSpec) as exc:
        read_spec_file(path)
    p = problem(exc)
    assert "latin1.yaml" in p.message and "offset 28" in p.message and "line 2" in p.message
    result = run_cli("validate", path)
    assert result.exit_code == 2 and "offset 28" in result.stderr


def test_utf8_bom_is_accepted(tmp_path):
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"name": "x"}).encode())
    assert read_spec_file(path) == {"name": "x"}


@pytest.mark.parametrize("value", ["[1, 2", "{a: ", "'open", "1" * 5000])
def test_malformed_set_value_is_a_clean_invalid_spec(value):
    with pytest.raises(InvalidSpec) as exc:
        apply_overrides({}, [f"train.lr={value}"])
    p = problem(exc)
    assert p.field == "train.lr" and "override" in p.message


def test_malformed_set_value_on_the_command_line():
    result = run_cli("validate", "preset/mnist-fc", "--set", "train.lr=[1, 2")
    assert result.exit_code == 2 and "train.lr" in result.stderr, (result.exception, result.stderr)


def test_spec_file_that_is_a_directory(tmp_path):
    folder = tmp_path / "spec.yaml"
    folder.mkdir()
    for call in (lambda: read_spec_file(folder), lambda: spec_data(str(folder)), lambda: load_spec(str(folder))):
        with pytest.raises(InvalidSpec) as exc:
            call()
        (p,) = exc.value.problems
        assert p.category == "source" and "directory" in p.message and str(folder) in p.message
    result = run_cli("validate", folder)
    assert result.exit_code == 2 and "directory" in result.stderr


def test_deep_python_spec_data_is_refused_before_deepcopy():
    deep: list = []
    for _ in range(3_000):
        deep = [deep]
    with pytest.raises(InvalidSpec):
        spec_data({"name": "x", "model": deep})


# ------------------------------------------------------------------ the API


def test_parse_route_runs_in_a_thread():
    """A sync route: FastAPI runs it in its thread pool, off the event loop."""
    assert not inspect.iscoroutinefunction(api_catalogue.parse_text)


def test_bomb_to_the_api_is_refused_and_health_stays_responsive(store):
    """409 bytes of YAML took 51 s and 235 MB per request; /api/health must answer meanwhile."""
    answers, latencies = [], []
    with LiveServer(store, workers=0) as server:
        def send():
            with httpx.Client(timeout=20) as c:
                for _ in range(3):
                    answers.append(c.post(server.url + "api/spec/parse", json={"text": BOMB, "format": "yaml"}))
        senders = [threading.Thread(target=send) for _ in range(3)]
        for t in senders:
            t.start()
        with httpx.Client(timeout=20) as c:
            while any(t.is_alive() for t in senders) or not latencies:
                start = time.monotonic()
                assert c.get(server.url + "api/health").status_code == 200
                latencies.append(time.monotonic() - start)
        for t in senders:
            t.join(timeout=30)
    assert len(answers) == 9 and all(a.status_code == 400 for a in answers)
    assert "10,000 values" in answers[0].json()["detail"]
    assert max(latencies) < 1.0, latencies


def test_lone_surrogate_in_export_is_a_400(store):
    with TestClient(create_app(store, workers=0), base_url="http://127.0.0.1",
                    raise_server_exceptions=False) as c:
        for fmt in ("json", "yaml"):
            r = c.post("/api/spec/export", content='{"spec": {"name": "\\ud800"}, "format": "%s"}' % fmt,
                       headers={"content-type": "application/json"})
            assert r.status_code == 400, r.text
            assert "surrogate" in r.json()["detail"] and "name" in r.json()["detail"]
        r = c.post("/api/spec/parse", json={"text": '{"name": "\\ud800"}', "format": "json"})
        assert r.status_code == 400 and "surrogate" in r.json()["detail"]


def test_deep_json_body_to_check_is_a_4xx_not_a_500(store):
    with TestClient(create_app(store, workers=0), base_url="http://127.0.0.1",
                    raise_server_exceptions=False) as c:
        for depth in (100, 600, 900, 10_000):
            deep = "[" * depth + "]" * depth
            for body in (deep, '{"model": %s}' % deep, '{"data": {"dataset": "digits", "options": {"a": %s}}}' % deep):
                r = c.post("/api/check", content=body, headers={"content-type": "application/json"})
                assert r.status_code in (400, 422), (depth, r.status_code, r.text[:200])
        assert c.post("/api/check", json={"data": {"dataset": "digits"}, "model": ["flatten"]}).status_code == 200
