"""`layerlab export`: a trained run as a standalone PyTorch file, ONNX, weights or its spec.

Two real runs on Fashion-MNIST subsets (an MLP, and a conv model that also uses reshape,
batchnorm and dropout with standardised inputs) are trained once per module into a real SQLite
store. The exported PyTorch file runs in a fresh interpreter where layerlab cannot be imported
(``python -I -S`` with only the site-packages folder that holds torch, safetensors and numpy, and
which has no layerlab: the editable install is a ``.pth`` file that ``-S`` never reads), and
prints the run's own test accuracy. The ONNX file, run by onnxruntime, gives PyTorch's outputs
to within 1e-5 on 100 test examples.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file
from typer.testing import CliRunner

from layerlab.cli import app
from layerlab.data import locate
from layerlab.errors import Conflict, ExportUnavailable, LayerlabError, RunNotFound
from layerlab.export import export_files, write_export
from layerlab.export.weights import stored_model
from layerlab.store import Store
from layerlab.textfmt import pct
from layerlab.train import train

pytestmark = pytest.mark.skipif(locate("fashion-mnist") is None, reason="Fashion-MNIST files are not on this machine")

DATA = locate("fashion-mnist")
SITE = Path(torch.__file__).resolve().parent.parent  # torch's site-packages folder (safetensors, numpy too)
# Runs a script with only SITE on the path: no site module, no .pth files, no PYTHONPATH, no cwd.
BOOT = ("import sys, runpy; sys.path.append(sys.argv[1]); script = sys.argv[2]; sys.argv = sys.argv[2:]; "
        "runpy.run_path(script, run_name='__main__')")

FC = {"name": "fashion-fc", "data": {"dataset": "fashion-mnist", "train_size": 2000, "test_size": 1000},
      "model": ["flatten", {"fc": {"units": 32}}, "relu", {"fc": {"units": 10}}],
      "train": {"epochs": 1, "batch_size": 64}}
CONV = {"name": "fashion-conv",
        "data": {"dataset": "fashion-mnist", "normalize": "standardize", "train_size": 1000, "test_size": 500},
        "model": [{"reshape": {"shape": [1, 28, 28]}}, {"conv2d": {"field": 3, "pad": 1, "depth": 4}},
                  "batchnorm", "relu", {"maxpool2d": {"field": 2, "stride": 2}}, {"dropout": {"rate": 0.1}},
                  "flatten", {"fc": {"units": 10}}],
        "train": {"epochs": 1, "batch_size": 32, "optimizer": "adam", "lr": 0.01}}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    s = Store(tmp_path_factory.mktemp("export") / "runs.db")
    yield s
    s.close()


@pytest.fixture(scope="module")
def runs(store):
    return {"fc": train(FC, store=store), "conv": train(CONV, store=store)}


def isolated(script: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-I", "-S", "-c", BOOT, str(SITE), str(script), *args],
                          capture_output=True, text=True, timeout=120, cwd=cwd)


def printed_accuracy(stdout: str) -> float:
    match = re.search(r"^test accuracy: ([0-9.]+)% \(([0-9,]+) test examples of fashion-mnist\)$", stdout, re.M)
    assert match, stdout
    return float(match.group(1))


def test_layerlab_is_not_importable_where_the_file_runs(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("import torch, safetensors, numpy\nprint('deps ok')\nimport layerlab\n")
    proc = isolated(probe, cwd=tmp_path)
    assert "deps ok" in proc.stdout
    assert proc.returncode != 0 and "No module named 'layerlab'" in proc.stderr, proc.stderr[-500:]


@pytest.mark.slow
@pytest.mark.parametrize("which", ["fc", "conv"])
def test_the_exported_file_prints_the_runs_test_accuracy_without_layerlab(store, runs, which, tmp_path):
    result = runs[which]
    out = tmp_path / "export"
    out.mkdir()
    written = write_export(store, result.run_id, "pytorch", out / "model.py")
    assert [p.name for p in written] == ["model.py", "model.safetensors"]
    away = tmp_path / "elsewhere"  # the files alone, far from the repository
    away.mkdir()
    for p in written:
        shutil.copy(p, away / p.name)
    proc = isolated(away / "model.py", str(DATA), cwd=away)
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = printed_accuracy(proc.stdout)
    examples = FC["data"]["test_size"] if which == "fc" else CONV["data"]["test_size"]
    assert f"({examples:,} test examples of fashion-mnist)" in proc.stdout
    assert abs(got - 100 * result.test_accuracy) <= 0.01, (got, result.test_accuracy)
    assert f"{got:.2f}%" == pct(result.test_accuracy)


def test_the_source_reads_like_the_spec_and_imports_no_layerlab(store, runs, tmp_path):
    path, weights = write_export(store, runs["conv"].run_id, "pytorch", tmp_path / "conv.py")
    text = path.read_text()
    assert not re.search(r"^\s*(import|from)\s+layerlab", text, re.M)
    assert "class FashionConv(nn.Module):" in text
    # the builder's names and the shape checker's shapes, one line per layer
    assert "self.reshape1 = Reshape(shape=(1, 28, 28))  # 1×28×28 -> 1×28×28" in text
    assert "self.conv2d1 = nn.Conv2d(1, 4, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))  # 1×28×28 -> " \
           "4×28×28, 40 parameters" in text
    assert "self.fc1 = nn.Linear(in_features=784, out_features=10, bias=True)  # 784 -> 10, 7,850 parameters" in text
    assert "x = self.maxpool2d1(x)  # (B, 4, 14, 14)" in text
    assert "class Reshape(nn.Module):" in text  # torch has none: copied from layerlab.modules
    assert weights.name == "conv.safetensors" and "WEIGHTS = 'conv.safetensors'" in text
    # the weights file's keys are the generated module's state_dict keys, and its values the run's
    namespace = {"__name__": "not_main", "__file__": str(path)}
    exec(compile(text, str(path), "exec"), namespace)
    model = namespace["load_model"]()
    stored = stored_model(store, runs["conv"].run_id)
    assert set(load_file(weights)) == set(model.state_dict()) == set(stored.model.state_dict())
    assert "batchnorm1.running_mean" in model.state_dict()  # buffers too: eval mode uses them
    data = stored.spec.data.load()
    x = data.test.x[:64]
    assert torch.equal(model(namespace["prepare"](x)), stored.model(data.prepare(x)))  # same numbers, bit for bit


def test_a_name_with_quotes_and_backslashes_exports_as_text_not_code(store, tmp_path):
    """A spec's name is user text: it goes into the generated docstrings made harmless, never as code."""
    name = 'say """hi\\x41 \\ "quoted"'
    small = {**FC, "name": name, "data": {**FC["data"], "train_size": 256, "test_size": 64}}
    result = train(small, store=store)
    path, _ = write_export(store, result.run_id, "pytorch", tmp_path / "odd.py")
    text = path.read_text()
    compile(text, str(path), "exec")  # it is valid Python
    assert text.startswith('"""say \'\'\'hi/x41 / \'quoted\': layerlab run'), text[:120]


