"""The HTML report: one self-contained page with tables, embedded figures, specs and environment."""
from __future__ import annotations

import base64
import re

import pytest
from typer.testing import CliRunner

from layerlab.cli_support import LabTyper
from layerlab.errors import StoreError
from layerlab.report import render_report, write_report
from layerlab.store import Store
from layerlab.studies.cli import register
from layerlab.studies.sweep import sweep


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    """A store with a sweep (one trial diverges), an lr-find and a study."""
    from layerlab.studies import InitOptions, run_study
    from layerlab.studies.lr_find import lr_find
    path = tmp_path_factory.mktemp("report")
    store = Store(path / "runs.db")
    sw = sweep("fc100-relu-fc10", ["train.lr=0.1,10"], store=store, out_dir=path,
               overrides=["data.train_size=1000", "data.test_size=300"])
    lf = lr_find("toy-linear", store=store, steps=40, out_dir=path)
    st = run_study("init", store, InitOptions.quick(steps=10, train_size=500), out_dir=path)
    return store, sw, lf, st, path


def _images(page: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)]


def test_report_of_a_sweep_a_study_and_a_run_is_self_contained(filled):
    store, sw, lf, st, path = filled
    diverged = sw.numbers["diverged"][0]
    out = write_report(store, [str(sw.record_id), "init", "lr-find", str(diverged)], path / "report.html")
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    # nothing is fetched from anywhere: no URLs, no external scripts, styles or fonts
    assert not re.search(r"https?://", page)
    assert not re.search(r"<(script|link)\b", page)
    assert "@import" not in page and "url(" not in page
    # figures are embedded PNGs: 2 sweep + 1 lr-find + 2 init + 1 run curve
    images = _images(page)
    assert len(images) >= 6 and all(img[:8] == b"\x89PNG\r\n\x1a\n" for img in images)
    # tables with the numbers, the diagnosis, the specs, a contents list and the environment
    assert page.count("<table>") >= 5
    assert "Trials" in page and "Result per initialiser" in page and "Suggested learning rates" in page
    assert "diverged" in page and "learning rate 10 is too high" in page
    assert "Base spec (YAML)" in page and "fc: {units: 100" in page
    assert 'nav class="toc"' in page and f'href="#sweep-{sw.record_id}"' in page and 'href="#environment"' in page
    assert "torch" in page and "python" in page and "cpu" in page.lower()
    assert f"Run {diverged}" in page


def test_report_numbers_match_the_store(filled):
    store, sw, *_ = filled
    page = render_report(store, [sw.record_id])
    for trial in sw.numbers["trials"]:
        if trial["status"] == "finished":
            assert f"{100 * trial['test_accuracy']:.2f}%" in page


def test_report_is_written_atomically(filled, monkeypatch):
    store, sw, _, _, path = filled
    target = path / "atomic.html"
    target.write_text("old page")
    import layerlab.report.html as html_mod

    def broken(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(html_mod.os, "replace", broken)
    with pytest.raises(RuntimeError):
        write_report(store, [sw.record_id], target)
    assert target.read_text() == "old page"  # the old file is untouched
    assert not [p for p in path.iterdir() if p.name.startswith(".atomic.html.")]  # no temp file left


def test_report_targets(filled):
    store, sw, lf, st, _ = filled
    from layerlab.report.html import resolve_targets
    assert resolve_targets(store, ["sweep", "lr-find", "init", str(sw.runs[0])]) == [
        sw.record_id, lf.record_id, st.record_id, sw.runs[0]]
    with pytest.raises(StoreError, match="no capacity record"):
        resolve_targets(store, ["capacity"])
    with pytest.raises(StoreError, match="not found"):
        resolve_targets(store, ["99999"])
    with pytest.raises(StoreError, match="cannot read"):
        resolve_targets(store, ["what?"])


def test_cli_report(filled, tmp_path):
    store, sw, *_ = filled
    app = LabTyper(help="test app")

    @app.command()
    def version() -> None:
        """unused"""

    register(app)
    runner = CliRunner()
    out = tmp_path / "page.html"
    ok = runner.invoke(app, ["report", str(sw.record_id), "-o", str(out), "--db", store.url, "--title", "My sweep"])
    assert ok.exit_code == 0, ok.output
    assert "<title>My sweep</title>" in out.read_text()
    missing = runner.invoke(app, ["report", "capacity", "-o", str(out), "--db", store.url])
    assert missing.exit_code == 2 and "capacity" in missing.output
