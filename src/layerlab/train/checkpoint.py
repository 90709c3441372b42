"""Checkpoints and weights as safetensors bytes: no pickle, so a stored file is safe to load.

A checkpoint is one safetensors file holding everything a resume needs:

* ``model/<key>``       the model's ``state_dict``;
* ``optim/<i>/<name>``  the optimiser's per-parameter state tensors (momentum buffers, ...);
* ``rng/<name>``        random states (the data-order generator, torch's CPU and CUDA RNGs);
* metadata ``layerlab`` JSON: the optimiser's param groups and non-tensor state, and the
  trainer's position (step, examples, epoch, offset in the epoch, history, ...).

Writing one artifact (not weights and state separately) means a kill can never leave a
checkpoint whose halves come from different steps.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

__all__ = ["Checkpoint", "pack_checkpoint", "unpack_checkpoint", "read_position", "weights_bytes", "load_weights",
           "CHECKPOINT_ARTIFACT", "WEIGHTS_ARTIFACT"]

CHECKPOINT_ARTIFACT = "checkpoint.safetensors"
WEIGHTS_ARTIFACT = "weights.safetensors"
_FORMAT = 1


@dataclass
class Checkpoint:
    model: dict[str, torch.Tensor]
    optimizer: dict
    position: dict
    rng: dict[str, torch.Tensor] = field(default_factory=dict)


def _cpu(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to("cpu").contiguous().clone()


def pack_checkpoint(ckpt: Checkpoint) -> bytes:
    tensors = {f"model/{k}": _cpu(v) for k, v in ckpt.model.items()}
    plain_state: dict[str, dict] = {}
    for idx, entries in ckpt.optimizer.get("state", {}).items():
        for name, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim/{idx}/{name}"] = _cpu(value)
            else:
                plain_state.setdefault(str(idx), {})[name] = value
    tensors.update({f"rng/{k}": _cpu(v) for k, v in ckpt.rng.items()})
    meta = {"format": _FORMAT, "param_groups": ckpt.optimizer.get("param_groups", []),
            "plain_state": plain_state, "position": ckpt.position}
    return st_save(tensors, metadata={"layerlab": json.dumps(meta, allow_nan=True)})


def unpack_checkpoint(data: bytes) -> Checkpoint:
    tensors = st_load(data)
    meta = json.loads(_metadata(data)["layerlab"])
    model = {k[len("model/"):]: v for k, v in tensors.items() if k.startswith("model/")}
    rng = {k[len("rng/"):]: v for k, v in tensors.items() if k.startswith("rng/")}
    state: dict[int, dict] = {}
    for k, v in tensors.items():
        if k.startswith("optim/"):
            _, idx, name = k.split("/", 2)
            state.setdefault(int(idx), {})[name] = v
    for idx, entries in meta["plain_state"].items():
        state.setdefault(int(idx), {}).update(entries)
    optimizer = {"state": state, "param_groups": meta["param_groups"]}
    return Checkpoint(model=model, optimizer=optimizer, position=meta["position"], rng=rng)


def read_position(data: bytes) -> dict:
    """The trainer's position in a packed checkpoint, without loading its tensors."""
    return json.loads(_metadata(data)["layerlab"])["position"]


def _metadata(data: bytes) -> dict:
    """The safetensors header's ``__metadata__`` (8-byte little-endian length, then JSON)."""
    n = int.from_bytes(data[:8], "little")
    return json.loads(data[8:8 + n].decode("utf-8")).get("__metadata__", {}) or {}


def weights_bytes(model: torch.nn.Module, metadata: dict | None = None) -> bytes:
    """The model's ``state_dict`` as safetensors bytes; ``metadata`` values become JSON strings."""
    meta = {k: json.dumps(v, allow_nan=True) for k, v in (metadata or {}).items()}
    return st_save({k: _cpu(v) for k, v in model.state_dict().items()}, metadata=meta)


def load_weights(model: torch.nn.Module, data: bytes) -> dict:
    """Load safetensors weights into ``model`` (strict); return the file's metadata."""
    state = st_load(data)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    model.load_state_dict({k: v.to(device) for k, v in state.items()})
    return {k: json.loads(v) for k, v in _metadata(data).items()}
