"""One self-contained HTML page for runs, sweeps and studies, built from the store alone.

``write_report(store, ["12", "toy-functions"], "report.html")``: every target becomes a
section — a run (its spec, results, curves, diagnosis), or a record (a sweep, an lr-find, a
study: its summary, tables, figures, members and specs). Figures are PNGs embedded as base64
``data:`` URIs; the page loads nothing from anywhere (no scripts, fonts or stylesheets from
the network), so it can be mailed, archived or put on a student's web page as one file. The
last section is the environment: versions, platform, CPU, the devices the runs used.

Targets: a run or record id (``12``), a study name (its latest record: ``toy-functions``),
``sweep`` or ``lr-find`` (the latest of that kind), or ``latest`` (the newest record).
The file is written atomically (a temporary file in the same directory, then renamed).
"""
from __future__ import annotations

import base64
import datetime as _dt
import html
import math
import os
import platform
import re
import tempfile
from pathlib import Path
from typing import Any

import yaml

from ..errors import LayerlabError, RunNotFound, StoreError
from ..textfmt import pct

__all__ = ["write_report", "render_report", "resolve_targets", "environment"]


# ----------------------------------------------------------------------------- targets

def resolve_targets(store, targets: list[str | int]) -> list[int]:
    """Run ids for the targets (see the module doc); a StoreError names a target that matches nothing."""
    from ..studies import STUDIES
    from ..studies.record import find_records
    ids = []
    for t in targets:
        text = str(t).strip()
        if re.fullmatch(r"\d+", text):
            store.get_run(int(text))  # StoreError if missing
            ids.append(int(text))
            continue
        if text in STUDIES:
            found = find_records(store, name=text, limit=1)
        elif text in ("sweep", "lr-find"):
            found = find_records(store, kind=text, limit=1)
        elif text == "latest":
            found = find_records(store, limit=1)
        else:
            raise StoreError(f"cannot read the report target {text!r}: give a run or record id, a study name "
                             f"({', '.join(STUDIES)}), 'sweep', 'lr-find' or 'latest'")
        if not found:
            raise RunNotFound(f"no {text} record in the store {store!r}; run `layerlab "
                             f"{'study ' + text if text in STUDIES else text} ...` first")
        ids.append(int(found[0]["id"]))
    return ids


# ----------------------------------------------------------------------------- sections

def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<figure><img alt="{_e(alt)}" src="data:image/png;base64,{data}"><figcaption>{_e(alt)}</figcaption></figure>'


def _table(title: str, columns: list[str], rows: list[list[Any]], note: str = "") -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = []
    for row in rows:
        cells = []
        for c, v in zip(columns, row):
            cls = ' class="num"' if _numeric(v) else ""
            if not cls and len(str(v)) > 60:
                cls = ' class="long"'
            cells.append(f"<td{cls}>{_cell(v)}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    cap = f"<caption>{_e(title)}</caption>" if title else ""
    foot = f'<p class="note">{_e(note)}</p>' if note else ""
    return f'<div class="table-wrap"><table>{cap}<thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>{foot}'


def _cell(v: Any) -> str:
    text = "—" if v is None else str(v)
    if text in ("diverged", "failed", "failed to learn"):
        return f'<span class="bad">{_e(text)}</span>'
    if text == "finished":
        return f'<span class="ok">{_e(text)}</span>'
    return _e(text)


def _numeric(v: Any) -> bool:
    return isinstance(v, (int, float)) or bool(re.fullmatch(r"[-+]?[\d,.]+(e[-+]?\d+)?%?|NaN%?|—", str(v)))


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "—"
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        return f"{v:.{digits}g}"
    return str(v)


def _when(ts: float | None) -> str:
    if not ts:
        return "—"
    return _dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


def _flow(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=1000).strip().removesuffix(
        "...").strip()


def _layer_yaml(layer: Any) -> str:
    """``relu`` or ``fc: {units: 100, bias: true}``: one layer on one line."""
    if isinstance(layer, dict) and len(layer) == 1:
        kind, params = next(iter(layer.items()))
        return f"{kind}: {_flow(params)}"
    return _flow(layer)


def _yaml_block(data: Any) -> str:
    """YAML as people write specs: block style, one layer per line (``- fc: {units: 100}``)."""
    if isinstance(data, dict) and isinstance(data.get("model"), list):
        text = ""
        for key, value in data.items():
            if key == "model":
                text += "model:\n" + "".join(f"  - {_layer_yaml(layer)}\n" for layer in value)
            else:
                text += yaml.safe_dump({key: value}, sort_keys=False, allow_unicode=True, default_flow_style=False,
                                       width=100)
    else:
        text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100)
    return f"<pre><code>{_e(text)}</code></pre>"


