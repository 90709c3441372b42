"""`layerlab validate/summary/layers/presets/inits` through the real console script."""
import json
import subprocess
import sys

import pytest
import torch

from typer.testing import CliRunner

import layerlab
from layerlab.cli import app
from layerlab.presets import preset_names


def run(*args, check=False):
    """The CLI in-process (fast); `console` below runs the real installed entry point."""
    result = CliRunner().invoke(app, [str(a) for a in args])
    result.returncode = result.exit_code
    if check:
        assert result.exit_code == 0, result.stderr
    return result


def console(*args):
    return subprocess.run([sys.executable, "-m", "layerlab", *map(str, args)], capture_output=True, text=True,
                          timeout=120)


@pytest.fixture
def bad_spec(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\ndata: {dataset: fashion-mnist}\nmodel:\n  - fc: {units: 100}\n  - relu\n"
                    "  - fc: {units: 10}\n")
    return path


def test_validate_invalid_exits_2_and_prints_problem_and_fix(bad_spec):
    proc = console("validate", str(bad_spec))
    assert proc.returncode == 2
    assert "layer 1 (fc): fc needs a flat input (features,), but receives 1×28×28" in proc.stderr
    assert "fix: add flatten before layer 1" in proc.stderr


def test_validate_json_shape(bad_spec, tmp_path):
    proc = run("validate", str(bad_spec), "--json")
    assert proc.returncode == 2
    data = json.loads(proc.stdout)
    assert data["valid"] is False
    assert data["problems"] == [{"message": "fc needs a flat input (features,), but receives 1×28×28",
                                 "hint": "add flatten before layer 1", "layer": 0, "kind": "fc", "field": "model[0]",
                                 "category": "shape", "context": None, "where": "layer 1 (fc)"}]
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"model": ["flatten", {"fc": {"units": 10}}]}))
    ok = run("validate", str(good), "--json")
    assert ok.returncode == 0 and json.loads(ok.stdout) == {"valid": True, "problems": [], "warnings": []}


def test_validate_syntax_error_is_a_problem_not_a_traceback(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("model: [flatten,\n")
    proc = run("validate", str(path), "--json")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "invalid YAML at line" in json.loads(proc.stdout)["problems"][0]["message"]


def test_summary_json_totals_equal_torch_for_every_preset():
    for name in preset_names():
        data = json.loads(run("summary", name, "--json", check=True).stdout)
        model = layerlab.build(name)
        assert data["total_params"] == data["trainable_params"] == sum(p.numel() for p in model.parameters())
        assert len(data["layers"]) == len(list(model.children()))


def test_summary_table_with_dataset_override():
    proc = run("summary", "mnist-conv", "--dataset", "cifar10", check=True)
    assert "3×32×32" in proc.stdout and "Total params: 14,074" in proc.stdout
    assert "Mult-adds per example:" in proc.stdout


def test_summary_of_invalid_spec_exits_2(bad_spec):
    proc = console("summary", str(bad_spec))
    assert proc.returncode == 2 and "add flatten before layer 1" in proc.stderr


def test_layers_presets_inits_listings():
    layers = json.loads(run("layers", "--json", check=True).stdout)
    kinds = {entry["kind"] for entry in layers}
    assert {"flatten", "reshape", "fc", "conv2d", "conv1d", "maxpool2d", "maxpool1d", "avgpool2d", "relu",
            "leaky_relu", "elu", "sigmoid", "tanh", "softmax", "linear", "dropout", "batchnorm"} <= kinds
    fc = next(e for e in layers if e["kind"] == "fc")
    assert fc["aliases"] == ["dense"] and fc["params"][0] == {
        "name": "units", "type": "integer", "default": 10, "doc": "number of output values (neurons)", "ge": 1,
        "le": 10_000_000}
    table = run("layers", check=True).stdout
    assert "conv2d" in table and "Convolution over images" in table
    presets = json.loads(run("presets", "--json", check=True).stdout)
    assert {p["name"] for p in presets} == set(preset_names()) and all(p["valid"] for p in presets)
    assert "he_normal" in run("inits", check=True).stdout


def test_set_override_on_cli():
    proc = run("summary", "fc100-relu-fc10", "--set", "model[1].fc.units=50", "--json", check=True)
    assert json.loads(proc.stdout)["layers"][1]["output_shape"] == [50]


def test_docs_layers_md_is_generated_from_the_catalogue():
    from pathlib import Path
    from layerlab.docs import catalogue_markdown
    committed = (Path(__file__).parent.parent / "docs" / "layers.md").read_text(encoding="utf-8")
    assert committed == catalogue_markdown(), "docs/layers.md is stale: run `layerlab layers --markdown > docs/layers.md`"
    assert "## `conv2d`" in committed and "| `depth` | integer | `1` | ≥ 1, ≤ 100000 |" in committed
