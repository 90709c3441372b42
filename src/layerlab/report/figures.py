"""Static figures of sweeps and studies (matplotlib, Agg): each function writes one PNG and returns its path.

Inputs are plain data (lists of points read back from the store), so every figure can be
redrawn from the store alone. Non-finite values (a diverged trial's NaN or inf loss) are left
out of lines and shown as a red ``×`` where the trial diverged, never as a broken axis.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np

from ..plots import _pyplot, _save

__all__ = ["curves_figure", "final_vs_value_figure", "lr_find_figure", "scatter_grid_figure", "codes_figure",
           "reconstructions_figure", "bars_figure", "grad_norms_figure", "boundary_figure", "histograms_figure",
           "PALETTE"]

PALETTE = ["#1f6feb", "#d1453b", "#2e9d4f", "#e09b24", "#8250df", "#1b9aaa", "#bf3989", "#6e7781", "#953800",
           "#0a3069"]
_TITLES = {"cost": "train loss (cost)", "train_accuracy": "train accuracy", "test_accuracy": "test accuracy",
           "test_loss": "test loss"}


def _style(ax) -> None:
    ax.grid(alpha=0.25, linewidth=0.6)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(labelsize=8)


def _finite(points: Sequence[tuple[float, float]]) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for x, y in points:
        if y is not None and math.isfinite(y) and x is not None and math.isfinite(x):
            xs.append(x)
            ys.append(y)
    return xs, ys


def curves_figure(series: dict[str, dict[str, list[tuple[float, float]]]], path: Path | str, *,
                  metrics: list[str], diverged: Sequence[str] = (), title: str = "",
                  xlabel: str = "examples trained", colours: dict[str, str] | None = None,
                  styles: dict[str, dict] | None = None, log_y: bool | None = None, cols: int = 2) -> Path:
    """One panel per metric, one line per label: ``series[label][metric] = [(x, value), ...]``.

    Loss panels use a log y axis when the values span more than two decades (``log_y`` forces it).
    Labels in ``diverged`` get a red ``×`` at their last finite point.
    """
    plt = _pyplot()
    cols = min(cols, len(metrics))
    rows = math.ceil(len(metrics) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.6 * cols, 3.5 * rows), squeeze=False)
    labels = list(series)
    for ax, metric in zip(axes.flat, metrics):
        all_y = []
        for i, label in enumerate(labels):
            xs, ys = _finite(series[label].get(metric) or [])
            colour = (colours or {}).get(label, PALETTE[i % len(PALETTE)])
            kw = dict(color=colour, linewidth=1.5, label=label)
            kw.update((styles or {}).get(label, {}))
            if xs:
                ax.plot(xs, ys, **kw)
                all_y += ys
                if label in diverged:
                    ax.plot(xs[-1], ys[-1], marker="x", color="#d1453b", markersize=9, mew=2, linestyle="none")
        ax.set_title(_TITLES.get(metric, metric), fontsize=10)
        ax.set_xlabel(xlabel, fontsize=8)
        if "accuracy" in metric:
            ax.set_ylim(0, 1)
        elif all_y and (log_y or (log_y is None and min(all_y) > 0 and max(all_y) / min(all_y) > 100)):
            ax.set_yscale("log")
        _style(ax)
    for ax in list(axes.flat)[len(metrics):]:
        ax.axis("off")
    handles, names = axes.flat[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, names, loc="lower center", ncol=min(len(names), 5), fontsize=8, frameon=False,
                   bbox_to_anchor=(0.5, 0.0))
    if title:
        fig.suptitle(title, fontsize=11)
    legend_rows = math.ceil(len(names) / 5) if handles else 0
    fig.tight_layout(rect=(0, 0.045 * legend_rows + 0.01, 1, 1))
    return _save(fig, path)


def final_vs_value_figure(points: list[dict], path: Path | str, *, axis_label: str, log_x: bool,
                          metrics: list[tuple[str, str]], title: str = "") -> Path:
    """Final metrics against the swept value.

    ``points``: ``[{"x": value, "group": label, "status": ..., metric: value, ...}]``; ``metrics``:
    ``[(key, title), ...]`` — each panel draws the train and test variants when both keys exist
    (``("loss", "loss")`` plots ``train_loss`` and ``test_loss``). Categorical values
    (optimisers, models) get evenly spaced positions. Diverged points: a red × at the top.
    """
    plt = _pyplot()
    numeric = all(isinstance(p["x"], (int, float)) and not isinstance(p["x"], bool) for p in points)
    cats = [] if numeric else list(dict.fromkeys(str(p["x"]) for p in points))
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.2 * len(metrics), 3.6), squeeze=False)
    groups = list(dict.fromkeys(p.get("group", "") for p in points))
    for ax, (key, panel_title) in zip(axes.flat, metrics):
        top = 0.0
        for gi, group in enumerate(groups):
            pts = sorted((p for p in points if p.get("group", "") == group),
                         key=lambda p: p["x"] if numeric else cats.index(str(p["x"])))
            for split, style in (("train", "--"), ("test", "-")):
                name = f"{split}_{key}"
                xs, ys = [], []
                for p in pts:
                    v = p.get(name)
                    if isinstance(v, (int, float)) and math.isfinite(v):
                        xs.append(p["x"] if numeric else cats.index(str(p["x"])))
                        ys.append(v)
                if xs:
                    top = max(top, max(ys))
                    label = f"{group} {split}".strip()
                    ax.plot(xs, ys, style, marker="o", markersize=4, color=PALETTE[gi % len(PALETTE)],
                            label=label, alpha=1.0 if split == "test" else 0.6)
        bad = [p for p in points if p.get("status") in ("diverged", "failed")]
        for p in bad:
            x = p["x"] if numeric else cats.index(str(p["x"]))
            y = 1.0 if "accuracy" in key else (top * 1.05 if top else 1.0)
            ax.plot([x], [y], marker="x", color="#d1453b", markersize=10, mew=2, linestyle="none")
            ax.annotate(p["status"], (x, y), textcoords="offset points", xytext=(0, -13), ha="center",
                        fontsize=7, color="#d1453b")
        if numeric and log_x:
            ax.set_xscale("log")
        if not numeric:
            ax.set_xticks(range(len(cats)))
            ax.set_xticklabels(cats, fontsize=8, rotation=15)
        if "accuracy" in key:
            ax.set_ylim(0, 1.05)
        ax.set_xlabel(axis_label, fontsize=9)
        ax.set_title(panel_title, fontsize=10)
        _style(ax)
        ax.legend(fontsize=7, frameon=False)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return _save(fig, path)


def lr_find_figure(lrs: list[float], losses: list[float], smoothed: list[float], path: Path | str, *,
                   suggested: float | None, steepest: float | None, min_lr: float | None, title: str = "") -> Path:
    """Loss (raw, faint; smoothed, bold) against the learning rate on a log axis, suggestions marked."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.2, 4.0))
    _, raw = _finite(list(zip(lrs, losses)))
    ax.plot(*_finite(list(zip(lrs, losses))), color="#9aa5b1", linewidth=0.8, label="loss")
    xs, ys = _finite(list(zip(lrs, smoothed)))
    ax.plot(xs, ys, color="#1f6feb", linewidth=2, label="smoothed loss")
    if ys:
        lo = min(ys + raw)
        hi = min(max(ys), 4 * min(ys) if min(ys) > 0 else max(ys))
        ax.set_ylim(lo - 0.05 * (hi - lo + 1e-12), hi + 0.1 * (hi - lo + 1e-12))
    for value, colour, name in ((steepest, "#2e9d4f", "steepest descent"), (min_lr, "#e09b24", "minimum / 10")):
        if value:
            ax.axvline(value, color=colour, linestyle="--", linewidth=1.2, label=f"{name}: {value:.2g}")
    if suggested:
        y = float(np.interp(math.log(suggested), np.log(xs), ys)) if xs else None
        if y is not None:
            ax.plot([suggested], [y], marker="o", color="#d1453b", markersize=8, label=f"suggested: {suggested:.2g}")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate", fontsize=9)
    ax.set_ylabel("training loss", fontsize=9)
    _style(ax)
    ax.legend(fontsize=8, frameon=False)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def scatter_grid_figure(panels: list[list[dict]], path: Path | str, *, row_titles: list[str],
                        col_titles: list[str], title: str = "") -> Path:
    """Predicted against true values, one panel per (row, column): ``panels[r][c] = {"true": [...],
    "pred": [...], "note": "..."}`` (None leaves the panel empty); the diagonal is y = x."""
    plt = _pyplot()
    rows, cols = len(panels), max(len(r) for r in panels)
    fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols, 2.9 * rows), squeeze=False)
    for r, row in enumerate(panels):
        for c in range(cols):
            ax = axes[r][c]
            panel = row[c] if c < len(row) else None
            if not panel:
                ax.axis("off")
                continue
            t, p = np.asarray(panel["true"], float), np.asarray(panel["pred"], float)
            ok = np.isfinite(t) & np.isfinite(p)
            ax.scatter(t[ok], p[ok], s=6, alpha=0.6, color=PALETTE[c % len(PALETTE)], edgecolors="none")
            if ok.any():
                lo, hi = float(min(t[ok].min(), p[ok].min())), float(max(t[ok].max(), p[ok].max()))
                ax.plot([lo, hi], [lo, hi], color="#6e7781", linewidth=0.8, linestyle="--")
            if panel.get("note"):
                ax.text(0.03, 0.95, panel["note"], transform=ax.transAxes, fontsize=7, va="top",
                        bbox=dict(facecolor="white", alpha=0.8, edgecolor="none", pad=1.5))
            if r == 0:
                ax.set_title(col_titles[c], fontsize=9)
            if c == 0:
                ax.set_ylabel(f"{row_titles[r]}\npredicted", fontsize=8)
            if r == rows - 1:
                ax.set_xlabel("true", fontsize=8)
            _style(ax)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return _save(fig, path)