def test_the_cli_writes_the_files_and_says_where(store, runs, tmp_path):
    target = tmp_path / "fc.py"
    res = CliRunner().invoke(app, ["export", str(runs["fc"].run_id), "--format", "pytorch", "-o", str(target),
                                   "--db", store.url])
    assert res.exit_code == 0, res.output
    assert f"wrote {target} (" in res.output and f"wrote {tmp_path / 'fc.safetensors'} (" in res.output
    assert target.read_text().startswith('"""fashion-fc: layerlab run')


def test_spec_export_is_the_runs_spec(store, runs, tmp_path):
    (path,) = write_export(store, runs["fc"].run_id, "spec", tmp_path / "again.yaml")
    assert yaml.safe_load(path.read_text()) == store.get_run(runs["fc"].run_id)["spec"]
    assert yaml.safe_load(path.read_text())["model"][1] == {"fc": {"units": 32, "bias": True}}


def test_weights_export_is_the_runs_final_weights(store, runs):
    files = export_files(store, runs["fc"].run_id, "weights")
    assert list(files) == [f"run-{runs['fc'].run_id}-fashion-fc.safetensors"]
    from safetensors.torch import load
    got = load(next(iter(files.values())))
    want = stored_model(store, runs["fc"].run_id).model.state_dict()
    assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in want)