def _run_section(store, run: dict) -> tuple[str, str, str]:
    from ..report.figures import curves_figure
    from ..train.results import RunResults, curve_series
    rid = run["id"]
    r = RunResults.from_json(run.get("results") or {})  # a run without results: every value None
    title = f"Run {rid}: {run['name']}"
    failed = bool(run.get("results")) and r.outcome["kind"] == "failed_to_learn"  # train/outcome.py: one verdict
    shown_status = r.outcome["label"] if failed else run["status"]
    anchor = f"run-{rid}"
    parts = [f'<section id="{anchor}"><h2>{_e(title)}</h2>',
             f'<p class="meta">{_e(run.get("model") or "")} on {_e(run.get("dataset") or "")} · status '
             f'{_cell(shown_status)} · created {_when(run.get("created_at"))} · device {_e(run.get("device") or "—")}</p>']
    if failed:
        parts.append(f'<div class="callout bad-box"><strong>Failed to learn.</strong> {_e(r.outcome["text"])}</div>')
    elif run.get("diagnosis"):
        parts.append(f'<div class="callout"><strong>Diagnosis.</strong> {_e(run["diagnosis"])}</div>')
    if run.get("error"):
        parts.append(f'<div class="callout bad-box"><strong>Error.</strong> {_e(run["error"])}</div>')
    classifies = r.task == "classification"
    rows = [["status", shown_status], ["examples trained", _fmt(r.examples)],
            ["epochs", _fmt(r.epochs, 3)], ["parameters", _fmt(r.params)],
            ["final train loss", _fmt(r.train_loss)], ["final test loss", _fmt(r.test_loss)]]
    if classifies:
        rows += [["final train accuracy", pct(r.train_accuracy)],
                 ["final test accuracy", pct(r.test_accuracy)],
                 ["best test accuracy", pct(r.best_test_accuracy)]]
    rows += [["wall time (s)", _fmt(r.elapsed_s, 3)],
             ["training throughput (examples/s)", _fmt(r.examples_per_sec, 3)]]
    parts.append(_table("Results", ["quantity", "value"], rows))
    metrics = ["cost", "test_loss"] + (["train_accuracy", "test_accuracy"] if classifies else [])
    series = {run["name"]: {m: [(float(e), v) for e, v in curve_series(store, rid, m)] for m in metrics}}
    if any(series[run["name"]].values()):
        with tempfile.TemporaryDirectory() as tmp:
            path = curves_figure(series, Path(tmp) / "curves.png", metrics=metrics,
                                 diverged=[run["name"]] if run["status"] == "diverged" else [])
            parts.append(_img(path.read_bytes(), f"Training curves of run {rid}"))
    if r.history:
        cols = ["epoch", "examples", "train loss", "test loss"] + (["train acc", "test acc"] if classifies else [])
        hrows = [[_fmt(h.get("epoch"), 3), _fmt(h.get("examples")), _fmt(h.get("train_loss")),
                  _fmt(h.get("test_loss"))] + ([pct(h.get("train_accuracy")), pct(h.get("test_accuracy"))]
                                               if classifies else []) for h in r.history[-30:]]
        parts.append(_table("Per epoch", cols, hrows))
    parts.append(_activations_block(store, run))
    parts.append(_inside_block(store, run))
    parts.append(f"<details><summary>Spec (YAML)</summary>{_yaml_block(run['spec'])}</details></section>")
    return anchor, title, "".join(parts)


# ----------------------------------------------------------------------------- boundary and histograms over time


