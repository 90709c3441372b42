"""Static figures of runs (matplotlib, Agg): metric curves and prediction grids.

Used by the CLI (`runs compare --plot`, `predict --grid`) and the HTML report. Library code:
writes a PNG and returns its path, prints nothing.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .errors import LayerlabError
from .textfmt import pct

__all__ = ["plot_curves", "plot_predictions"]

_LABELS = {"cost": "cost (train loss)", "train_accuracy": "train accuracy", "test_accuracy": "test accuracy",
           "test_loss": "test loss", "examples_per_sec": "examples / sec"}


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path: Path | str) -> Path:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp.png")
    try:
        fig.savefig(tmp, dpi=110)
        tmp.replace(path)  # never leave a half-written PNG under the asked name
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise LayerlabError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        _pyplot().close(fig)
    return path


def plot_curves(series: dict[str, dict[str, list[tuple[int, float]]]], path: Path | str, *,
                metrics: list[str], log_x: bool = False) -> Path:
    """One panel per metric, one line per run: ``series[run_label][metric] = [(examples, value), ...]``."""
    plt = _pyplot()
    cols = min(2, len(metrics))
    rows = math.ceil(len(metrics) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.2 * cols, 3.8 * rows), squeeze=False)
    for ax, metric in zip(axes.flat, metrics):
        for label, by_metric in series.items():
            points = by_metric.get(metric) or []
            if points:
                x, y = zip(*points)
                ax.plot(x, y, label=label, marker="o" if len(points) < 30 else None, markersize=3)
        ax.set_title(_LABELS.get(metric, metric))
        ax.set_xlabel("examples trained")
        if log_x:
            ax.set_xscale("log")
        if "accuracy" in metric:
            ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(metrics):]:
        ax.axis("off")
    fig.tight_layout()
    return _save(fig, path)


def _fmt_prob(p) -> str:
    """Probabilities print truthfully: NaN (written as null or "NaN" in JSON) stays NaN%."""
    return pct(math.nan if p is None else p, digits=1)


def plot_predictions(images: np.ndarray, predictions: list[dict], class_names: list[str], path: Path | str, *,
                     title: str = "", cols: int = 5) -> Path:
    """Each test image beside its top-3 class bars, green when the top class is right, red when wrong.

    ``images``: (N, C, H, W) raw pixels; ``predictions[i]``: {"label", "top": [[class, prob], ...], "correct"}.
    """
    plt = _pyplot()
    n = len(predictions)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols * 2, figsize=(cols * 3.2, rows * 1.45), squeeze=False,
                             gridspec_kw={"width_ratios": [1, 1.6] * cols})
    for ax in axes.flat:
        ax.axis("off")
    for k, pred in enumerate(predictions):
        r, c = divmod(k, cols)
        ax_img, ax_bar = axes[r][2 * c], axes[r][2 * c + 1]
        img = images[k].astype(np.float32)
        if img.shape[0] == 1:
            ax_img.imshow(img[0], cmap="gray")
        else:
            lo, hi = float(img.min()), float(img.max()) or 1.0
            ax_img.imshow(((img - lo) / max(hi - lo, 1e-9)).transpose(1, 2, 0))  # (H, W, C)
        truth = class_names[pred["label"]] if class_names else str(pred["label"])
        ax_img.set_title(truth, fontsize=7)
        top = pred["top"][:3]
        colour = "#2e9d4f" if pred.get("correct") else "#d1453b"
        probs = [0.0 if _fmt_prob(p) == "NaN%" else float(p) for _, p in top]
        ax_bar.axis("on")
        ax_bar.barh(range(len(top))[::-1], probs, color=[colour] + ["#9aa5b1"] * (len(top) - 1))
        ax_bar.set_xlim(0, 1)
        ax_bar.set_yticks(range(len(top))[::-1])
        ax_bar.set_yticklabels([f"{class_names[c] if class_names else c} {_fmt_prob(p)}" for c, p in top],
                               fontsize=6)
        ax_bar.set_xticks([])
        for side in ("top", "right", "bottom"):
            ax_bar.spines[side].set_visible(False)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)
