"""The capacity study: depth, width and layer order against overfitting.

Models (fully connected, ReLU between layers, fc10 output): 1 to 5 layers deep (hidden width
100; depth 1 is the linear model), wide-then-narrow (fc256-fc32) against narrow-then-wide
(fc32-fc256), and a first layer of 10 against 100 units (fc10-relu-fc10 vs fc100-relu-fc10,
the practicum's presets). All are trained alike (Adam, lr 0.001) on a *small* training subset
for many epochs, so that the bigger models can memorise it.

The overfitting measure is the train/test gap: accuracy of the final weights (read back from
the store) on the whole training subset minus accuracy on the test set. (The trainer's own
train accuracy is a running mean over the last epoch, measured while the weights moved.)
"""
from __future__ import annotations

from pathlib import Path

from ..textfmt import pct
from .common import Member, Timer, evaluate_run, finite, fmt, out_dir_for, run_members, study_record
from .options import CapacityOptions
from .record import StudyResult, Table, finish_record

__all__ = ["NAME", "DOC", "run", "CONFIGS", "CapacityOptions"]

NAME = "capacity"
DOC = "1-5 FC layers, wide-then-narrow vs narrow-then-wide, fc10 vs fc100 first layer; train/test gap"


def _layers(hidden: list[int]) -> list:
    layers: list = ["flatten"]
    for units in hidden:
        layers += [{"fc": {"units": units}}, "relu"]
    return layers + [{"fc": {"units": 10}}]


def configs(width: int) -> list[tuple[str, list[int], list[str]]]:
    """``(label, hidden units, groups)``; a model in several comparisons is trained once."""
    out = []
    for depth in range(1, 6):
        hidden = [width] * (depth - 1)
        groups = ["depth"] + (["first layer"] if depth == 2 and width == 100 else [])
        out.append((f"{depth} layer{'s' if depth > 1 else ''}" + (f" (fc{width}×{depth - 1})" if depth > 1 else
                                                                  " (linear)"), hidden, groups))
    out.append(("wide→narrow fc256-fc32", [256, 32], ["order"]))
    out.append(("narrow→wide fc32-fc256", [32, 256], ["order"]))
    out.append(("first layer fc10", [10], ["first layer"]))
    if width != 100:
        out.append(("first layer fc100", [100], ["first layer"]))
    return out


CONFIGS = configs(100)


