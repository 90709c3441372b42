"""`layerlab train`, `layerlab runs ...` and `layerlab predict`: training and the run store from the terminal.

Training runs in this process with a live display (a progress bar on a terminal, plain
lines otherwise); the first Ctrl-C asks the trainer to stop and keep what it learned,
a second one aborts.
"""
from __future__ import annotations

import math
import signal
import sys
import threading
import time
from contextlib import contextmanager
from typing import Optional

import typer
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from .cli_support import LabTyper, err, out, print_json, print_problems
from .errors import LayerlabError, StoreError
from .prepare import prepare_run
from .spec import load_spec
from .studies.record import is_record
from .durations import format_minutes
from .textfmt import pct, label_test_set
from .train.outcome import run_outcome
from .train.results import RunResults

__all__ = ["register"]

DbOpt = typer.Option(None, "--db", envvar="LAYERLAB_DB", help="store URL or SQLite path (default: ~/.local/share/layerlab/runs.db)")
JsonOpt = typer.Option(False, "--json", help="print JSON")


def _store(db: str | None):
    from .store import Store
    return Store(db)


def _num(value, fmt: str = ",.0f") -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return format(value, fmt)


class _Display:
    """Turns trainer events into a progress bar (terminal) or plain lines (pipes, CI logs)."""

    def __init__(self, *, live: bool):
        self.live = live
        self.total: int | None = None  # the trainer's plan says it in every progress event
        self.last_line = 0.0
        self.test_acc = None
        if live:
            self.progress = Progress(
                TextColumn("[bold]training[/]"), BarColumn(), TaskProgressColumn(),
                TextColumn("{task.fields[stats]}"), TimeElapsedColumn(), console=err, transient=False)
            self.task = self.progress.add_task("train", total=None, stats="")

    def __enter__(self):
        if self.live:
            self.progress.start()
        return self

    def __exit__(self, *exc):
        if self.live:
            self.progress.stop()

    def __call__(self, event: dict) -> None:
        kind = event.get("type")
        if kind == "eval":
            self.test_acc = event.get("test_accuracy")
            if not self.live:  # say which: the whole test split, or the live points' subset
                where = label_test_set(event.get("test_examples"), event.get("test_split_size")) \
                    if event.get("full") else f"subset of {_num(event.get('test_examples'))}"
                err.print(f"eval  examples={event.get('examples', 0):>8,}  test_accuracy={pct(self.test_acc)}"
                          f"  test_loss={_num(event.get('test_loss'), '.4f')}  ({where})")
        elif kind == "progress":
            self.total = event.get("total_examples", self.total)
            stats = (f"cost {_num(event.get('cost'), '.4f')}  train {pct(event.get('train_accuracy'))}  "
                     f"test {pct(self.test_acc)}  {_num(event.get('examples_per_sec'))} ex/s")
            if self.live:
                self.progress.update(self.task, completed=event.get("examples", 0), total=self.total, stats=stats)
            elif time.monotonic() - self.last_line > 2.0:
                self.last_line = time.monotonic()
                err.print(f"step  examples={event.get('examples', 0):>8,}/{self.total or 0:,}  {stats}")
        elif kind == "diagnosis":
            err.print(f"[yellow]diagnosis:[/] {event.get('text')}")
        elif kind == "status" and not self.live:
            err.print(f"status {event.get('status')}")


@contextmanager
def _ctrl_c_stops(stop: threading.Event):
    """First Ctrl-C: ask the trainer to stop cleanly. Second: abort."""
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame):
        if stop.is_set():
            signal.signal(signal.SIGINT, previous)
            raise KeyboardInterrupt
        stop.set()
        err.print("\n[yellow]stopping after this step (Ctrl-C again to abort)…[/]")

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, previous)


