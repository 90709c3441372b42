"""The one percent formatter every view uses: NaN prints as NaN%, missing as —."""
import math

from layerlab.textfmt import pct


def test_percentages_print_truthfully():
    assert pct(0.8608) == "86.08%"
    assert pct(1) == "100.00%"
    assert pct(0.25, digits=1) == "25.0%"
    assert pct(math.nan) == pct("NaN") == pct("not a number") == "NaN%"
    assert pct("0.5") == "50.00%"
    assert pct(None) == "—"
