"""Diagnostics: per-layer probes, the evidence ring buffer, and explanations in words.

Probes (at every evaluation): per layer, the norm of the last update's gradient and of the
weights, and for ReLU layers the fraction of dead units (a unit is one output value —
a feature, or a channel at one position — that is zero for every example of an evaluation
batch). Values are read with one host sync.

Divergence: when a loss turns NaN/inf the trainer replays the steps since the last finite
checkpoint with per-step instrumentation (loss, largest |logit|, gradient norms) into an
``Evidence`` ring buffer, and ``explain_divergence`` turns it into a sentence a student can act
on. Not learning: ``Watch`` collects probe results and the cost curve and ``Watch.notes``
explains zero hidden gradients (all-zeros init), dead ReLU layers, a cost that jumped (with the lr it jumped at)
and a loss that does not move. Every "try lr ≤ …" comes from ``suggest_lr``: well below the lr that failed, and
never above what is known to work for the optimiser (``LR_CAPS``).
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

__all__ = ["StepRecord", "Evidence", "probe", "instrumented_step", "explain_divergence", "loss_event", "Watch",
           "layer_modules", "zero_init", "diagnosis_layer"]


def layer_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The model's top-level layers (``fc1``, ``relu1``, ...) as built by ``layerlab.build``."""
    return list(model.named_children())


_WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d)  # the layers an initialiser sets (not batch-norm's scale)


def _weighted(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(n, m) for n, m in layer_modules(model) if isinstance(m, _WEIGHTED)]


@torch.no_grad()
def probe(model: nn.Module, x_eval: torch.Tensor | None) -> dict:
    """Gradient and weight norms per layer, dead-ReLU fractions, and whether hidden gradients are zero.

    Returns ``{"metrics": {name: value}, "zero_hidden_grads": bool | None, "dead": {layer: fraction}}``;
    ``zero_hidden_grads`` is None when there is no gradient yet or no hidden weighted layer.
    """
    names, values = [], []
    for name, mod in layer_modules(model):
        params = list(mod.parameters())
        if not params:
            continue
        names.append(f"weight_norm/{name}")
        values.append(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.float()) for p in params])))
        grads = [p.grad for p in params if p.grad is not None]
        if grads:
            names.append(f"grad_norm/{name}")
            values.append(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.float()) for g in grads])))
    weighted = _weighted(model)
    hidden = [m.weight.grad for _, m in weighted[:-1] if m.weight.grad is not None]
    zero_index = None
    if hidden and len(hidden) == len(weighted) - 1:
        zero_index = len(values)
        values.append(torch.stack([g.abs().max() for g in hidden]).max())
    dead_names = []
    if x_eval is not None:
        relus = [(n, m) for n, m in layer_modules(model) if isinstance(m, nn.ReLU)]
        if relus:
            alive: dict[str, torch.Tensor] = {}
            hooks = [m.register_forward_hook(lambda mod, inp, out, n=n: alive.__setitem__(
                n, (out.reshape(out.shape[0], -1) > 0).any(0))) for n, m in relus]  # (units,)
            was_training = model.training
            model.eval()
            try:
                model(x_eval)
            finally:
                model.train(was_training)
                for h in hooks:
                    h.remove()
            for n, _ in relus:
                if n in alive:
                    dead_names.append(n)
                    values.append(1.0 - alive[n].float().mean())
    read = torch.stack([v.float() if isinstance(v, torch.Tensor) else torch.tensor(v) for v in values]).tolist() \
        if values else []
    metrics = dict(zip(names, read[:len(names)]))
    zero = None if zero_index is None else read[zero_index] == 0.0
    dead = dict(zip(dead_names, read[len(read) - len(dead_names):])) if dead_names else {}
    metrics.update({f"dead_relu/{n}": v for n, v in dead.items()})
    return {"metrics": metrics, "zero_hidden_grads": zero, "dead": dead}


