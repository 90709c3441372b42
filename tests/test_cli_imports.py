"""Commands that only read the catalogue or check a spec answer at once: no torch, FastAPI, matplotlib or numpy.

Each runs in its own interpreter (a fresh ``sys.modules``), through the real entry point.
"""
from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("torch", "fastapi", "matplotlib", "sklearn", "numpy")  # numpy: ~35 ms of validate's 0.26 s
PROBE = """
import sys
from layerlab.cli import main
sys.argv = ["layerlab", *sys.argv[1:]]
try:
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print("EXIT", code, "HEAVY", ",".join(sorted(m for m in {heavy!r} if m in sys.modules)), file=sys.stderr)
""".format(heavy=HEAVY)


@pytest.mark.parametrize("args", [["--help"], ["validate", "mnist-conv"], ["validate", "nope.yaml"],
                                  ["summary", "mnist-conv"], ["layers"], ["presets"], ["inits"], ["data", "list"]],
                         ids=lambda a: " ".join(a))
def test_the_command_imports_nothing_heavy(args):
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=60)
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("EXIT"), proc.stderr[-2000:]
    _, code, _, heavy = (last.split(" ") + [""])[:4]
    assert code in ("0", "2", "None"), proc.stderr[-2000:]
    assert heavy == "", f"`layerlab {' '.join(args)}` imported {heavy}"


def test_training_still_finds_torch_when_it_needs_it():
    """The lazy imports load the real thing: a catalogue factory builds a torch module."""
    code = ("import sys; from layerlab.layers import CATALOGUE; assert 'torch' not in sys.modules; "
            "m = CATALOGUE['fc'].factory((4,), {'units': 3, 'bias': True}); print(type(m).__module__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "torch.nn.modules.linear", out.stderr
