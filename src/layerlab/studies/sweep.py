"""Sweeps: one base spec, some fields varied over a grid or sampled at random, each trial a run.

``sweep("fc100-relu-fc10", ["train.lr=1e-4,1e-3,1e-2,0.1,1,10"], store=store)`` creates a sweep
record, one queued run per combination (tagged as its members; see ``record``), executes them
(``workers`` processes, or Ray), reads every run back from the store and returns a
``StudyResult`` with the table (values, final and best train/test loss and accuracy, status,
diagnosis of diverged trials) and two figures: each trial's curves against examples trained,
and the final metrics against the swept value (log x for learning rates).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable

from ..errors import Problem, SpecError
from ..prepare import prepare_run
from ..spec import set_path
from .axes import Axis, axis_label, grid, parse_axes, sample, value_text
from .executors import check_executor
from ..textfmt import pct
from .common import Member, Timer, finite, fmt, out_dir_for, prepare_members, run_members
from .record import StudyResult, Table, create_record, fail_record, finish_record

__all__ = ["sweep", "sweep_table", "sweep_figures"]


def _label(values: dict, paths: list[str]) -> str:
    return ", ".join(f"{axis_label(p, paths)}={value_text(v)}" for p, v in values.items()) or "base"


def sweep(source: str | Path | dict, axes: list[str] | list[Axis], *, store, random: int | None = None,
          seed: int = 0, overrides: list[str] | None = None, workers: int = 1, ray: str | None = None,
          out_dir: str | Path | None = None, on_done: Callable[[Member], None] | None = None,
          title: str | None = None) -> StudyResult:
    """Run a grid (or ``random`` sampled) sweep of ``source`` over ``axes``; see the module doc."""
    timer = Timer()
    check_executor(workers, ray)
    base_spec = prepare_run(source, overrides).spec  # the base's own problems, as `train` would list them
    base = base_spec.to_dict()
    axes = list(axes) if all(isinstance(a, Axis) for a in axes) else parse_axes(list(axes))
    if not axes:
        raise SpecError(Problem("a sweep needs at least one --set path=v1,v2,...", "e.g. --set train.lr=1e-3,1e-2,0.1"))
    combos = sample(axes, random, seed=seed) if random else grid(axes)
    paths = [a.path for a in axes]
    members = []
    for values in combos:
        data = _apply(base, values)
        members.append(Member(label=_label(values, paths), spec=data, values=values))
    prepare_members(members)  # every trial's problems before any run exists
    what = " × ".join(axis_label(p, paths) for p in paths)
    title = title or f"{base_spec.model_label()} on {base_spec.data.dataset} · {what}" + \
        (f" · random {random}" if random else "")
    record_spec = base_spec.to_dict()
    record_id = create_record(store, kind="sweep", name="sweep", spec=record_spec, title=title)
    try:
        store.add_event(record_id, "sweep", {"axes": [a.to_dict() for a in axes], "random": random, "seed": seed,
                                             "trials": len(members), "workers": workers, "ray": ray})
        run_members(store, record_id, "sweep", members, workers=workers, ray=ray, on_done=on_done)
        out = out_dir_for(out_dir, f"sweep-{record_id}")
        result = StudyResult(kind="sweep", name="sweep", record_id=record_id, runs=[m.run_id for m in members],
                             title=title, options={"axes": [a.to_dict() for a in axes], "random": random,
                                                   "seed": seed, "workers": workers, "ray": ray,
                                                   "base": base_spec.name})
        result.tables = [sweep_table(members, axes)]
        result.numbers = _numbers(members, axes)
        result.figures = sweep_figures(members, axes, out, title=title)
        result.captions = {"curves": "Each trial's train loss, test loss (and accuracies) against examples trained; "
                                     "a red × marks where a trial diverged.",
                           "final": "Final train (dashed) and test (solid) metrics against the swept value; "
                                    "diverged trials are marked × at the top."}
        result.text = (f"{len(members)} trials of {base_spec.model_label()} on {base_spec.data.dataset}, "
                       + ("sampled at random (seed {seed}) " if random else "on a grid ").format(seed=seed)
                       + "over " + ", ".join(f"{a.path}" for a in axes) + ". "
                       + _best_sentence(result.numbers))
        result.elapsed_s = timer.s
        finish_record(store, result)
        return result
    except BaseException as exc:
        fail_record(store, record_id, f"{type(exc).__name__}: {exc}")
        raise


def _apply(base: dict, values: dict[str, Any]) -> dict:
    import copy
    data = copy.deepcopy(base)
    for path, value in values.items():
        set_path(data, path, copy.deepcopy(value))
    return data


def _classifies(members: list[Member]) -> bool:
    return any(m.measured.task == "classification" for m in members)


def sweep_table(members: list[Member], axes: list[Axis]) -> Table:
    paths = [a.path for a in axes]
    cls = _classifies(members)
    cols = ["run", *[axis_label(p, paths) for p in paths], "status", "train loss", "test loss", "best test loss"]
    if cls:
        cols += ["train acc", "test acc", "best test acc"]
    cols += ["time (s)", "diagnosis"]
    rows = []
    for m in members:
        r = m.measured
        best_loss = min((v for _, v in m.series.get("test_loss", []) if math.isfinite(v)), default=None)
        row = [m.run_id, *[value_text(m.values.get(p)) for p in paths], m.status,
               fmt(r.train_loss), fmt(r.test_loss), fmt(best_loss)]
        if cls:
            row += [pct(r.train_accuracy), pct(r.test_accuracy), pct(r.best_test_accuracy)]
        row += [fmt(r.elapsed_s, 3), (m.diagnosis or m.error or "") if m.status != "finished" else ""]
        rows.append(row)
    return Table("Trials", cols, rows, note="train loss/accuracy: mean over the last epoch; test: the final model "
                                            "on the whole test split; best: the best evaluation during the run.")


def _numbers(members: list[Member], axes: list[Axis]) -> dict:
    trials = []
    for m in members:
        r = m.measured
        trials.append({"run_id": m.run_id, "label": m.label, "values": m.values, "status": m.status,
                       "train_loss": finite(r.train_loss), "test_loss": finite(r.test_loss),
                       "train_accuracy": finite(r.train_accuracy), "test_accuracy": finite(r.test_accuracy),
                       "best_test_accuracy": finite(r.best_test_accuracy),
                       "elapsed_s": finite(r.elapsed_s), "diagnosis": m.diagnosis})
    ok = [t for t in trials if t["status"] == "finished"]
    if _classifies(members):
        best = max(ok, key=lambda t: t["best_test_accuracy"] or -1, default=None)
    else:
        best = min(ok, key=lambda t: t["test_loss"] if t["test_loss"] is not None else math.inf, default=None)
    return {"trials": trials, "best": best, "diverged": [t["run_id"] for t in trials if t["status"] == "diverged"],
            "failed": [t["run_id"] for t in trials if t["status"] == "failed"],
            "statuses": {s: sum(t["status"] == s for t in trials) for s in {t["status"] for t in trials}}}


def _best_sentence(numbers: dict) -> str:
    best = numbers.get("best")
    bits = []
    if best:
        acc = best.get("best_test_accuracy")
        bits.append(f"Best: {best['label']} ("
                    + (f"best test accuracy {pct(acc)}" if acc is not None else f"test loss {fmt(best['test_loss'])}")
                    + ").")
    if numbers.get("diverged"):
        bits.append(f"{len(numbers['diverged'])} trial(s) diverged.")
    return " ".join(bits)


def sweep_figures(members: list[Member], axes: list[Axis], out: Path, *, title: str = "") -> dict[str, Path]:
    from ..report.figures import curves_figure, final_vs_value_figure
    paths = [a.path for a in axes]
    cls = _classifies(members)
    metrics = ["cost", "test_loss"] + (["train_accuracy", "test_accuracy"] if cls else [])
    series = {m.label: {k: [(float(e), v) for e, v in m.series.get(k, [])] for k in metrics} for m in members}
    diverged = [m.label for m in members if m.status == "diverged"]
    figures = {"curves": curves_figure(series, out / "curves.png", metrics=metrics, diverged=diverged,
                                       title=f"Curves · {title}")}
    # Final metric against the first axis; the other axes' values make one line each.
    x_axis = next((a for a in axes if not a.is_range and all(_num(v) for v in a.values)), None) \
        or next((a for a in axes if a.is_range), None) or axes[0]
    others = [p for p in paths if p != x_axis.path]
    points = []
    for m in members:
        p = {"x": m.values.get(x_axis.path) if _num(m.values.get(x_axis.path)) else value_text(m.values.get(x_axis.path)),
             "group": ", ".join(f"{axis_label(o, paths)}={value_text(m.values.get(o))}" for o in others),
             "status": m.status}
        if m.status == "finished":
            r = m.measured
            p.update(train_loss=finite(r.train_loss), test_loss=finite(r.test_loss),
                     train_accuracy=finite(r.train_accuracy), test_accuracy=finite(r.test_accuracy))
        points.append(p)
    panels = [("loss", "final loss (train --, test —)")]
    if cls:
        panels.append(("accuracy", "final accuracy (train --, test —)"))
    log_x = x_axis.log if not x_axis.is_range else x_axis.low > 0
    figures["final"] = final_vs_value_figure(points, out / "final.png", axis_label=x_axis.path, log_x=log_x,
                                             metrics=panels, title=f"Final metrics against {x_axis.path}")
    return figures


def _num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)
