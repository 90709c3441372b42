"""Static pictures of a data set (matplotlib, Agg backend): a labelled grid of samples."""
from __future__ import annotations

from pathlib import Path

import torch

from ..errors import DataError
from .resident import ResidentDataset

__all__ = ["save_sample_grid"]


def _label(ds: ResidentDataset, y: torch.Tensor) -> str:
    if ds.info.task == "classification":
        names = ds.info.class_names
        return names[int(y)] if names else str(int(y))
    return ", ".join(f"{float(v):.2f}" for v in y.reshape(-1))


def save_sample_grid(ds: ResidentDataset, path: Path | str, *, rows: int = 4, cols: int = 8,
                     split: str = "train", seed: int = 0) -> Path:
    """Write a PNG: image sets as a rows x cols grid titled by label; 2-D sets as a scatter."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = ds.split(split)
    path = Path(path)
    x, y = s.x.cpu(), s.y.cpu()
    if x.dim() == 4:
        n = min(rows * cols, len(x))
        idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:n]
        fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.3, rows * 1.5), squeeze=False)
        lo, hi = (ds.info.pixel_range or (float(x.min()), float(x.max())))
        for ax in axes.flat:
            ax.axis("off")
        for ax, i in zip(axes.flat, idx.tolist()):
            img = x[i].float()  # (C, H, W)
            if img.shape[0] == 1:
                ax.imshow(img[0].numpy(), cmap="gray", vmin=lo, vmax=hi)
            else:
                ax.imshow(((img - lo) / (hi - lo)).clamp(0, 1).permute(1, 2, 0).numpy())  # (H, W, C)
            ax.set_title(_label(ds, y[i]), fontsize=7)
    elif x.dim() == 2 and x.shape[1] == 2:
        fig, ax = plt.subplots(figsize=(5, 5))
        c = y.float().reshape(len(y), -1)[:, 0].numpy()
        sc = ax.scatter(x[:, 0].numpy(), x[:, 1].numpy(), c=c, cmap="coolwarm", s=10)
        fig.colorbar(sc, ax=ax, label="class" if ds.info.task == "classification" else "target")
        ax.set_aspect("equal")
    else:
        raise DataError(f"no picture for {ds.info.name}: --grid needs images or 2-D inputs, "
                        f"its inputs are {tuple(x.shape[1:])}")
    fig.suptitle(f"{ds.info.name} ({split})")
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=100)
    except OSError as e:
        raise DataError(f"cannot write {path}: {e.strerror or e}") from None
    finally:
        plt.close(fig)
    return path
