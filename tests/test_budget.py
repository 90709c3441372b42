"""The memory budget: the checker's estimate against what torch really holds, and the refusals it makes.

What torch holds is measured, not guessed: after one real update of the built model on a batch,
the bytes of the weights, their gradients and the optimiser's state tensors, plus every tensor
autograd saved for the backward pass (``torch.autograd.graph.saved_tensors_hooks``, each
storage counted once), plus the batch and the output with its gradient.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
import yaml
from typer.testing import CliRunner

from layerlab.budget import format_bytes, memory_limit
from layerlab.builder import build
from layerlab.cli import app as cli_app
from layerlab.errors import InvalidSpec, LayerlabError
from layerlab.prepare import prepare_run
from layerlab.presets import preset_names
from layerlab.store import Store
from layerlab.train import make_objective, make_optimizer

pytestmark = pytest.mark.usefixtures("one_thread")

HUGE_FC = {"data": {"dataset": "fashion-mnist"}, "model": ["flatten", {"fc": {"units": 1_000_000}}, {"fc": {"units": 10}}]}


def measured_bytes(prepared) -> int:
    """What torch holds for one update of the spec's model at its batch size (see the module doc)."""
    spec = prepared.spec
    info = spec.dataset
    torch.manual_seed(0)
    model = build(spec, result=prepared.check)
    model.train()
    opt = make_optimizer(model.parameters(), spec.train)
    objective = make_objective(prepared.task, prepared.loss, num_classes=info.num_classes,
                               last_layer=spec.model[-1].kind)
    bs = spec.train.batch_size
    x = torch.rand(bs, *info.input_shape)
    if objective.task == "classification":
        y = torch.randint(0, info.num_classes, (bs,))
    else:
        y = torch.rand(bs, *info.target_shape) if objective.task == "regression" else x
    saved: dict[int, int] = {}

    def pack(t):
        saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(x)
        loss = objective(out, x if objective.task == "reconstruction" else y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    params = list(model.parameters())
    weights = {p.data_ptr(): p.nbytes for p in params}
    grads = sum(p.grad.nbytes for p in params if p.grad is not None)
    state = sum(v.nbytes for s in opt.state.values() for v in s.values() if torch.is_tensor(v) and v.dim() > 0)
    activations = sum(n for ptr, n in saved.items() if ptr not in weights)
    return sum(weights.values()) + grads + state + activations + x.nbytes + 2 * out.nbytes


@pytest.mark.parametrize("name", preset_names())
def test_the_estimate_is_within_2x_of_what_torch_holds(name, capsys):
    prepared = prepare_run(name, need_data=False)
    estimate = prepared.check.memory["total"]
    real = measured_bytes(prepared)
    with capsys.disabled():
        print(f"\n{name}: estimate {format_bytes(estimate)}, torch holds {format_bytes(real)} "
              f"({estimate / real:.2f}x)")
    assert 0.5 <= estimate / real <= 2.0


def test_a_model_over_the_budget_is_refused_everywhere_before_a_run_exists(tmp_path):
    path = tmp_path / "huge.yaml"
    path.write_text(yaml.safe_dump(HUGE_FC))
    with pytest.raises(InvalidSpec) as info:
        prepare_run(HUGE_FC)
    (p,) = info.value.problems
    assert (p.category, p.field, p.layer) == ("budget", "model[1].fc.units", 1)
    assert "training needs about 9.1 GiB" in p.message and "over the 4.0 GiB budget" in p.message
    assert p.hint.startswith("use fewer units in layer 2 (fc)") and "LAYERLAB_MAX_MEMORY" in p.hint
    result = CliRunner().invoke(cli_app, ["validate", str(path)])  # before: exit 0
    assert result.exit_code == 2 and "over the 4.0 GiB budget" in " ".join(result.stderr.split())  # wrapped
    store = Store(tmp_path / "runs.db")
    result = CliRunner().invoke(cli_app, ["train", str(path), "--db", store.url])  # before: a traceback
    assert result.exit_code == 2 and store.list_runs() == []


def test_activations_over_the_budget_name_the_batch_size():
    spec = {"data": {"dataset": "fashion-mnist"}, "train": {"batch_size": 4096},
            "model": [{"conv2d": {"depth": 2000, "field": 3, "pad": 1}}, "flatten", {"fc": {"units": 10}}]}
    with pytest.raises(InvalidSpec) as info:
        prepare_run(spec)
    (p,) = info.value.problems
    assert p.field == "train.batch_size" and "layer 1 (conv2d)" in p.message
    assert p.hint.startswith("use a smaller train.batch_size (now 4096) or fewer filters in layer 1 (conv2d)")


def test_the_budget_is_settable_and_a_bad_setting_is_named(monkeypatch):
    monkeypatch.setenv("LAYERLAB_MAX_MEMORY", "64G")
    assert memory_limit() == 64 * 10**9
    prepare_run(HUGE_FC, need_data=False)  # fits a 64 GB budget
    monkeypatch.setenv("LAYERLAB_MAX_MEMORY", "1MiB")
    with pytest.raises(InvalidSpec, match="over the 1.0 MiB budget"):
        prepare_run("mnist-conv", need_data=False)
    monkeypatch.setenv("LAYERLAB_MAX_MEMORY", "lots")
    with pytest.raises(LayerlabError, match="LAYERLAB_MAX_MEMORY='lots' is not a size"):
        memory_limit()


def test_summary_shows_the_memory_estimate():
    result = CliRunner().invoke(cli_app, ["summary", "mnist-conv", "--json"])
    assert result.exit_code == 0
    memory = json.loads(result.stdout)["memory"]
    assert memory["batch_size"] == 64 and memory["total"] == sum(
        memory[k] for k in ("weights", "gradients", "optimizer_state", "activations"))
    assert memory["weights"] == 11_274 * 4 and len(memory["by_layer"]) == 8
    text = CliRunner().invoke(cli_app, ["summary", "mnist-conv"]).stdout
    assert "memory (batch 64)" in text and "Training memory (batch 64): about 6.8 MiB of a 4.0 GiB budget" in text


@pytest.mark.slow  # a subprocess with a capped address space
def test_running_out_of_memory_is_a_message_and_a_failed_run(tmp_path):
    """A model the budget allows but the process cannot hold: exit 2 with the cause, the run failed."""
    db = tmp_path / "runs.db"
    script = textwrap.dedent(f"""
        import resource, sys
        import psutil
        from layerlab.cli import main
        import torch, layerlab.train.trainer  # noqa: E401  (torch and the trainer, before the cap)
        vms = psutil.Process().memory_info().vms
        resource.setrlimit(resource.RLIMIT_AS, (vms + 2**30, resource.RLIM_INFINITY))  # 1 GiB to spare
        sys.argv = ["layerlab", "train", "fc100-relu-fc10", "--set", "model[1].fc.units=1000000",  # a 3 GB weight
                    "--examples", "64", "--db", {str(db)!r}]
        main()
    """)
    env = dict(os.environ, LAYERLAB_MAX_MEMORY="64G")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "ran out of memory while training on cpu" in proc.stderr and "Traceback" not in proc.stderr
    (run,) = Store(db).list_runs()
    assert run["status"] == "failed" and run["error"].startswith("ran out of memory")
