"""The classifier study: a linear model, an MLP and a convnet, each with SGD+momentum and with Adam.

Models are the presets ``linear`` (flatten, fc10), ``mnist-fc`` (fc128-relu-fc32-relu-fc10) and
``mnist-conv`` (two conv-relu-pool blocks, fc10). Optimisers: ``momentum`` (SGD, momentum 0.9,
lr 0.01) and ``adam`` (lr 0.001) — the usual textbook settings, the same for every model.
Data: Fashion-MNIST by default (on disk, offline), or MNIST / any 28x28 classification set.

Measured (from the store): final and best test accuracy, final train accuracy (last epoch's
mean), losses, wall time and training throughput of every run. Figures: train and test
curves per run, and test accuracy and time per model and optimiser.
"""
from __future__ import annotations

from pathlib import Path

from ..spec import spec_data
from ..textfmt import pct
from .common import Member, Timer, finite, fmt, out_dir_for, run_members, study_record
from .options import ClassifiersOptions
from .record import StudyResult, Table, finish_record

__all__ = ["NAME", "DOC", "run", "ClassifiersOptions"]

NAME = "classifiers"
DOC = "linear vs MLP vs convnet on Fashion-MNIST (or MNIST), SGD+momentum vs Adam"
MODELS = {"linear": "linear", "MLP": "mnist-fc", "convnet": "mnist-conv"}
OPTIMIZERS = {"sgd+momentum": {"optimizer": "momentum", "lr": 0.01, "momentum": 0.9},
              "adam": {"optimizer": "adam", "lr": 0.001}}


def run(store, options: ClassifiersOptions | None = None, *, quick: bool = False,
        out_dir: str | Path | None = None, workers: int = 1, ray: str | None = None) -> StudyResult:
    """Run the study; ``options`` default to ``ClassifiersOptions()`` (``quick``: ``.quick()``)."""
    timer = Timer()
    opts = ClassifiersOptions.resolve(options, quick=quick)
    members = []
    for model, preset in MODELS.items():
        for opt_name, opt in OPTIMIZERS.items():
            data = spec_data(preset)
            data["name"] = f"{model} · {opt_name}"
            data["data"] = dict(data["data"], dataset=opts.dataset, train_size=opts.train_size,
                                test_size=opts.test_size)
            data["train"] = dict(data["train"], **opt, epochs=opts.epochs, batch_size=opts.batch_size, seed=0)
            members.append(Member(f"{model} · {opt_name}", data, {"model": model, "optimizer": opt_name}))
    size = "all" if opts.train_size is None else f"{opts.train_size:,}"
    title = f"{opts.dataset}, {size} training examples, {opts.epochs:g} epoch(s)"
    with study_record(store, NAME, title=title, options=opts.model_dump(), dataset=opts.dataset,
                      members=members) as rid:
        run_members(store, rid, "study", members, workers=workers, ray=ray)
        out = out_dir_for(out_dir, f"{NAME}-{rid}")
        result = StudyResult(kind="study", name=NAME, record_id=rid, runs=[m.run_id for m in members],
                             options=opts.model_dump(), title=f"Classifiers · {title}")
        rows, runs = [], []
        for m in members:
            res = m.measured
            r = {"run_id": m.run_id, "model": m.values["model"], "optimizer": m.values["optimizer"],
                 "status": m.status, "params": res.params, "test_accuracy": finite(res.test_accuracy),
                 "best_test_accuracy": finite(res.best_test_accuracy), "train_accuracy": finite(res.train_accuracy),
                 "test_loss": finite(res.test_loss), "train_loss": finite(res.train_loss),
                 "elapsed_s": finite(res.elapsed_s), "train_time_s": finite(res.train_time_s),
                 "examples_per_sec": finite(res.examples_per_sec)}
            runs.append(r)
            rows.append([m.run_id, r["model"], r["optimizer"], f"{r['params']:,}" if r["params"] else "—",
                         pct(r["train_accuracy"]), pct(r["test_accuracy"]), pct(r["best_test_accuracy"]),
                         fmt(r["test_loss"]), fmt(r["elapsed_s"], 3), fmt(r["examples_per_sec"], 3), m.status])
        best = max(runs, key=lambda r: r["test_accuracy"] or -1)
        result.numbers = {"runs": runs, "best": {k: best[k] for k in ("model", "optimizer", "test_accuracy")}}
        result.tables = [Table("Test accuracy and time", ["run", "model", "optimizer", "params", "train acc",
                                                          "test acc", "best test acc", "test loss", "time (s)",
                                                          "train examples/s", "status"], rows,
                               note="time: wall seconds of the whole run, evaluations included; train examples/s "
                                    "counts training only. Train accuracy: mean over the last epoch.")]
        result.figures = _figures(members, runs, out)
        result.captions = {"curves": "Train and test curves of every run (colour: model; dashed: SGD+momentum, "
                                     "solid: Adam).",
                           "accuracy": "Final test accuracy per model and optimiser.",
                           "time": "Wall time of each run (training and evaluations) on this machine."}
        result.text = (f"Best: {best['model']} with {best['optimizer']}, {pct(best['test_accuracy'])} test "
                       f"accuracy. " + "; ".join(
                           f"{model}: " + ", ".join(f"{r['optimizer']} {pct(r['test_accuracy'])}"
                                                    for r in runs if r["model"] == model) for model in MODELS) + ".")
        result.elapsed_s = timer.s
        finish_record(store, result)
        return result


def _figures(members: list[Member], runs: list[dict], out: Path) -> dict[str, Path]:
    from ..report.figures import PALETTE, bars_figure, curves_figure
    series = {m.label: {k: [(float(e), v) for e, v in m.series.get(k, [])]
                        for k in ("cost", "test_loss", "train_accuracy", "test_accuracy")} for m in members}
    colours = {m.label: PALETTE[list(MODELS).index(m.values["model"])] for m in members}
    styles = {m.label: {"linestyle": "--"} for m in members if m.values["optimizer"] == "sgd+momentum"}
    figs = {"curves": curves_figure(series, out / "curves.png", metrics=["cost", "test_loss", "train_accuracy",
                                                                          "test_accuracy"],
                                    colours=colours, styles=styles,
                                    title="Train and test curves (dashed: SGD+momentum, solid: Adam)")}
    groups = list(MODELS)
    acc = {opt: [next(r["test_accuracy"] for r in runs if r["model"] == g and r["optimizer"] == opt) for g in groups]
           for opt in OPTIMIZERS}
    figs["accuracy"] = bars_figure(groups, acc, out / "accuracy.png", ylabel="test accuracy", ylim=(0, 1.05),
                                   title="Final test accuracy", fmt="{:.3f}")
    times = {opt: [next(r["elapsed_s"] for r in runs if r["model"] == g and r["optimizer"] == opt) for g in groups]
             for opt in OPTIMIZERS}
    figs["time"] = bars_figure(groups, times, out / "time.png", ylabel="seconds", title="Wall time per run",
                               fmt="{:.1f}")
    return figs
