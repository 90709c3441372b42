"""`layerlab data list|show|fetch` through Typer's CliRunner, wrapped the way the main CLI is."""
from __future__ import annotations

import pytest
from data_fixtures import IDX_NAMES, data_env, http_server, patch_entry, refused_url, tiny_mnist_files  # noqa: F401
from typer.testing import CliRunner

from layerlab.data.cli import app
from layerlab.errors import LayerlabError

runner = CliRunner()


def invoke(*args):
    """Run the app; a LayerlabError becomes (message, exit 2), as the lead's main CLI does."""
    result = runner.invoke(app, list(args), env={"COLUMNS": "200"})
    assert not isinstance(result.exception, LayerlabError), "commands must map user errors to exit 2"
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    if result.exit_code == 2:
        return 2, " ".join(result.stderr.split()).removeprefix("error: ")
    return result.exit_code, result.output


def test_list_shows_every_set_and_where(data_env):
    code, out = invoke("list")
    assert code == 0
    for name in ("mnist", "fashion-mnist", "cifar10", "digits", "toy-functions/logsumexp",
                 "circle", "multi-gauss"):
        assert name in out
    fm_line = next(line for line in out.splitlines() if "fashion-mnist" in line)
    assert "/usr/share/datasets/fashion-mnist" in fm_line and "1×28×28" in fm_line
    assert "10 classes" in fm_line and "60000/10000" in fm_line
    mnist_line = next(line for line in out.splitlines() if line.startswith("│ mnist"))
    assert "missing" in mnist_line
    assert "generated" in next(line for line in out.splitlines() if "│ spiral" in line)


def test_show_fashion_mnist_with_grid(data_env, tmp_path):
    png = tmp_path / "grid.png"
    code, out = invoke("show", "fashion-mnist", "--grid", str(png))
    assert code == 0, out
    assert "examples: train 60,000, test 10,000" in out
    assert "input shape: 1×28×28 uint8" in out and "pixel range: 0..255" in out
    assert "Ankle boot" in out and "6,000" in out and "1,000" in out
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


def test_show_regression_and_scatter(tmp_path):
    code, out = invoke("show", "toy-functions")
    assert code == 0 and "logsumexp" in out and "label shape: 3" in out
    code, out = invoke("show", "spiral", "--grid", str(tmp_path / "s.png"))
    assert code == 0 and (tmp_path / "s.png").stat().st_size > 5_000
    code, msg = invoke("show", "toy-functions", "--grid", str(tmp_path / "t.png"))
    assert code == 2 and "--grid needs images or 2-D inputs" in msg


def test_show_unknown_name_is_exit_2():
    code, msg = invoke("show", "mnits")
    assert code == 2 and "unknown data set 'mnits'; known data sets:" in msg


def test_show_missing_offline(data_env, monkeypatch):
    monkeypatch.setenv("LAYERLAB_MIRRORS", refused_url())
    code, msg = invoke("show", "cifar10")
    assert code == 2 and "looked for: cifar-10-binary.tar.gz" in msg and "Connection refused" in msg


@pytest.mark.network
def test_fetch_with_mirror_option(data_env, monkeypatch):
    files = tiny_mnist_files()
    patch_entry(monkeypatch, "mnist", files)
    routes = {f"/{n}": (200, b, None) for n, b in files.items()}
    with http_server(routes) as (url, hits):
        code, out = invoke("fetch", "mnist", "--mirror", refused_url(), "--mirror", url)
    assert code == 0, out
    assert f"mnist: files in {data_env / 'data' / 'mnist'}" in out.replace("\n", "")
    assert sorted(p.name for p in (data_env / "data" / "mnist").iterdir()) == sorted(IDX_NAMES)
    code, out = invoke("show", "mnist", "--no-download")
    assert code == 0 and "examples: train 30, test 10" in out


def test_fetch_generated_set_is_a_no_op():
    code, out = invoke("fetch", "circle")
    assert code == 0 and "nothing to fetch" in out


def test_fetch_verifies_files_already_present(data_env):
    code, out = invoke("fetch", "fashion-mnist")
    assert code == 0 and "fashion-mnist: files in /usr/share/datasets/fashion-mnist" in out


def test_fetch_reports_corrupt_present_file(data_env, monkeypatch):
    files = tiny_mnist_files()
    patch_entry(monkeypatch, "mnist", files)
    d = data_env / "data" / "mnist"
    d.mkdir(parents=True)
    other = tiny_mnist_files(seed=1)  # well-formed files, other content
    for n, b in files.items():
        (d / n).write_bytes(b if n != IDX_NAMES[2] else other[n])
    code, msg = invoke("fetch", "mnist")
    assert code == 2 and msg.startswith(f"{d / IDX_NAMES[2]}: checksum mismatch")
    (d / IDX_NAMES[2]).write_bytes(files[IDX_NAMES[2]][:-1])  # cut short
    code, msg = invoke("fetch", "mnist")
    assert code == 2 and msg.startswith(f"{d / IDX_NAMES[2]}: not a valid gzip file (truncated")