def _inside_block(store, run: dict) -> str:
    """The latest decision boundary (2-D data sets) and the stacked weight/gradient histograms, as
    stored at evaluation points (``train/views.py``); "" for a study's record or a run with none."""
    from ..data import DATASETS
    from ..report.figures import boundary_figure, histograms_figure
    from ..studies.record import is_record
    from ..train.views import has_plane
    from ..views_read import read_boundary, read_histograms, read_points
    if is_record(run):
        return ""
    parts = []
    info = DATASETS.get(run.get("dataset") or "")
    with tempfile.TemporaryDirectory() as tmp:
        if info is not None and has_plane(info) and store.view_steps(run["id"], "boundary"):
            got = read_boundary(store, run["id"])
            try:
                from ..spec import load_spec
                points = read_points(load_spec(run["spec"]).data.load())
            except LayerlabError:
                points = None
            meta = got["meta"]
            path = boundary_figure(got["grid"], meta["extent"], points, Path(tmp) / "boundary.png", value=meta["value"],
                                   classification=meta["task"] == "classification")
            parts += [f"<h3>Decision boundary at step {_fmt(got['step'])}</h3>",
                      f'<p class="note">{_e(meta["value"])} over the input plane after {_fmt(got["examples"])} '
                      "examples, under the training (filled) and test (ringed) points.</p>",
                      _img(path.read_bytes(), f"Decision boundary of run {run['id']}")]
        hist = read_histograms(store, run["id"])
        if hist["layers"]:
            path = histograms_figure(hist["layers"], Path(tmp) / "histograms.png")
            flagged = "".join(f"<li>{_e(d['text'])} (layer {d['layer'] + 1}, {_e(d['layer_name'])})</li>"
                              for d in hist["diagnoses"])
            parts += ["<h3>Weights and gradients over time</h3>",
                      f'<p class="note">Per layer, {hist["bins"]} equal bins over each tensor\'s range at '
                      f"{len(hist['steps'])} evaluation points; the newest in front.</p>",
                      f"<ul>{flagged}</ul>" if flagged else "",
                      _img(path.read_bytes(), f"Weight and gradient histograms of run {run['id']}")]
    return "".join(parts)


# ----------------------------------------------------------------------------- activations of one example

ACTIVATIONS_EXAMPLE = 0  # the fixed test example whose layer outputs a run's report shows


def _activations_block(store, run: dict) -> str:
    """Every layer's output for test example ``ACTIVATIONS_EXAMPLE`` and the conv filters, as the dashboard
    shows them (``server/activations.py``); a note saying why when they cannot be computed; "" if not images."""
    from ..data import DATASETS
    from ..server.activations import example_activations
    from ..server.datacache import DataCache
    from ..studies.record import is_record
    info = DATASETS.get(run.get("dataset") or "")
    if info is None or len(info.input_shape) != 3 or is_record(run):
        return ""
    try:
        out = example_activations(store, run["id"], DataCache(size=1), ACTIVATIONS_EXAMPLE)
    except LayerlabError as exc:
        return f'<p class="note">Activations of test example {ACTIVATIONS_EXAMPLE} not shown: {_e(exc)}</p>'
    w = out["weights"]
    what = "final weights" if w["source"] == "final" else "latest checkpoint"
    truth = f", true class {_e(out['class_name'] or out['label'])}" if out["label"] is not None else ""
    parts = [f"<h3>Activations of test example {ACTIVATIONS_EXAMPLE}</h3>",
             f'<p class="note">{what} after {_fmt(w["examples"])} examples{truth}. Feature maps are scaled from '
             f"each layer's min to its max (the first {out['max_channels']} channels); conv filters are scaled "
             "symmetrically, a zero weight mid-grey.</p>"]
    for layer in out["layers"]:
        parts.append(_activation_layer_html(layer))
    return "".join(parts)