def codes_figure(codes: list[tuple[str, np.ndarray]], labels: np.ndarray, class_names: Sequence[str],
                 path: Path | str, *, title: str = "") -> Path:
    """2-D codes side by side (one panel each), points coloured by class, one shared legend."""
    plt = _pyplot()
    cmap = plt.get_cmap("tab10")
    fig, axes = plt.subplots(1, len(codes), figsize=(5.2 * len(codes), 4.6), squeeze=False)
    labels = np.asarray(labels)
    for ax, (name, z) in zip(axes.flat, codes):
        z = np.asarray(z, float)
        for k in range(len(class_names)):
            sel = labels == k
            ax.scatter(z[sel, 0], z[sel, 1], s=5, alpha=0.6, color=cmap(k % 10), edgecolors="none",
                       label=class_names[k])
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("code 1", fontsize=8)
        ax.set_ylabel("code 2", fontsize=8)
        _style(ax)
    handles, names = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=min(len(names), 10), fontsize=8, frameon=False,
               markerscale=3, bbox_to_anchor=(0.5, 0.0))
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return _save(fig, path)


def reconstructions_figure(rows: list[tuple[str, np.ndarray]], path: Path | str, *, title: str = "") -> Path:
    """Image rows (originals, then each method's reconstructions of the same examples): (N, H, W) each."""
    plt = _pyplot()
    n = rows[0][1].shape[0]
    fig, axes = plt.subplots(len(rows), n, figsize=(1.05 * n + 1.2, 1.15 * len(rows) + 0.4), squeeze=False)
    for r, (name, images) in enumerate(rows):
        for c in range(n):
            ax = axes[r][c]
            ax.imshow(np.clip(images[c], 0, 1), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(name, fontsize=8, rotation=0, ha="right", va="center")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def bars_figure(groups: list[str], series: dict[str, list[float]], path: Path | str, *, ylabel: str,
                title: str = "", ylim: tuple[float, float] | None = None, fmt: str = "{:.3f}",
                log_y: bool = False) -> Path:
    """Grouped bars: ``series[name][i]`` is the bar of ``name`` in group ``groups[i]``, value printed on top."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(5.0, 1.0 + 1.1 * len(groups) * max(1, len(series)) * 0.6), 3.6))
    width = 0.8 / max(1, len(series))
    for i, (name, values) in enumerate(series.items()):
        xs = np.arange(len(groups)) + (i - (len(series) - 1) / 2) * width
        vals = [v if v is not None and math.isfinite(v) else 0.0 for v in values]
        bars = ax.bar(xs, vals, width * 0.92, label=name, color=PALETTE[i % len(PALETTE)])
        for b, v in zip(bars, values):
            text = fmt.format(v) if v is not None and math.isfinite(v) else "n/a"
            ax.annotate(text, (b.get_x() + b.get_width() / 2, b.get_height()), textcoords="offset points",
                        xytext=(0, 2), ha="center", fontsize=7)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(groups, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=9)
    if log_y:
        ax.set_yscale("log")
    if ylim:
        ax.set_ylim(*ylim)
    _style(ax)
    if len(series) > 1:
        ax.legend(fontsize=8, frameon=False)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def grad_norms_figure(norms: dict[str, dict[str, list[float]]], path: Path | str, *, title: str = "") -> Path:
    """Per-layer gradient norms over the first updates, one panel per initialiser (log y axis).

    ``norms[init][layer] = [norm at update 1, 2, ...]``; all-zero panels say so in words (a log
    axis cannot show zero).
    """
    plt = _pyplot()
    inits = list(norms)
    cols = min(4, len(inits))
    rows = math.ceil(len(inits) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.0 * rows), squeeze=False, sharey=True)
    for ax, init in zip(axes.flat, inits):
        any_positive = False
        for i, (layer, values) in enumerate(norms[init].items()):
            v = np.asarray(values, float)
            steps = np.arange(1, len(v) + 1)
            ok = np.isfinite(v) & (v > 0)
            if ok.any():
                any_positive = True
                ax.plot(steps[ok], v[ok], color=PALETTE[i % len(PALETTE)], linewidth=1.3, label=layer)
            else:
                ax.plot([], [], color=PALETTE[i % len(PALETTE)], label=f"{layer} (all 0)")
        if any_positive:
            ax.set_yscale("log")
        zero_layers = [layer for layer, v in norms[init].items() if not np.any(np.asarray(v, float) > 0)]
        if zero_layers:
            ax.text(0.5, 0.05, "zero gradient: " + ", ".join(zero_layers), transform=ax.transAxes, ha="center",
                    fontsize=7, color="#d1453b")
        ax.set_title(init, fontsize=10)
        ax.set_xlabel("update", fontsize=8)
        _style(ax)
        ax.legend(fontsize=7, frameon=False)
    axes[0][0].set_ylabel("gradient norm", fontsize=8)
    for ax in list(axes.flat)[len(inits):]:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return _save(fig, path)


# TensorFlow Playground's colours: orange low / negative, blue high / positive (as inside.js draws them).
_PLAYGROUND_CMAP = ("#f59322", "#e8eaeb", "#0877bd")


def boundary_figure(grid: np.ndarray, extent: list[list[float]], points: dict | None, path: Path | str, *,
                    value: str, classification: bool, title: str = "") -> Path:
    """The model's value over the input plane (``grid[row=y, col=x]``) under the training and test points.

    ``points``: ``views_read.read_points`` (train filled, test ringed), or None.
    """
    from matplotlib.colors import LinearSegmentedColormap
    plt = _pyplot()
    cmap = LinearSegmentedColormap.from_list("playground", _PLAYGROUND_CMAP)
    (x0, x1), (y0, y1) = extent
    lo, hi = (0.0, 1.0) if classification else (float(np.nanmin(grid)), float(np.nanmax(grid)))
    fig, ax = plt.subplots(figsize=(5.0, 4.4))
    im = ax.imshow(grid, origin="lower", extent=(x0, x1, y0, y1), cmap=cmap, vmin=lo, vmax=hi,
                   interpolation="bilinear", aspect="auto")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03).set_label(value, fontsize=8)
    for split, ring in (("train", False), ("test", True)):
        p = (points or {}).get(split)
        if not p or not p["x"]:
            continue
        xy = np.asarray(p["x"], float)
        y = np.asarray(p["y"], float)
        c_lo, c_hi = (0.0, 1.0) if classification else (float(y.min()), float(y.max()))
        ax.scatter(xy[:, 0], xy[:, 1], c=y, cmap=cmap, vmin=c_lo, vmax=c_hi, s=14 if ring else 11,
                   edgecolors="#1c2128" if ring else "white", linewidths=0.7, label=f"{split} ({len(y)})")
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    if points:
        ax.legend(fontsize=7, loc="upper right", framealpha=0.8)
    _style(ax)
    ax.grid(False)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def histograms_figure(layers: list[dict], path: Path | str, *, title: str = "", shown: int = 30) -> Path:
    """TensorBoard-style stacked (offset) histograms: one row per layer, weights and gradients side by side.

    ``layers``: ``views_read.read_histograms(...)["layers"]``; at most ``shown`` evaluation points per
    panel (evenly picked), the newest in front (lowest, darkest).
    """
    plt = _pyplot()
    rows = max(1, len(layers))
    fig, axes = plt.subplots(rows, 2, figsize=(9.0, 2.3 * rows), squeeze=False)
    cmap = plt.get_cmap("Blues")
    for row, layer in zip(axes, layers):
        for ax, what in zip(row, ("weights", "grads")):
            pts = [p for p in layer["points"] if p[what] and p[what]["n"] > 0]
            if len(pts) > shown:
                pts = [pts[round(i * (len(pts) - 1) / (shown - 1))] for i in range(shown)]
            k = len(pts)
            top = max((max(p[what]["counts"]) for p in pts), default=1) or 1
            for i, p in enumerate(pts):
                edges = np.asarray(p[what]["edges"], float)
                centres = (edges[:-1] + edges[1:]) / 2
                base = k - 1 - i
                ys = base + 2.5 * np.asarray(p[what]["counts"], float) / top
                ax.fill_between(centres, base, ys, color=cmap(0.3 + 0.65 * i / max(1, k - 1)), edgecolor="white",
                                linewidth=0.5, zorder=i)
            if k:
                ax.set_yticks([0, k - 1], [f"step {pts[-1]['step']}", f"step {pts[0]['step']}"])
            else:
                ax.text(0.5, 0.5, "no gradient yet" if what == "grads" else "no finite values",
                        transform=ax.transAxes, ha="center", fontsize=8, color="#6e7781")
                ax.set_yticks([])
            ax.set_title(f"layer {layer['index'] + 1} · {layer['name']}: {'weights' if what == 'weights' else 'gradients'}",
                         fontsize=9)
            _style(ax)
            ax.grid(False)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return _save(fig, path)