def run(store, options: CapacityOptions | None = None, *, quick: bool = False,
        out_dir: str | Path | None = None, workers: int = 1, ray: str | None = None) -> StudyResult:
    """Run the study; ``options`` default to ``CapacityOptions()`` (``quick``: ``.quick()``)."""
    timer = Timer()
    opts = CapacityOptions.resolve(options, quick=quick)
    members = []
    for label, hidden, groups in configs(opts.width):
        spec = {"name": f"capacity: {label}",
                "data": {"dataset": opts.dataset, "train_size": opts.train_size, "test_size": opts.test_size},
                "model": _layers(hidden),
                "train": {"optimizer": "adam", "lr": 0.001, "batch_size": 64, "epochs": opts.epochs, "seed": 0}}
        members.append(Member(label, spec, {"hidden": hidden, "groups": groups}))
    title = f"{opts.dataset}, {opts.train_size:,} training examples, {opts.epochs:g} epochs, Adam lr 0.001"
    with study_record(store, NAME, title=title, options=opts.model_dump(), dataset=opts.dataset,
                      members=members) as rid:
        run_members(store, rid, "study", members, workers=workers, ray=ray)
        out = out_dir_for(out_dir, f"{NAME}-{rid}")
        data = members[0].prepared.load_data()  # the same subset for every member
        runs = []
        for m in members:
            on_train = evaluate_run(store, m.run_id, "train", data=data) if m.status == "finished" else {}
            train_acc = on_train.get("accuracy")
            res = m.measured
            test_acc = finite(res.test_accuracy)
            runs.append({"run_id": m.run_id, "label": m.label, "hidden": m.values["hidden"],
                         "groups": m.values["groups"], "status": m.status, "params": res.params,
                         "train_accuracy": train_acc, "train_loss": on_train.get("loss"),
                         "test_accuracy": test_acc, "test_loss": finite(res.test_loss),
                         "best_test_accuracy": finite(res.best_test_accuracy),
                         "min_test_loss": min((v for _, v in m.series.get("test_loss", [])), default=None),
                         "gap": (train_acc - test_acc) if train_acc is not None and test_acc is not None else None})
        result = StudyResult(kind="study", name=NAME, record_id=rid, runs=[m.run_id for m in members],
                             options=opts.model_dump(), title=f"Capacity · {title}")
        result.numbers = {"runs": runs, "depth_gap": [r["gap"] for r in runs if "depth" in r["groups"]]}
        rows = [[r["run_id"], r["label"], f"{r['params']:,}" if r["params"] else "—", pct(r["train_accuracy"]),
                 pct(r["test_accuracy"]), pct(r["gap"]), fmt(r["train_loss"]), fmt(r["test_loss"]),
                 fmt(r["min_test_loss"]), ", ".join(r["groups"])] for r in runs]
        result.tables = [Table("Train/test gap per model", ["run", "model", "params", "train acc", "test acc",
                                                            "gap (train − test)", "train loss", "final test loss",
                                                            "lowest test loss", "compared in"], rows,
                               note="Train accuracy and loss: the final weights evaluated on the whole training "
                                    "subset. A final test loss above the lowest one means the test loss rose "
                                    "again: overfitting.")]
        result.figures = _figures(members, runs, out)
        result.captions = {"gap": "Accuracy of the final weights on the training subset and on the test set; "
                                  "the difference is the overfitting gap.",
                           "depth_curves": "Train and test loss for 1 to 5 layers; a test loss that rises again "
                                           "while the train loss falls is overfitting.",
                           "shape_curves": "Wide-then-narrow against narrow-then-wide, and a first layer of 10 "
                                           "against 100 units."}
        deep = [r for r in runs if "depth" in r["groups"]]
        result.text = ("Gap (train − test accuracy) by depth: "
                       + ", ".join(f"{i + 1}: {pct(r['gap'])}" for i, r in enumerate(deep)) + ". "
                       + "Wide→narrow vs narrow→wide: " + " vs ".join(
                           pct(r["test_accuracy"]) for r in runs if "order" in r["groups"]) + " test accuracy. "
                       + "First layer fc10 vs fc100: " + " vs ".join(
                           pct(r["test_accuracy"]) for r in sorted(
                               (r for r in runs if "first layer" in r["groups"]), key=lambda r: r["hidden"][0]))
                       + " test accuracy.")
        result.elapsed_s = timer.s
        finish_record(store, result)
        return result


def _figures(members: list[Member], runs: list[dict], out: Path) -> dict[str, Path]:
    from ..report.figures import bars_figure, curves_figure
    labels = [r["label"].split(" (")[0] for r in runs]
    figs = {"gap": bars_figure(labels, {"train (final weights)": [r["train_accuracy"] for r in runs],
                                        "test": [r["test_accuracy"] for r in runs]},
                               out / "gap.png", ylabel="accuracy", ylim=(0, 1.1), title="Train and test accuracy",
                               fmt="{:.2f}")}
    deep = [m for m in members if "depth" in m.values["groups"]]
    series = {m.label: {k: [(float(e), v) for e, v in m.series.get(k, [])] for k in ("cost", "test_loss")}
              for m in deep}
    figs["depth_curves"] = curves_figure(series, out / "depth_curves.png", metrics=["cost", "test_loss"],
                                         title="Depth: train loss and test loss (a rising test loss is overfitting)")
    other = [m for m in members if "depth" not in m.values["groups"] or "first layer" in m.values["groups"]]
    series = {m.label: {k: [(float(e), v) for e, v in m.series.get(k, [])] for k in ("cost", "test_loss")}
              for m in other}
    figs["shape_curves"] = curves_figure(series, out / "shape_curves.png", metrics=["cost", "test_loss"],
                                         title="Layer order and first-layer width")
    return figs
