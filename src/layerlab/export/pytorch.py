"""A trained run as one standalone PyTorch file: a plain ``nn.Module``, a loader and a ``__main__``.

The model's source is written from the modules the builder made from the layer catalogue (the
catalogue's factories are the one place a layer kind becomes torch): each submodule becomes
``nn.<Class>(<its extra_repr>)``, torch's own constructor call for it, under the builder's name
(``conv2d1``, ``relu1``), so the file's ``state_dict`` keys are the run's. A module class that
torch lacks (``modules.Reshape``) is copied into the file by source. Before the text is
returned, it is executed and its modules are compared with the run's (same reprs, same
``state_dict`` keys and shapes), so a file that would not load the weights is never written.

The rest of the file (read the test set, normalise, evaluate) is ``standalone.py``'s functions,
after constants for this run: its data set's files, its test subset and its normalisation's scale
and shift, the values layerlab's ``ResidentDataset.prepare`` uses.
"""
from __future__ import annotations

import inspect
import keyword
import textwrap

from ..layers import shape_text
from . import standalone

__all__ = ["pytorch_source", "class_name"]

_LAYERLAB_MODULES = "layerlab.modules"


def class_name(name: str) -> str:
    """``mnist-conv`` -> ``MnistConv``; a name that makes no identifier -> ``Model``."""
    words = "".join(c if c.isalnum() else " " for c in name).split()
    out = "".join(w[:1].upper() + w[1:] for w in words)
    if not out.isidentifier() or keyword.iskeyword(out) or out[0].isdigit():
        return "Model"
    return out


def _constructor(module) -> tuple[str, type | None]:
    """``nn.Conv2d(1, 8, kernel_size=(5, 5), ...)`` for a built module, and the class to copy if torch lacks it."""
    cls = type(module)
    call = f"{cls.__name__}({module.extra_repr()})"
    if cls.__module__.startswith("torch.nn"):
        return f"nn.{call}", None
    if cls.__module__ == _LAYERLAB_MODULES:
        return call, cls
    raise TypeError(f"cannot export a {cls.__module__}.{cls.__name__} module")  # an internal invariant


def _tensor_literal(t) -> str | None:
    if t is None:
        return None
    values = t.detach().cpu().tolist()  # float32 -> Python float: repr round-trips exactly
    return f"torch.tensor({values!r}, dtype=torch.float32)"


def _shape(shape) -> str:
    return shape_text(tuple(shape)) if len(shape) > 1 else f"{shape[0]}"


def docstring_text(text: str) -> str:
    """A run's name as it may stand inside a generated docstring: printable, no backslash or quote run."""
    clean = "".join(c if c.isprintable() else " " for c in text).replace("\\", "/").replace('"', "'")
    return clean.strip() or "unnamed"


def _model_source(name: str, model, rows, spec_name: str) -> tuple[str, list[type]]:
    extra: list[type] = []
    init, forward = [], []
    for (sub, module), row in zip(model.named_children(), rows):
        call, cls = _constructor(module)
        if cls is not None and cls not in extra:
            extra.append(cls)
        params = f", {row.params:,} parameters" if row.params else ""
        init.append(f"        self.{sub} = {call}  # {_shape(row.input_shape)} -> {_shape(row.output_shape)}{params}")
        forward.append(f"        x = self.{sub}(x)  # (B, {', '.join(map(str, row.output_shape))})")
    first = rows[0].input_shape if rows else ()
    body = "\n".join([
        f"class {name}(nn.Module):",
        f'    """The {spec_name} network: input (B, {", ".join(map(str, first))}), one attribute per layer."""',
        "",
        "    def __init__(self):",
        "        super().__init__()",
        *init,
        "",
        "    def forward(self, x: torch.Tensor) -> torch.Tensor:",
        *forward,
        "        return x",
    ])
    return body, extra


def _verify(source: str, model, name: str) -> None:
    """Execute ``source`` and check its model is the run's: same modules, same state_dict keys and shapes."""
    namespace: dict = {"__name__": "layerlab_export_check"}
    exec(compile(source, "<exported model>", "exec"), namespace)  # noqa: S102 - our own generated text
    mine = namespace[name]()
    theirs = dict(model.named_children())
    got = dict(mine.named_children())
    if {k: repr(v) for k, v in got.items()} != {k: repr(v) for k, v in theirs.items()}:
        raise AssertionError(f"exported modules differ from the run's: {got} != {theirs}")
    want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    have = {k: tuple(v.shape) for k, v in mine.state_dict().items()}
    if want != have:
        raise AssertionError(f"exported state_dict differs from the run's: {have} != {want}")


def pytorch_source(stored, *, weights_name: str, data=None) -> str:
    """The standalone file's text for a ``StoredModel``; ``data``: the run's loaded data (for the normalisation)."""
    spec, run = stored.spec, stored.run
    info = spec.dataset
    data = data if data is not None else spec.data.load()  # the run's data path: scale, shift and subset
    name = class_name(spec.name)
    title = docstring_text(spec.name)
    model_src, extra = _model_source(name, stored.model, stored.check.rows, title)
    from ..spec import SUBSET_SEED
    loader = info.loader if info.loader in ("idx", "cifar10-binary") else None
    test_files = tuple(f.name for f in info.files if f.name.startswith("t10k") or f.name.endswith(".tar.gz"))
    when = stored.source
    script = weights_name.rsplit(".", 1)[0] + ".py"
    consts = {
        "DATASET": repr(info.name),
        "LOADER": repr(loader),
        "TEST_FILES": repr(test_files),
        "TEST_SIZE": repr(spec.data.test_size),
        "SUBSET_SEED": f"{SUBSET_SEED + 1}  # layerlab takes test subsets from a permutation seeded "
                       "SUBSET_SEED + 1",
        "SCALE": _tensor_literal(data._scale),   # x * SCALE + SHIFT: ResidentDataset.prepare
        "SHIFT": _tensor_literal(data._shift),
        "TASK": repr(stored.check.task),
        "WEIGHTS": repr(weights_name),
        "MODEL": name,
    }
    header = textwrap.dedent(f'''\
        """{title}: layerlab run {run["id"]} ({run["status"]}), exported as plain PyTorch.

        Needs only torch, safetensors and numpy. Weights: {weights_name} beside this file
        ({when["source"]} weights, {when.get("examples") or 0:,} examples trained); data: {info.name},
        normalize {spec.data.normalize!r}.

            python {script} DATA_FOLDER   # prints the test accuracy
            model = load_model()           # the trained model, eval mode
        """
        ''')
    imports = ("from __future__ import annotations\n\n"
               "import argparse\nimport gzip\nimport sys\nimport tarfile\nfrom pathlib import Path\n\n"
               "import numpy as np\nimport torch\nfrom safetensors.torch import load_file\nfrom torch import nn\n")
    parts = [header + "\n" + imports]
    for cls in extra:
        parts.append(inspect.getsource(cls))
    parts.append(model_src + "\n")
    parts.append("\n".join(f"{k} = {v}" for k, v in consts.items() if k != "MODEL") + "\n")
    parts.append(f"MODEL = {name}\n")
    parts += [inspect.getsource(f) for f in standalone.FUNCTIONS]
    parts.append('if __name__ == "__main__":\n    main()\n')
    source = "\n\n\n".join(p.rstrip("\n") for p in parts) + "\n"
    _verify(source, stored.model, name)
    return source