@pytest.mark.slow
def test_onnx_outputs_match_pytorch_on_100_test_examples(store, runs, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    for which in ("fc", "conv"):
        (path,) = write_export(store, runs[which].run_id, "onnx", tmp_path / f"{which}.onnx")
        stored = stored_model(store, runs[which].run_id)
        data = stored.spec.data.load()
        x = data.prepare(data.test.x[:100])
        with torch.inference_mode():
            want = stored.model(x).numpy()
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        assert [i.name for i in session.get_inputs()] == ["input"]
        got = session.run(["output"], {"input": x.numpy()})[0]
        assert got.shape == (100, 10)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
        assert (got.argmax(1) == want.argmax(1)).all()


def test_onnx_without_its_packages_says_what_to_install(store, runs, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # what an installation without the extra sees
    with pytest.raises(ExportUnavailable, match=r"onnxscript.*pip install 'layerlab\[onnx\]'"):
        write_export(store, runs["fc"].run_id, "onnx", tmp_path / "m.onnx")
    assert not list(tmp_path.iterdir())


def test_bad_requests_are_refused_and_nothing_is_written(store, runs, tmp_path):
    with pytest.raises(RunNotFound, match="run 9999 not found"):
        write_export(store, 9999, "pytorch", tmp_path / "a.py")
    queued = store.create_run(FC, name="waiting")
    with pytest.raises(Conflict, match=f"run {queued} is queued and has no weights stored yet"):
        write_export(store, queued, "pytorch", tmp_path / "b.py")
    with pytest.raises(LayerlabError, match="unknown export format 'zip': use one of pytorch, weights, onnx, spec"):
        write_export(store, runs["fc"].run_id, "zip", tmp_path / "c.zip")
    with pytest.raises(LayerlabError, match="the folder .*missing does not exist"):
        write_export(store, runs["fc"].run_id, "pytorch", tmp_path / "missing" / "d.py")
    assert not list(tmp_path.iterdir())
    res = CliRunner().invoke(app, ["export", "9999", "--db", store.url])
    assert res.exit_code == 2 and "run 9999 not found" in res.output


@pytest.mark.slow
def test_a_generated_data_set_exports_a_model_whose_main_says_it_cannot_rebuild_the_data(store, tmp_path):
    spec = {"name": "spiral-mlp", "data": {"dataset": "spiral"},
            "model": [{"fc": {"units": 8}}, "tanh", {"fc": {"units": 2}}], "train": {"epochs": 2}}
    run_id = train(spec, store=store).run_id
    path, _ = write_export(store, run_id, "pytorch", tmp_path / "spiral.py")
    proc = isolated(path, str(tmp_path), cwd=tmp_path)
    assert proc.returncode != 0 and "spiral is generated by layerlab, not read from files" in proc.stderr
    probe = tmp_path / "probe.py"  # the model itself loads and computes what the run's model does
    probe.write_text("import runpy, torch\nns = runpy.run_path('spiral.py')\nm = ns['load_model']()\n"
                     "print(m(ns['prepare'](torch.tensor([[0.5, -1.0], [2.0, 3.0]]))).tolist())\n")
    out = isolated(probe, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-1500:]
    stored = stored_model(store, run_id)
    data = stored.spec.data.load()
    want = stored.model(data.prepare(torch.tensor([[0.5, -1.0], [2.0, 3.0]]))).tolist()
    assert np.allclose(json.loads(out.stdout), want, atol=1e-6)