@dataclass
class StepRecord:
    """One instrumented update, as replayed after a divergence."""

    step: int                   # 1-based update number
    lr: float
    loss: float
    logits_absmax: float
    grad_norm: float            # global, over every parameter
    layer_grad_norms: dict = field(default_factory=dict)
    weight_norm: float = math.nan  # global, before the update


class Evidence:
    """The last ``size`` instrumented updates."""

    def __init__(self, size: int = 64):
        self.records: deque[StepRecord] = deque(maxlen=size)

    def add(self, record: StepRecord) -> None:
        self.records.append(record)

    def to_list(self) -> list[dict]:
        return [asdict(r) for r in self.records]


def instrumented_step(step_model: nn.Module, model: nn.Module, opt: torch.optim.Optimizer, objective,
                      x: torch.Tensor, y: torch.Tensor, *, step: int, lr: float, amp: bool = False,
                      clip: float | None = None, loss_limit: float = math.inf) -> tuple[StepRecord, str | None]:
    """One update with everything measured (one sync): the replay after a divergence.

    Returns the record and, when something broke, what (``"the logits became inf"``, ...);
    then the update is not applied.
    """
    from .evaluation import autocast
    device = x.device
    with autocast(device, amp):
        out = step_model(x)
    loss = objective(out, objective.target(x, y))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    params = [q for q in model.parameters() if q.requires_grad]
    names, norms = [], []
    for name, mod in layer_modules(model):
        grads = [q.grad for q in mod.parameters() if q.grad is not None]
        if grads:
            names.append(name)
            norms.append(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.float()) for g in grads])))
    zero = torch.zeros((), device=device)
    total = torch.linalg.vector_norm(torch.stack(norms)) if norms else zero
    weights = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(q.detach().float()) for q in params])) \
        if params else zero
    head = [loss.detach().float(), out.detach().float().abs().max(), total.float(), weights]
    values = torch.stack(head + [n.float() for n in norms]).tolist()
    loss_v, logit_v, total_v, weight_v = values[:4]
    layer_norms = dict(zip(names, values[4:]))
    record = StepRecord(step, lr, loss_v, logit_v, total_v, layer_norms, weight_v)
    what = None
    if not math.isfinite(logit_v):
        what = f"the logits became {'NaN' if math.isnan(logit_v) else 'inf'}"
    elif not loss_v <= loss_limit:
        what = loss_event(loss_v)
    elif not math.isfinite(total_v):
        layer = next((n for n, v in layer_norms.items() if not math.isfinite(v)), "a layer")
        what = f"the gradient of {layer} became {'NaN' if math.isnan(total_v) else 'inf'}"
    if what is None:
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(params, clip)
        opt.step()
    return record, what


def loss_event(loss: float) -> str:
    """'the loss became NaN' / '... inf' / 'the loss exploded to 6e7'."""
    if math.isnan(loss):
        return "the loss became NaN"
    if math.isinf(loss):
        return "the loss became inf"
    return f"the loss exploded to {fmt_big(loss)}"


def zero_init(spec) -> bool:
    """Whether every fc/conv layer of a spec starts from the ``zeros`` initialiser."""
    from ..init import parse_init
    model_init, _ = parse_init(spec.train.init)
    inits = [(layer.init or model_init) for layer in spec.model if layer.kind in ("fc", "conv1d", "conv2d")]
    return bool(inits) and all(i is not None and i[0] == "zeros" for i in inits)


def fmt_big(x: float) -> str:
    """1e30 rather than 1e+30; 3,000 rather than 3000.0."""
    if not math.isfinite(x):
        return "inf" if x > 0 else ("nan" if math.isnan(x) else "-inf")
    if abs(x) >= 1e6:
        mantissa, exp = f"{x:.0e}".split("e")
        return f"{mantissa}e{int(exp)}"
    return f"{x:,.0f}" if abs(x) >= 10 else f"{x:.2g}"


