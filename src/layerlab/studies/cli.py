"""`layerlab sweep`, `layerlab lr-find`, `layerlab study NAME` and `layerlab report`.

Thin views over ``layerlab.studies`` and ``layerlab.report``: they parse flags, call the
library, print a table (or JSON) and say where the record and figures are. ``register(app)``
attaches them to the main CLI.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table as RichTable

from ..cli_support import err, escape_markup, out, print_json
from ..errors import Problem, SpecError

__all__ = ["register", "sweep_command", "lr_find_command", "study_command", "report_command"]

DbOpt = typer.Option(None, "--db", envvar="LAYERLAB_DB",
                     help="store URL or SQLite path (default: ~/.local/share/layerlab/runs.db)")
JsonOpt = typer.Option(False, "--json", help="print the result as JSON")
OutOpt = typer.Option(Path("layerlab-out"), "--out", help="directory for the figures (a subdirectory per record)")
WorkersOpt = typer.Option(1, "--workers", "-k", min=1, help="local worker processes (1: run in this process)")
RayOpt = typer.Option(None, "--ray", help="run trials on Ray: 'auto' starts a local Ray, else a cluster ADDRESS")
ReportOpt = typer.Option(None, "--report", help="also write the HTML report of the result to this file")


def _store(db: str | None):
    from ..store import Store
    return Store(db)


def _progress(member) -> None:
    acc, loss = member.measured.test_accuracy, member.measured.test_loss
    what = f"test acc {100 * acc:.2f}%" if isinstance(acc, (int, float)) and not isinstance(acc, bool) \
        and math.isfinite(acc) else f"test loss {loss:.4g}" if isinstance(loss, (int, float)) else \
        (member.error or "")
    mark = {"finished": "[green]✓[/]", "diverged": "[red]✗ diverged[/]", "failed": "[red]✗ failed[/]"}.get(
        member.status, member.status or "?")
    err.print(f"  {mark} run {member.run_id} · {_esc(member.label)} · {_esc(what)}")


def _print_result(result, *, json_out: bool, store) -> None:
    if result.failed:  # on stderr, with --json too
        from .record import failure_text
        err.print(f"[yellow]warning:[/] {_esc(failure_text(result.failed, of=len(result.runs)))}")
    if json_out:
        data = result.to_dict()
        data["figures"] = {k: str(v) for k, v in result.figures.items()}
        print_json(data)
        return
    for t in result.tables:
        table = RichTable(title=t.title, title_justify="left")
        for c in t.columns:
            table.add_column(str(c), overflow="fold")
        for row in t.rows:
            table.add_row(*[_esc(str("—" if v is None else v)) for v in row])
        out.print(table)
        if t.note:
            out.print(f"[dim]{_esc(t.note)}[/]")
    if result.text:
        out.print(_esc(result.text))
    for key, path in result.figures.items():
        err.print(f"figure {key}: {path}")
    err.print(f"recorded as run {result.record_id} in {store!r} ({result.elapsed_s:.1f} s); "
              f"`layerlab report {result.record_id} -o report.html` makes its page")


_esc = escape_markup


def _maybe_report(store, record_id: int, path: Path | None) -> None:
    if path is None:
        return
    from ..report import write_report
    written = write_report(store, [record_id], path)
    err.print(f"wrote {written}")


def sweep_command(
    spec: str = typer.Argument(..., help="spec file or preset name"),
    set_: list[str] = typer.Option(..., "--set", help="PATH=V1,V2,... (an axis) or PATH=LOW:HIGH (a range, with "
                                                       "--random); PATH=VALUE with one value just overrides"),
    random: Optional[int] = typer.Option(None, "--random", min=1, help="sample N combinations instead of the grid"),
    seed: int = typer.Option(0, "--seed", help="seed of the random sampling"),
    workers: int = WorkersOpt,
    ray: Optional[str] = RayOpt,
    db: Optional[str] = DbOpt,
    out_dir: Path = OutOpt,
    report: Optional[Path] = ReportOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Run a spec over a grid (or random sample) of values; every trial is a run in the store."""
    from .axes import parse_axis
    from .sweep import sweep
    axes, overrides = [], []
    for item in set_:
        axis = parse_axis(item)
        if not axis.is_range and len(axis.values) == 1:
            overrides.append(item)
        else:
            axes.append(axis)
    if not axes:
        raise SpecError(Problem("no --set gives more than one value, so there is nothing to sweep",
                                "e.g. --set train.lr=1e-3,1e-2,0.1"))
    store = _store(db)
    err.print(f"sweep of {spec}: " + ", ".join(a.path for a in axes)
              + (f", {random} random trials" if random else "") + (f" on Ray ({ray})" if ray else
                                                                   f", {workers} worker(s)"))
    result = sweep(spec, axes, store=store, random=random, seed=seed, overrides=overrides, workers=workers, ray=ray,
                   out_dir=out_dir, on_done=_progress)
    _print_result(result, json_out=json_out, store=store)
    _maybe_report(store, result.record_id, report)