def _results_table(run_id: int, r: RunResults, store_url: str, *, status: str | None = None) -> Table:
    """The results of one run; ``status``: the store's (a run may have been marked since)."""
    failed = r.outcome and r.outcome["kind"] == "failed_to_learn"
    table = Table(title=f"Run {run_id}: {r.outcome['label'] if failed else status or r.status or '?'}",
                  title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    on = label_test_set(r.test_examples, r.test_split_size)
    rows = [
        (f"test accuracy ({on})" if on else "test accuracy", pct(r.test_accuracy)),
        ("best test accuracy", pct(r.best_test_accuracy)),
        ("test accuracy before training", pct(r.step0_test_accuracy)),
        ("test loss", _num(r.test_loss, ".4f")),
        ("train accuracy", pct(r.train_accuracy)),
        ("examples trained", _num(r.examples)),
        ("elapsed (training + evaluation)", f"{_num(r.elapsed_s, '.1f')} s"),
        ("evaluation time (live + full evaluations)", f"{_num(r.eval_time_s, '.1f')} s"),
        ("live evaluations", "—" if r.eval_subset is None else
         f"{_num(r.eval_subset)} test examples every {_num(r.eval_every)} trained"),
        ("examples / sec (training)", _num(r.examples_per_sec)),
        ("inferences / sec (batched)", _num(r.inferences_per_sec)),
        ("inferences / sec (batch 1)", _num(r.inferences_per_sec_b1)),
        ("latency at batch 1", f"{_num(r.latency_ms_b1, '.3f')} ms"),
        ("device", r.device or "—"),
        ("store", store_url),
    ]
    if r.minutes is not None:
        rows.insert(6, ("time budget", format_minutes(r.minutes)))
    if r.stop_reason:
        rows.insert(6, ("ended by", r.stop_reason))
    for label, value in rows:
        table.add_row(label, value)
    return table


def train_command(
    source: Optional[str] = typer.Argument(None, help="spec file or preset name (none with --resume)"),
    dataset: Optional[str] = typer.Option(None, "--dataset", "-d", help="data set to train on"),
    epochs: Optional[float] = typer.Option(None, "--epochs", help="passes over the training set"),
    examples: Optional[int] = typer.Option(None, "--examples", help="stop after this many examples (wins over epochs)"),
    time_: Optional[str] = typer.Option(None, "--time", help="train about this long: 90s, 2m, 1.5m (wins over "
                                                            "epochs; with --examples, whichever comes first)"),
    optimizer: Optional[str] = typer.Option(None, "--optimizer"),
    lr: Optional[float] = typer.Option(None, "--lr", help="learning rate"),
    batch_size: Optional[int] = typer.Option(None, "--batch-size"),
    seed: Optional[int] = typer.Option(None, "--seed"),
    set_: Optional[list[str]] = typer.Option(None, "--set", help="key=value override (repeatable)"),
    name: Optional[str] = typer.Option(None, "--name", help="run name (default: the spec's)"),
    resume: Optional[int] = typer.Option(None, "--resume", help="continue an interrupted run from its checkpoint"),
    db: Optional[str] = DbOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Train a spec or preset and keep the run in the store, with a live display."""
    from .train import resume as resume_run
    from .train import train
    if (source is None) == (resume is None):
        raise LayerlabError("give a spec file or preset to train, or --resume RUN to continue a run (not both)")
    store = _store(db)
    stop = threading.Event()
    if resume is not None:
        store.mark_interrupted()
        print_problems([], prepare_run(store.get_run(resume)["spec"], need_data=False).warnings)  # as a new run's
        with _Display(live=sys.stderr.isatty() and not json_out) as display, _ctrl_c_stops(stop):
            results = resume_run(resume, store=store, on_event=display, stop_event=stop)
    else:
        overrides = list(set_ or [])
        for key, value in (("data.dataset", dataset), ("train.epochs", epochs), ("train.examples", examples),
                           ("train.minutes", time_),
                           ("train.optimizer", optimizer), ("train.lr", lr), ("train.batch_size", batch_size),
                           ("train.seed", seed), ("name", name)):
            if value is not None:
                overrides.append(f"{key}={value}")
        prepared = prepare_run(source, overrides)  # every problem before a run row exists
        spec = prepared.spec
        print_problems([], prepared.warnings)
        run_id = prepared.create_run(store)
        model = "" if spec.model_label() == spec.name else f" · {spec.model_label()}"
        err.print(f"run {run_id}: {spec.name}{model} on {spec.data.dataset} "
                  f"· {spec.train.optimizer} lr={spec.train.lr} batch={spec.train.batch_size}")
        with _Display(live=sys.stderr.isatty() and not json_out) as display, _ctrl_c_stops(stop):
            results = train(prepared, store=store, run_id=run_id, on_event=display, stop_event=stop)
    if json_out:
        print_json(results.to_json())
    else:
        out.print(_results_table(results.run_id, results, store.url))
        if results.diagnosis:
            out.print(f"[yellow]diagnosis:[/] {results.diagnosis}")
    if results.status == "failed":
        raise typer.Exit(1)


runs_app = LabTyper(help="Runs in the store: list, show, compare, rename, delete.", no_args_is_help=False,
                    invoke_without_command=True)


def _runs_rows(store, status, dataset, search, limit) -> list[dict]:
    store.mark_interrupted()
    return [dict(r, outcome=run_outcome(r)) for r in store.list_runs(status=status, dataset=dataset, search=search,
                                                                     limit=limit)]


@runs_app.callback()
def runs_list(
    ctx: typer.Context,
    status: Optional[str] = typer.Option(None, "--status", help="only runs with this status"),
    dataset: Optional[str] = typer.Option(None, "--dataset", "-d"),
    search: Optional[str] = typer.Option(None, "--search", "-s", help="text in the name or model"),
    limit: int = typer.Option(50, "--limit"),
    db: Optional[str] = DbOpt,
    json_out: bool = JsonOpt,
) -> None:
    """List runs, newest first (status, data set, model, best test accuracy, duration)."""
    if ctx.invoked_subcommand is not None:
        return
    try:
        rows = _runs_rows(_store(db), status, dataset, search, limit)
    except LayerlabError as exc:
        from .cli_support import report_error
        report_error(exc)
        raise typer.Exit(exc.exit_code) from None
    if json_out:
        print_json(rows)
        return
    table = Table(title=f"Runs ({len(rows)})", title_justify="left")
    for col in ("id", "name", "status", "data set", "model", "best test acc", "examples", "duration", "created"):
        table.add_column(col, justify="right" if col in ("id", "best test acc", "examples", "duration") else "left")
    for r in rows:
        duration = _duration(r)
        table.add_row(str(r["id"]), r.get("name") or "", _status_text(r["status"], r["outcome"]), r.get("dataset") or "",
                      r.get("model") or "", pct(r.get("best_test_accuracy")), _num(r.get("examples")),
                      duration, _when(r.get("created_at")))
    out.print(table)


def _status_text(status: str, outcome: dict | None = None) -> str:
    """The status, or "failed to learn" when the outcome (train/outcome.py) says so."""
    if outcome and outcome["kind"] == "failed_to_learn":
        return f"[red]{outcome['label']}[/]"
    colour = {"finished": "green", "running": "cyan", "diverged": "red", "failed": "red",
              "interrupted": "yellow", "stopped": "yellow"}.get(status, "white")
    return f"[{colour}]{status}[/]"


def _duration(run: dict) -> str:
    start, end = run.get("started_at"), run.get("finished_at") or run.get("updated_at")
    if not start or not end:
        return "—"
    return f"{float(end) - float(start):.1f} s"


def _when(ts) -> str:
    if not ts:
        return ""
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(float(ts)))


@runs_app.command("show")
def runs_show(run_id: int = typer.Argument(...), db: Optional[str] = DbOpt, json_out: bool = JsonOpt) -> None:
    """One run: its spec, status, diagnosis, results and the last value of each metric."""
    store = _store(db)
    store.mark_interrupted()
    run = store.get_run(run_id)
    results = None if is_record(run) else RunResults.from_json(run.get("results"))  # a record holds a study's
    last: dict[str, float] = {}
    for row in store.metrics(run_id):
        last[row["name"]] = row["value"]
    if json_out:
        shown = run if results is None else dict(run, results=results.to_json())
        print_json(dict(shown, last_metrics=last))
        return
    outcome = results.outcome if results is not None else None
    out.print(f"[bold]Run {run_id}[/] · {run.get('name')} · {_status_text(run['status'], outcome)}")
    out.print(f"data set {run.get('dataset')} · model {run.get('model')} · seed {run.get('seed')} "
              f"· device {run.get('device') or '—'} · duration {_duration(run)}")
    if outcome and outcome["kind"] == "failed_to_learn":
        out.print(f"[red]failed to learn:[/] {outcome['text']}")
    elif run.get("diagnosis"):
        out.print(f"[yellow]diagnosis:[/] {run['diagnosis']}")
    if run.get("error"):
        out.print(f"[red]error:[/] {run['error']}")
    if results is not None:
        out.print(_results_table(run_id, results, store.url, status=run["status"]))
    if last:
        table = Table(title="Last metric values", title_justify="left")
        table.add_column("metric")
        table.add_column("value", justify="right")
        for k, v in sorted(last.items()):
            table.add_row(k, _num(v, ".4g"))
        out.print(table)


_COMPARE_METRICS = ["test_accuracy_subset", "cost", "train_accuracy", "examples_per_sec"]


@runs_app.command("compare")
def runs_compare(
    run_ids: list[int] = typer.Argument(..., help="two or more run ids"),
    plot: Optional[str] = typer.Option(None, "--plot", help="write curves on shared axes to this PNG"),
    metric: Optional[list[str]] = typer.Option(None, "--metric", help="metrics to plot (repeatable)"),
    db: Optional[str] = DbOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Compare runs side by side; --plot draws their curves on shared axes."""
    store = _store(db)
    runs = [store.get_run(i) for i in run_ids]
    rows = []
    for run in runs:
        r = RunResults.from_json(run.get("results") or {})  # a run without results: every value None
        rows.append({"status": run["status"], "dataset": run.get("dataset"), "model": run.get("model"),
                     "test_accuracy": r.test_accuracy, "best_test_accuracy": r.best_test_accuracy,
                     "test_loss": r.test_loss, "examples": r.examples, "examples_per_sec": r.examples_per_sec,
                     "inferences_per_sec": r.inferences_per_sec, "elapsed_s": r.elapsed_s,
                     "id": run["id"], "name": run.get("name")})
    keys = [("status", None), ("dataset", None), ("model", None), ("test_accuracy", pct),
            ("best_test_accuracy", pct), ("test_loss", lambda v: _num(v, ".4f")), ("examples", _num),
            ("examples_per_sec", _num), ("inferences_per_sec", _num), ("elapsed_s", lambda v: _num(v, ".1f"))]
    if json_out:
        print_json(rows)
    else:
        table = Table(title="Comparison", title_justify="left")
        table.add_column("")
        for r in rows:
            table.add_column(f"run {r['id']}\n{r['name']}", justify="right")
        for key, fmt in keys:
            table.add_row(key.replace("_", " "), *[(fmt(r[key]) if fmt else str(r[key] or "—")) for r in rows])
        out.print(table)
    if plot:
        from .plots import plot_curves
        metrics = metric or _COMPARE_METRICS
        series = {f"{r['id']}: {r.get('name')}": {m: store.series(r["id"], m) for m in metrics} for r in runs}
        path = plot_curves(series, plot, metrics=metrics)
        err.print(f"wrote {path}")


@runs_app.command("rename")
def runs_rename(run_id: int, name: str, db: Optional[str] = DbOpt) -> None:
    """Give a run a new name."""
    _store(db).rename_run(run_id, name)
    out.print(f"run {run_id} renamed to {name!r}")


@runs_app.command("delete")
def runs_delete(run_ids: list[int], db: Optional[str] = DbOpt) -> None:
    """Delete runs with their metrics, events and artifacts."""
    store = _store(db)
    for run_id in run_ids:
        store.delete_run(run_id)
        out.print(f"deleted run {run_id}")


def predict_command(
    run_id: int = typer.Argument(...),
    grid: Optional[str] = typer.Option(None, "--grid", help="write images with their top-3 bars to this PNG"),
    boundary: Optional[str] = typer.Option(None, "--boundary", help="write the latest decision boundary with the "
                                           "training and test points to this PNG (2-D data sets)"),
    db: Optional[str] = DbOpt,
    json_out: bool = JsonOpt,
) -> None:
    """The run's latest predictions on its fixed test examples: top-3 classes, right or wrong."""
    store = _store(db)
    run = store.get_run(run_id)
    if boundary:
        write_boundary(store, run, boundary)
    events = store.events(run_id, kinds=["prediction"])
    if not events:
        raise StoreError(f"run {run_id} has no predictions yet (it records them at step 0 and at each evaluation)")
    payload = events[-1]["payload"]
    preds = payload.get("predictions", payload) if isinstance(payload, dict) else payload
    spec = load_spec(run["spec"])
    names = list(spec.dataset.class_names)
    if json_out:
        print_json({"run_id": run_id, "step": payload.get("step") if isinstance(payload, dict) else None,
                    "predictions": preds})
    else:
        table = Table(title=f"Run {run_id} predictions", title_justify="left")
        for col in ("#", "label", "top 1", "top 2", "top 3", ""):
            table.add_column(col)
        for p in preds:
            tops = [f"{names[c] if names else c} {pct(prob)}" for c, prob in p["top"][:3]]
            mark = "[green]✓[/]" if p.get("correct") else "[red]✗[/]"
            table.add_row(str(p["index"]), names[p["label"]] if names else str(p["label"]), *tops, mark)
        out.print(table)
    if grid:
        from .plots import plot_predictions
        images, _ = run_test_images(spec, [p["index"] for p in preds])
        path = plot_predictions(images, preds, names, grid, title=f"run {run_id}: {run.get('name')}")
        err.print(f"wrote {path}")


def write_boundary(store, run: dict, path: str) -> None:
    """``predict --boundary``: the latest stored boundary under the run's points, as a PNG."""
    from .report.figures import boundary_figure
    from .views_read import read_boundary, read_points
    got = read_boundary(store, run["id"])  # DataError for a run without 2-D inputs, Conflict before step 0
    points = read_points(load_spec(run["spec"]).data.load())  # DataSpec.load: the trainer's examples
    meta = got["meta"]
    written = boundary_figure(got["grid"], meta["extent"], points, path, value=meta["value"],
                              classification=meta["task"] == "classification",
                              title=f"run {run['id']}: {meta['value']} at step {got['step']} ({got['examples']} examples)")
    err.print(f"wrote {written}")


def run_test_images(spec, indices: list[int]):
    """``(images, labels)``: the run's test examples ``indices``, unscaled, as its trainer saw them."""
    ds = spec.data.model_copy(update={"normalize": "none"}).load()  # DataSpec.load: the trainer's subset
    if ds.test.x.dim() != 4:
        raise LayerlabError(f"--grid needs image data; {spec.data.dataset} has inputs of shape "
                            f"{tuple(ds.test.x.shape[1:])}")
    return ds.test.x[indices].cpu().numpy(), ds.test.y[indices].tolist()


def register(app: typer.Typer) -> None:
    """Attach the run commands to the main CLI."""
    app.command("train")(train_command)
    app.command("predict")(predict_command)
    app.add_typer(runs_app, name="runs")