def _activation_layer_html(layer: dict) -> str:
    shape = "×".join(str(n) for n in layer["output_shape"])
    head = (f'<h4>layer {layer["index"] + 1} · {_e(layer["kind"])} · {shape} · min {_fmt(layer["min"])} · '
            f'max {_fmt(layer["max"])}</h4>')
    pixel = "image-rendering:pixelated;border:1px solid #d0d7de;margin:0 3px 3px 0"
    if layer["view"] == "maps":
        body = "".join(f'<img alt="channel {c}" style="height:56px;{pixel}" src="data:image/png;base64,{png}">'
                       for c, png in enumerate(layer["maps"]))
        if len(layer["maps"]) < layer["channels"]:
            body += f'<p class="note">first {len(layer["maps"])} of {layer["channels"]} channels</p>'
    else:
        png = _vector_png(layer["values"])
        body = f'<img alt="{_e(layer["kind"])} output values" style="max-width:100%" src="data:image/png;base64,{png}">'
        if len(layer["values"]) < layer["channels"]:
            body += f'<p class="note">first {len(layer["values"])} of {layer["channels"]} values</p>'
    f = layer.get("filters")
    if f:
        body += (f'<p class="note">filters {"×".join(map(str, f["shape"]))}, weights {_fmt(f["min"])} … '
                 f'{_fmt(f["max"])}</p>')
        body += "".join(f'<img alt="filter {k}" style="height:30px;{pixel}" src="data:image/png;base64,{png}">'
                        for k, png in enumerate(f["images"]))
    return f"<div>{head}<div>{body}</div></div>"


def _vector_png(values: list) -> str:
    """A flat layer output as a small bar chart (matplotlib), base64 PNG; non-finite values drawn as 0."""
    import io
    from ..plots import _pyplot
    plt = _pyplot()
    ys = [v if isinstance(v, (int, float)) and math.isfinite(v) else 0.0 for v in values]
    fig, ax = plt.subplots(figsize=(7.5, 1.6))
    ax.bar(range(len(ys)), ys, width=1.0 if len(ys) > 64 else 0.8,
           color=["#d1453b" if y < 0 else "#1f6feb" for y in ys])
    ax.axhline(0, color="#6e7781", linewidth=0.6)
    ax.tick_params(labelsize=7)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


_KIND_TITLES = {"sweep": "Sweep", "lr-find": "Learning-rate range test", "study": "Study"}


def _record_section(store, run: dict) -> tuple[str, str, str]:
    from ..studies.record import load_record, members, record_kind
    data = load_record(store, run["id"])
    kind = record_kind(run)
    rid = run["id"]
    name = data.get("name")
    heading = data.get("title") or run["name"]
    if kind == "study":
        title = f"Study: {heading}" if heading.lower().startswith(name.replace("-", " ")[:4]) else \
            f"Study {name}: {heading}"
    else:
        title = f"{_KIND_TITLES.get(kind, kind)} {rid}: {heading}"
    anchor = f"{kind}-{rid}"
    parts = [f'<section id="{anchor}"><h2>{_e(title)}</h2>',
             f'<p class="meta">record run {rid} · status {_cell(run["status"])} · created '
             f'{_when(run.get("created_at"))} · took {_fmt(data.get("elapsed_s"), 3)} s · '
             f'{len(data.get("runs") or [])} member run(s)</p>']
    if data.get("text"):
        parts.append(f'<p class="summary">{_e(data["text"])}</p>')
    for t in data.get("tables", []):
        parts.append(_table(t["title"], t["columns"], t["rows"], t.get("note", "")))
    captions = data.get("captions") or {}
    for key, png in data.get("figure_bytes", {}).items():
        parts.append(_img(png, captions.get(key) or key.replace("_", " ").capitalize()))
    mem = members(store, rid)
    if mem:
        rows = []
        for m in mem:
            try:
                r = store.get_run(m["run_id"])
                status, diag = r["status"], r.get("diagnosis") or ""
            except StoreError:
                status, diag = "deleted", ""
            rows.append([m["run_id"], m.get("label", ""), status, diag if status != "finished" else ""])
        parts.append(f"<details><summary>Member runs ({len(mem)})</summary>"
                     f"{_table('', ['run', 'label', 'status', 'diagnosis'], rows)}</details>")
    options = data.get("options") or {}
    if kind == "study":
        parts.append(f"<details><summary>Study options (YAML)</summary>{_yaml_block(options)}</details>")
        specs = []
        for m in mem:
            try:
                specs.append(f"<h4>run {m['run_id']} · {_e(m.get('label', ''))}</h4>"
                             f"{_yaml_block(store.get_run(m['run_id'])['spec'])}")
            except StoreError:
                continue
        if specs:
            parts.append(f"<details><summary>Member specs (YAML)</summary>{''.join(specs)}</details>")
    else:
        if options:
            parts.append(f"<details><summary>{'Sweep' if kind == 'sweep' else 'Test'} settings (YAML)</summary>"
                         f"{_yaml_block(options)}</details>")
        parts.append(f"<details open><summary>Base spec (YAML)</summary>{_yaml_block(run['spec'])}</details>")
    parts.append("</section>")
    return anchor, title, "".join(parts)