def lr_find_command(
    spec: str = typer.Argument(..., help="spec file or preset name"),
    set_: Optional[list[str]] = typer.Option(None, "--set", help="key=value override (repeatable)"),
    start: float = typer.Option(1e-7, "--start", help="first learning rate"),
    end: float = typer.Option(10.0, "--end", help="last learning rate"),
    steps: int = typer.Option(100, "--steps", min=10, help="updates at most"),
    stop_factor: float = typer.Option(4.0, "--stop-factor", help="stop once the smoothed loss exceeds this × its minimum"),
    db: Optional[str] = DbOpt,
    out_dir: Path = OutOpt,
    report: Optional[Path] = ReportOpt,
    json_out: bool = JsonOpt,
) -> None:
    """The learning-rate range test: loss against an exponentially growing learning rate; suggests one."""
    from .lr_find import lr_find
    store = _store(db)
    result = lr_find(spec, store=store, overrides=list(set_ or []), start=start, end=end, steps=steps,
                     stop_factor=stop_factor, out_dir=out_dir)
    _print_result(result, json_out=json_out, store=store)
    _maybe_report(store, result.record_id, report)


def study_command(
    name: Optional[str] = typer.Argument(None, help="study name; omit to list the studies"),
    quick: bool = typer.Option(False, "--quick", help="the reduced form (small subsets, few epochs; for CI)"),
    option: Optional[list[str]] = typer.Option(None, "--opt", help="a study option KEY=VALUE, e.g. --opt epochs=10 "
                                                                   "(`layerlab study` lists them)"),
    workers: int = WorkersOpt,
    ray: Optional[str] = RayOpt,
    db: Optional[str] = DbOpt,
    out_dir: Path = OutOpt,
    report: Optional[Path] = ReportOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Run a named study (toy-functions, classifiers, capacity, autoencoder-pca, init) into the store."""
    from . import STUDIES, get_study
    from .options import options_from_cli
    if name is None:
        _list_studies(STUDIES.values())
        return
    study = get_study(name)
    options = options_from_cli(study.options, list(option or []), quick=quick)  # before the store is touched
    store = _store(db)
    err.print(f"study {name}{' (quick)' if quick else ''}: {study.doc}")
    result = study.load().run(store, options, quick=quick, out_dir=out_dir, workers=workers, ray=ray)
    _print_result(result, json_out=json_out, store=store)
    _maybe_report(store, result.record_id, report)


def _list_studies(studies) -> None:
    from .options import describe_field
    table = RichTable(title="Studies (`layerlab study NAME [--quick] [--opt KEY=VALUE ...]`)", title_justify="left")
    table.add_column("name", style="bold")
    table.add_column("what it shows")
    for s in studies:
        table.add_row(s.name, s.doc)
    out.print(table)
    table = RichTable(title="Study options (`--opt KEY=VALUE`; values are YAML)", title_justify="left")
    for col in ("study", "option", "type", "default", "--quick", "what it sets"):
        table.add_column(col, overflow="fold")
    for s in studies:
        full, quick = s.options().model_dump(), s.options.quick().model_dump()
        for key, f in s.options.model_fields.items():
            table.add_row(s.name, key, describe_field(s.options, key), _esc(_yaml_value(full[key])),
                          _esc(_yaml_value(quick[key])), _esc(f.description or ""))
    out.print(table)


def _yaml_value(v) -> str:
    return "null" if v is None else str(v)


def report_command(
    targets: list[str] = typer.Argument(..., help="run or record ids, study names (their latest record), "
                                                  "'sweep', 'lr-find' or 'latest'"),
    output: Path = typer.Option(Path("report.html"), "--output", "-o", help="the HTML file to write"),
    title: Optional[str] = typer.Option(None, "--title", help="page title"),
    db: Optional[str] = DbOpt,
) -> None:
    """One self-contained HTML page (embedded figures, specs, tables, environment) for runs, sweeps and studies."""
    from ..report import write_report
    store = _store(db)
    path = write_report(store, targets, output, title=title)
    err.print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB)")


def register(app: typer.Typer) -> None:
    """Attach the study commands to the main CLI (a LabTyper: user errors exit 2)."""
    app.command("sweep")(sweep_command)
    app.command("lr-find")(lr_find_command)
    app.command("study")(study_command)
    app.command("report")(report_command)
