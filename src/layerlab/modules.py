"""Torch modules the layer catalogue builds that torch itself does not have (imported by factories)."""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["Reshape"]


class Reshape(nn.Module):
    """Reshape every example to ``shape``; the batch dimension is kept."""

    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)  # (B, *shape)

    def extra_repr(self) -> str:
        return f"shape={self.shape}"
