"""`layerlab data ...`: list, show and fetch data sets.

User errors raise DataError; the main CLI maps LayerlabError to its message and exit code 2.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn
from rich.markup import escape
from rich.table import Table

from ..cli_support import LabTyper, out as console
from .catalogue import DATASETS, DatasetInfo, get_info
from .fetch import fetch, file_problems, locate, search_dirs

app = LabTyper(help="Data sets: list them, show their statistics, fetch their files.")


def _shape(t) -> str:
    return "×".join(map(str, t))


def _labels(info: DatasetInfo) -> str:
    if info.task == "classification":
        return f"{info.num_classes} classes"
    names = f" [{', '.join(info.target_names)}]" if info.target_names else ""
    return f"target {_shape(info.target_shape)}{names}"


def _where(info: DatasetInfo) -> str:
    if info.source == "bundled":
        return "bundled (scikit-learn)"
    if info.source == "generated":
        return "generated"
    found = locate(info.name)
    if found:
        return f"[green]{escape(str(found))}[/]"
    odd = file_problems(info.name)
    if odd:  # present but unusable: say what is wrong, not just "missing"
        more = f" (and {len(odd) - 1} more)" if len(odd) > 1 else ""
        return f"[red]unusable[/]: {escape(odd[0])}{more}"
    return "[red]missing[/] (layerlab data fetch " + info.name + ")"


@app.command("list")
def list_() -> None:
    """Each data set, its shapes and classes, and where its files were found."""
    table = Table(title="layerlab data sets")
    for col in ("name", "task", "input", "labels", "train/test"):
        table.add_column(col, no_wrap=True)
    table.add_column("where", overflow="fold")
    for info in DATASETS.values():
        table.add_row(info.name, info.task, _shape(info.input_shape), _labels(info),
                      f"{info.train_size}/{info.test_size}", _where(info))
    console.print(table)


@app.command()
def show(name: str = typer.Argument(..., help="data set name (see `layerlab data list`)"),
         grid: Optional[Path] = typer.Option(None, "--grid", help="write a PNG grid of samples"),
         download: bool = typer.Option(True, "--download/--no-download",
                                       help="download missing files from the mirrors")) -> None:
    """Statistics: example counts, shapes, pixel range, class balance (or target mean/std)."""
    info = get_info(name)
    from .resident import load_dataset  # torch: only `show` loads tensors
    ds = load_dataset(name, normalize="none", download=download)
    st = ds.stats()
    console.print(f"[bold]{info.name}[/] — {info.doc}")
    if info.citation:
        console.print(f"[dim]{info.citation}[/]")
    where = ds_dir if (ds_dir := locate(name)) else _where(info)
    console.print(f"source: {where}")
    console.print("examples: " + ", ".join(f"{k} {v:,}" for k, v in st["counts"].items()))
    console.print(f"input shape: {_shape(st['input_shape'])} {st['x_dtype']}   "
                  f"label shape: {_shape(st['label_shape']) or f'one class index of {info.num_classes}'}   "
                  f"pixel range: {st['pixel_range'][0]:g}..{st['pixel_range'][1]:g}")
    if "class_balance" in st:
        table = Table(title="class balance")
        table.add_column("class")
        splits = list(st["class_balance"])
        for s in splits:
            table.add_column(s, justify="right")
        for cls in st["class_balance"]["train"]:
            table.add_row(cls, *(f"{st['class_balance'][s][cls]:,}" for s in splits))
    else:
        table = Table(title="targets")
        for col in ("target", "split", "mean", "std"):
            table.add_column(col)
        for s, means in st["target_mean"].items():
            for t, m in means.items():
                table.add_row(t, s, f"{m:.4g}", f"{st['target_std'][s][t]:.4g}")
    console.print(table)
    if grid is not None:
        from .plots import save_sample_grid

        console.print(f"wrote {save_sample_grid(ds, grid)}")


@app.command("fetch")
def fetch_cmd(name: str = typer.Argument(..., help="data set name"),
              mirror: Optional[List[str]] = typer.Option(
                  None, "--mirror", help="base URL to download from (repeatable; tried in order)"),
              dest: Optional[Path] = typer.Option(None, "--dest", help="directory to write to")) -> None:
    """Download a data set's files (if missing), verify their sha256, report where they are."""
    info = get_info(name)
    if not info.files:
        console.print(f"{name} is {_where(info)}: nothing to fetch.")
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                  TransferSpeedColumn(), console=console, transient=True) as bar:
        tasks: dict[str, int] = {}

        def progress(file_name: str, done: int, total: int | None) -> None:
            if file_name not in tasks:
                tasks[file_name] = bar.add_task(file_name, total=total)
            bar.update(tasks[file_name], completed=done, total=total)

        where = fetch(name, mirrors=mirror or None, dest=dest, progress=progress)
    console.print(f"{name}: files in {where}")
    if dest is None and where not in search_dirs(name):
        console.print(f"[yellow]note[/]: {where} is not searched; set LAYERLAB_DATA")