def _fmt_lr(x: float) -> str:
    """0.1, 10, 1e35, 1e-5 (no '+', no leading zeros in the exponent)."""
    text = f"{x:g}"
    if "e" in text:
        mantissa, exp = text.split("e")
        text = f"{mantissa}e{int(exp)}"
    return text


# The largest learning rate known to train the small models of the practicum with each optimiser (Fashion-MNIST,
# fc and conv presets): a suggestion after a failure never goes above it (docs/metrics.md, "Divergence").
LR_CAPS = {"sgd": 0.5, "momentum": 0.5, "nesterov": 0.5, "adagrad": 0.5, "adadelta": 1.0,
           "rmsprop": 0.01, "adam": 0.01, "adamw": 0.01, "adamax": 0.01}
LR_FRACTION = 20  # a suggestion is at most the failed lr / 20: well below it, not one notch under


def suggest_lr(lr: float, optimizer: str | None = None) -> float:
    """The learning rate to try after ``lr`` failed: the largest 1-2-5 value at most ``lr / 20`` and at most what is
    known to work for ``optimizer`` (``LR_CAPS``; the smallest cap when it is unknown)."""
    cap = LR_CAPS.get(optimizer or "", min(LR_CAPS.values()) if optimizer else max(LR_CAPS.values()))
    bound = min(lr / LR_FRACTION, cap) if lr > 0 and math.isfinite(lr) else cap
    exp = math.floor(math.log10(bound))
    for m in (5, 2, 1):
        value = m * 10.0 ** exp
        if value <= bound * (1 + 1e-9):
            return float(f"{value:.3g}")
    return float(f"{10.0 ** (exp - 1) * 5:.3g}")


def explain_divergence(records: list[StepRecord], *, bad_step: int, what: str, lr: float,
                       warnings: list[str] = (), window: int = 12, optimizer: str | None = None) -> str:
    """Why the run diverged, from the evidence before ``bad_step`` (where ``what`` happened)."""
    before = [r for r in records if r.step < bad_step or (r.step == bad_step and math.isfinite(r.grad_norm))]
    finite = [r for r in before if math.isfinite(r.grad_norm) and r.grad_norm > 0][-window:]
    growth = finite[-1].grad_norm / finite[0].grad_norm if len(finite) >= 2 else None
    losses = [r.loss for r in before if math.isfinite(r.loss)][-window:]
    loss_growth = losses[-1] / losses[0] if len(losses) >= 2 and losses[0] > 0 else None
    logits = [r.logits_absmax for r in records if r.step <= bad_step]
    top_logit = max((v for v in logits if not math.isnan(v)), default=float("nan"))
    exploding = (growth is not None and growth >= 10) or (loss_growth is not None and loss_growth >= 10) \
        or (math.isfinite(top_logit) and top_logit >= 1e4) or top_logit == math.inf
    last = before[-1] if before else None
    jump = last.lr * last.grad_norm / last.weight_norm if last is not None and last.weight_norm > 0 \
        and math.isfinite(last.grad_norm) else math.nan
    if not exploding and jump >= 10:
        # one update moved the weights many times their own size: the step is far too large
        text = (f"learning rate {_fmt_lr(lr)} is too high for this model: one update (lr × gradient norm = "
                f"{fmt_big(last.lr * last.grad_norm)}) was {fmt_big(jump)} times the size of the weights themselves, "
                f"and {what} at step {bad_step}; try lr ≤ {_fmt_lr(suggest_lr(min(lr, lr / jump * 20), optimizer))}")
    elif exploding:
        text = f"learning rate {_fmt_lr(lr)} is too high for this model: "
        if growth is not None and growth >= 10:
            text += (f"the gradient norm grew {fmt_big(growth)}-fold over the last {len(finite)} steps "
                     f"before {what} at step {bad_step}")
        elif loss_growth is not None and loss_growth >= 10:
            text += f"the loss grew {fmt_big(loss_growth)}-fold over the last {len(losses)} steps before {what} at step {bad_step}"
        else:
            text += f"{what} at step {bad_step}"
        if math.isfinite(top_logit) and top_logit >= 1e4:
            text += f"; the logits reached {fmt_big(top_logit)}"
        elif top_logit == math.inf:
            text += "; the logits overflowed to infinity"
        text += f"; try lr ≤ {_fmt_lr(suggest_lr(lr, optimizer))}"
    elif not before:
        text = (f"{what} at step {bad_step}, the very first update: check the data (NaN or huge inputs?) and the "
                f"loss (bce needs outputs in (0, 1)); if they are fine, lower the learning rate {_fmt_lr(lr)}")
    else:
        change = f"the gradient norm changed only {growth:.2g}-fold over the last {len(finite)} steps" \
            if growth is not None else "without warning"
        text = (f"{what} at step {bad_step} ({change}): a sudden overflow; lower the learning rate "
                f"{_fmt_lr(lr)} (try lr ≤ {_fmt_lr(suggest_lr(lr, optimizer))}) or set train.clip_grad")
    for w in warnings:
        text += f". Also: {w}"
    return text


