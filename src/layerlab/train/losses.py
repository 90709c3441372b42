"""Losses, resolved by name, and the objective that ties a loss to a task.

* ``cross_entropy`` — softmax cross-entropy on logits against class labels (classification).
* ``mse`` — mean squared error, averaged over every output value. Regression compares with the
  targets; reconstruction with the *prepared* (normalised) input, both flattened per example;
  classification with one-hot targets.
* ``bce`` — binary cross-entropy, averaged over every output value. Classification compares
  with one-hot targets. Reconstruction and regression targets are clamped to [0, 1] (use
  ``normalize: 0..1``: with ``-1..1`` the negative half of the inputs is clipped to 0). If the
  model ends with ``sigmoid`` its outputs are probabilities and plain BCE is used, with the
  outputs clamped to [1e-7, 1 − 1e-7] so a saturated unit gives a large finite loss rather
  than inf; otherwise the outputs are logits and BCE-with-logits is used (numerically safe).

Probabilities shown to people (predictions, confusion matrix, worst examples): softmax of the
outputs (sigmoid for ``bce``), or the outputs themselves when the model already ends with
softmax (sigmoid for ``bce``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from ..errors import Problem, SpecError

__all__ = ["Loss", "LOSSES", "Objective", "make_objective"]

_EPS = 1e-7


@dataclass(frozen=True)
class Loss:
    name: str
    doc: str
    # (outputs (B, ...), target, objective) -> per-example loss (B,)
    per_example: Callable[[torch.Tensor, torch.Tensor, "Objective"], torch.Tensor]
    # (outputs, target, objective) -> mean loss, the form the hot loop calls
    mean: Callable[[torch.Tensor, torch.Tensor, "Objective"], torch.Tensor]


def _dense_target(out: torch.Tensor, target: torch.Tensor, obj: "Objective") -> torch.Tensor:
    """Classification labels as one-hot floats; other targets as float, flattened like ``out``."""
    if obj.task == "classification":
        return F.one_hot(target, obj.num_classes).to(out.dtype)  # (B, C)
    return target.reshape(out.shape[0], -1).to(out.dtype)  # (B, values)


def _mse_elements(out, target, obj):
    out = out.float().reshape(out.shape[0], -1)  # (B, values)
    return F.mse_loss(out, _dense_target(out, target, obj), reduction="none")


def _bce_elements(out, target, obj):
    out = out.float().reshape(out.shape[0], -1)  # (B, values)
    t = _dense_target(out, target, obj)
    if obj.task != "classification":
        t = t.clamp(0.0, 1.0)
    if obj.output_activation == "sigmoid":
        return F.binary_cross_entropy(out.clamp(_EPS, 1.0 - _EPS), t, reduction="none")
    return F.binary_cross_entropy_with_logits(out, t, reduction="none")


LOSSES: dict[str, Loss] = {l.name: l for l in (
    Loss("cross_entropy", "Softmax cross-entropy of the logits against the class label.",
         lambda o, t, obj: F.cross_entropy(o.float(), t, reduction="none"),
         lambda o, t, obj: F.cross_entropy(o.float(), t)),
    Loss("mse", "Mean squared error over every output value (one-hot targets for classes).",
         lambda o, t, obj: _mse_elements(o, t, obj).mean(1),
         lambda o, t, obj: _mse_elements(o, t, obj).mean()),
    Loss("bce", "Binary cross-entropy over every output value (one-hot targets for classes).",
         lambda o, t, obj: _bce_elements(o, t, obj).mean(1),
         lambda o, t, obj: _bce_elements(o, t, obj).mean()),
)}


@dataclass(frozen=True)
class Objective:
    """What the model is trained to do: task, loss and how to read its outputs."""

    task: str                      # classification | regression | reconstruction
    loss: str                      # a LOSSES name
    num_classes: int | None = None
    output_activation: str | None = None   # the model's last layer if softmax/sigmoid, else None

    @property
    def classifies(self) -> bool:
        return self.task == "classification"

    def target(self, x_prepared: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """What the outputs are compared with: the labels, or the prepared input (reconstruction)."""
        return x_prepared if self.task == "reconstruction" else y

    def __call__(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean loss of a batch (float32 even under autocast)."""
        return LOSSES[self.loss].mean(out, target, self)

    def per_example(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return LOSSES[self.loss].per_example(out, target, self)

    def probabilities(self, out: torch.Tensor) -> torch.Tensor:
        """Class probabilities (B, C) as shown to people; NaN stays NaN."""
        out = out.float()
        own = "sigmoid" if self.loss == "bce" else "softmax"
        if self.output_activation == own:
            return out
        return torch.sigmoid(out) if own == "sigmoid" else torch.softmax(out, dim=1)


def make_objective(task: str, loss: str, *, num_classes: int | None, last_layer: str | None) -> Objective:
    """The objective for a resolved (task, loss) pair (see ``spec.resolve_objective``)."""
    if loss not in LOSSES:
        raise SpecError(Problem(f"unknown loss {loss!r}", f"use one of: {', '.join(LOSSES)}", field="train.loss"))
    activation = last_layer if last_layer in ("softmax", "sigmoid") else None
    return Objective(task, loss, num_classes if task == "classification" else None, activation)