# ----------------------------------------------------------------------------- environment

def environment(runs: list[dict] | None = None) -> dict:
    """Versions, platform, CPU and the devices (and recorded versions) of the given runs."""
    import importlib.metadata as md
    env: dict[str, Any] = {}
    for pkg in ("layerlab", "torch", "numpy", "scikit-learn", "matplotlib", "sqlalchemy", "ray"):
        try:
            env[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            env[pkg] = "not installed"
    env["python"] = platform.python_version()
    env["platform"] = platform.platform()
    env["cpu"] = _cpu_model()
    env["cores"] = os.cpu_count()
    try:
        import torch
        env["torch threads"] = torch.get_num_threads()
        env["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "not available"
    except ImportError:  # pragma: no cover
        pass
    if runs:
        env["devices used"] = ", ".join(sorted({r.get("device") or "—" for r in runs}))
        hosts = sorted({r.get("host") or "—" for r in runs})
        env["hosts"] = ", ".join(hosts)
        recorded = sorted({f"torch {(r.get('versions') or {}).get('torch', '?')}" for r in runs
                           if isinstance(r.get("versions"), dict)})
        if recorded:
            env["versions recorded by the runs"] = ", ".join(recorded)
    return env


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# ----------------------------------------------------------------------------- page

_CSS = """
:root { --ink:#1f2328; --muted:#59636e; --rule:#d8dee4; --accent:#1f6feb; --bg:#ffffff; --soft:#f6f8fa;
        --ok:#1a7f37; --bad:#cf222e; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin:0; background:var(--bg); color:var(--ink);
       font: 16px/1.6 "Iowan Old Style", "Palatino Linotype", Palatino, Georgia, "DejaVu Serif", serif; }
header.page { background: var(--soft); border-bottom: 1px solid var(--rule); }
header.page .inner, main { max-width: 1040px; margin: 0 auto; padding: 0 28px; }
header.page .inner { padding-top: 36px; padding-bottom: 22px; }
h1, h2, h3, h4, nav, .meta, table, figcaption, summary, .note, .kicker, footer {
  font-family: -apple-system, "Segoe UI", "Helvetica Neue", "DejaVu Sans", Arial, sans-serif; }
.kicker { text-transform: uppercase; letter-spacing: .08em; font-size: 12px; color: var(--accent); margin: 0 0 6px; font-weight: 600; }
h1 { font-size: 32px; line-height: 1.2; margin: 0 0 8px; letter-spacing: -.01em; }
.lede { color: var(--muted); margin: 0; font-size: 15px; }
nav.toc { margin: 26px 0 8px; padding: 16px 20px; border: 1px solid var(--rule); border-radius: 8px; background: #fff; }
nav.toc h2 { font-size: 13px; text-transform: uppercase; letter-spacing: .06em; color: var(--muted); margin: 0 0 6px; border: 0; padding: 0; }
nav.toc ol { margin: 0; padding-left: 20px; font-size: 14px; }
nav.toc a { color: var(--accent); text-decoration: none; }
nav.toc a:hover { text-decoration: underline; }
section { margin: 44px 0; }
h2 { font-size: 23px; margin: 0 0 6px; padding-bottom: 6px; border-bottom: 2px solid var(--ink); }
h4 { font-size: 14px; margin: 16px 0 4px; }
.meta { color: var(--muted); font-size: 13px; margin: 6px 0 14px; }
.summary { font-size: 17px; margin: 10px 0 18px; }
.callout { border-left: 4px solid #e09b24; background: #fff8e6; padding: 10px 14px; margin: 14px 0; font-size: 15px; }
.bad-box { border-left-color: var(--bad); background: #ffebe9; }
.table-wrap { overflow-x: auto; margin: 16px 0 4px; }
table { border-collapse: collapse; font-size: 13px; width: 100%; }
caption { text-align: left; font-weight: 600; font-size: 14px; padding: 0 0 6px; }
th, td { padding: 6px 10px; border-bottom: 1px solid var(--rule); text-align: left; vertical-align: top; }
th { background: var(--soft); font-weight: 600; border-bottom: 1px solid #afb8c1; white-space: nowrap; }
td.long { min-width: 320px; font-size: 12.5px; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tbody tr:nth-child(even) td { background: #fbfcfd; }
.note { color: var(--muted); font-size: 12.5px; margin: 4px 0 14px; }
.ok { color: var(--ok); font-weight: 600; }
.bad { color: var(--bad); font-weight: 600; }
figure { margin: 22px 0; }
figure img { max-width: 100%; height: auto; display: block; margin: 0 auto; border: 1px solid var(--rule); border-radius: 6px; }
figcaption { color: var(--muted); font-size: 12.5px; text-align: center; margin-top: 6px; }
details { margin: 10px 0; border: 1px solid var(--rule); border-radius: 6px; padding: 6px 12px; background: #fff; }
summary { cursor: pointer; font-size: 14px; font-weight: 600; color: var(--ink); }
pre { background: var(--soft); padding: 12px 14px; border-radius: 6px; overflow-x: auto; font-size: 12.5px; line-height: 1.45; }
code { font-family: "SFMono-Regular", Menlo, Consolas, "DejaVu Sans Mono", monospace; }
footer { max-width: 1040px; margin: 40px auto 30px; padding: 14px 28px 0; color: var(--muted); font-size: 12px; border-top: 1px solid var(--rule); }
@media print { header.page { background: none; } details { border: 0; } }
"""


def render_report(store, targets: list[str | int], *, title: str | None = None) -> str:
    """The report page as one HTML string."""
    from ..studies.record import is_record
    ids = resolve_targets(store, targets)
    if not ids:
        raise LayerlabError("nothing to report: give at least one run, sweep or study")
    sections, runs_seen = [], []
    for rid in dict.fromkeys(ids):
        run = store.get_run(rid)
        runs_seen.append(run)
        if is_record(run):
            anchor, heading, body = _record_section(store, run)
            from ..studies.record import members
            for m in members(store, rid):
                try:
                    runs_seen.append(store.get_run(m["run_id"]))
                except StoreError:
                    pass
        else:
            anchor, heading, body = _run_section(store, run)
        sections.append((anchor, heading, body))
    env = environment([r for r in runs_seen if not is_record(r)] or runs_seen)
    env_rows = [[k, v] for k, v in env.items()]
    env_section = ("environment", "Environment",
                   f'<section id="environment"><h2>Environment</h2>'
                   f'<p class="meta">Where this report was made, and what the runs recorded about themselves.</p>'
                   f'{_table("", ["item", "value"], env_rows)}</section>')
    sections.append(env_section)
    if title is None:
        title = sections[0][1] if len(sections) == 2 else f"layerlab report: {len(sections) - 1} items"
    toc = "".join(f'<li><a href="#{a}">{_e(h)}</a></li>' for a, h, _ in sections)
    now = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    from .. import __version__
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<meta name="generator" content="layerlab {__version__}">'
            f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
            f'<header class="page"><div class="inner"><p class="kicker">layerlab report</p><h1>{_e(title)}</h1>'
            f'<p class="lede">Generated {now} from the run store ({_e(_store_kind(store))}); '
            f'every number and figure below was read back from it.</p>'
            f'<nav class="toc"><h2>Contents</h2><ol>{toc}</ol></nav></div></header>'
            f"<main>{''.join(body for _, _, body in sections)}</main>"
            f"<footer>Made with layerlab {__version__} · one self-contained file: figures are embedded, "
            f"nothing is loaded from the network.</footer></body></html>\n")


def _store_kind(store) -> str:
    url = getattr(store, "url", "")
    if url.startswith("sqlite"):
        return "SQLite file " + Path(url.split(":///", 1)[-1]).name if ":///" in url else "SQLite"
    return "PostgreSQL"


def write_report(store, targets: list[str | int], path: str | Path, *, title: str | None = None) -> Path:
    """Render the report and write it atomically to ``path``; return the path."""
    page = render_report(store, targets, title=title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(page)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a report is meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