DEAD_FRACTION = 0.95  # a ReLU layer this dead is reported
SPIKE_FACTOR = 100    # a cost this many times the untrained model's loss (or the first cost) is a jump

ZERO_INIT_TEXT = ("all weights start at zero, so every hidden unit computes the same value and receives the same "
                  "(zero) gradient; use a random initialiser such as he_normal")


@dataclass
class Watch:
    """Collects evidence of a model that does not learn; survives checkpoints via ``to_dict``."""

    probes_with_grads: int = 0
    zero_hidden_all: bool = True
    dead: dict = field(default_factory=dict)          # latest dead-ReLU fraction per layer
    first_costs: list = field(default_factory=list)   # the first few log points' cost
    last_costs: list = field(default_factory=list)    # the latest log points' cost
    cost_points: int = 0
    reported: list = field(default_factory=list)      # kinds already announced
    peak: dict | None = None                          # the highest finite cost: {cost, step, examples, lr}

    KEEP = 8

    def add_cost(self, cost: float, *, step: int | None = None, examples: int | None = None,
                 lr: float | None = None) -> None:
        self.cost_points += 1
        if len(self.first_costs) < self.KEEP:
            self.first_costs.append(cost)
        self.last_costs = (self.last_costs + [cost])[-self.KEEP:]
        if math.isfinite(cost) and (self.peak is None or cost > self.peak["cost"]):
            self.peak = {"cost": cost, "step": step, "examples": examples, "lr": lr}

    def add_probe(self, result: dict) -> None:
        if result["zero_hidden_grads"] is not None:
            self.probes_with_grads += 1
            self.zero_hidden_all = self.zero_hidden_all and bool(result["zero_hidden_grads"])
        self.dead = dict(result["dead"])

    def spike(self, reference_loss: float | None) -> str | None:
        """'the cost jumped to 8e3 at 1,280 examples with lr 10 (...)' when the peak cost is ``SPIKE_FACTOR`` times
        the untrained model's test loss (``reference_loss``; else the first log point's cost)."""
        ref = reference_loss if reference_loss is not None and math.isfinite(reference_loss) and reference_loss > 0 \
            else (self.first_costs[0] if self.first_costs else None)
        if self.peak is None or ref is None or not ref > 0 or self.peak["cost"] < SPIKE_FACTOR * ref:
            return None
        where = f" at {self.peak['examples']:,} examples" if self.peak.get("examples") is not None else ""
        with_lr = f" with lr {_fmt_lr(self.peak['lr'])}" if self.peak.get("lr") is not None else ""
        what = "the untrained model's test loss" if ref is reference_loss else "the first cost"
        return (f"the cost jumped to {fmt_big(self.peak['cost'])}{where}{with_lr}, {fmt_big(self.peak['cost'] / ref)} "
                f"times {what} ({ref:.2g}): the learning rate is too high")

    def notes(self, *, zero_init: bool, lr: float, final: bool, optimizer: str | None = None,
              reference_loss: float | None = None) -> list[tuple[str, str]]:
        """``[(kind, text)]`` for what the evidence shows so far; ``final`` adds end-of-run checks."""
        out = []
        try_lr = f"try lr ≤ {_fmt_lr(suggest_lr(lr, optimizer))}"
        spike = self.spike(reference_loss)
        if spike:
            out.append(("loss_spike", f"{spike}; {try_lr}"))
        dead = {n: f for n, f in self.dead.items() if f >= DEAD_FRACTION}
        if self.probes_with_grads >= 1 and self.zero_hidden_all:
            if zero_init:
                out.append(("zero_init", ZERO_INIT_TEXT))
            elif not dead:
                out.append(("zero_gradients", "the gradients of every hidden layer's weights are exactly zero at "
                            "every check, so the hidden layers never change; if all their ReLUs are dead, lower the "
                            f"learning rate ({try_lr}) or use he_normal initialisation"))
        if dead and not any(k == "zero_init" for k, _ in out):
            names = " and ".join(f"every ReLU of {n} is dead" if f >= 1.0 else f"{f:.0%} of the ReLUs of {n} are dead"
                                 for n, f in dead.items())
            cure = "the cost jump killed them" if spike or "loss_spike" in self.reported else \
                f"lower the learning rate {_fmt_lr(lr)} ({try_lr}) or use he_normal initialisation"
            out.append(("dead_relu", f"{names}: they output zero for every example of an evaluation batch (dead "
                        f"ReLUs), so almost nothing flows through and the layers before them barely learn; {cure}"))
        if final and not out and self.cost_points >= 8:
            k = max(1, min(self.KEEP, self.cost_points // 4))
            first = sum(self.first_costs[:k]) / k
            last = sum(self.last_costs[-k:]) / k
            if math.isfinite(first) and math.isfinite(last) and abs(first - last) <= 0.01 * max(abs(first), 1e-12):
                hint = f"the learning rate {lr:g} may be too small" if lr < 1e-3 else \
                    "check the learning rate, the initialiser and that the labels match the inputs"
                out.append(("flat_loss", f"the cost did not move (from {first:.4g} to {last:.4g}): the model is "
                            f"not learning; {hint}"))
        return out

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Watch":
        return cls(**data)


_WEIGHTED_KINDS = ("fc", "conv1d", "conv2d", "batchnorm")


def diagnosis_layer(kind: str | None, payload: dict, kinds: list[str], *, dead: dict | None = None) -> dict | None:
    """The layer whose weight/gradient histogram a diagnosis points at: ``{"layer": index, "layer_name"}`` or None.

    ``dead_relu``: the weighted layer feeding the deadest ReLU of ``dead`` (``{relu module: fraction}``,
    as probed at the diagnosis's step). ``diverged``: in the replayed records of the divergence
    event, the last layer whose gradient norm was not finite, else the one with the largest norm.
    ``kinds``: the spec's layer kinds, in order (module names follow them, ``builder.layer_names``).
    """
    from ..builder import layer_names
    names = layer_names(kinds)
    at = None
    if kind == "dead_relu" and dead:
        worst = max(((f, n) for n, f in dead.items() if f >= DEAD_FRACTION and n in names), default=None)
        if worst is not None:
            j = names.index(worst[1])
            at = next((i for i in range(j - 1, -1, -1) if kinds[i] in _WEIGHTED_KINDS), None)
    elif kind == "diverged":
        for record in reversed(payload.get("records") or []):
            norms = {n: float(v) for n, v in (record.get("layer_grad_norms") or {}).items() if n in names}
            if norms:
                bad = [n for n, v in norms.items() if not math.isfinite(v)]
                name = bad[-1] if bad else max(norms, key=norms.get)
                at = names.index(name)
                break
    return None if at is None else {"layer": at, "layer_name": names[at]}
