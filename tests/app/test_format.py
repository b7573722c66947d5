"""The one formatter: significant digits, never 0.000 for a nonzero value, computations that hold as shown."""

import math
import operator

import pytest

from app.views import colors
from app.views.format import factor, holds, parts, percent, tex, tex_matrix, text


@pytest.mark.parametrize(
    "x, shown",
    [
        (0.5249791874789399, "0.525"),
        (-0.11105, "\u22120.111"),
        (0.0584, "0.0584"),
        (0.5, "0.5"),  # exact: no invented zeros
        (0.50004, "0.500"),  # rounded: the zeros say so
        (1.2e-7, "1.2 \u00d7 10\u207b\u2077"),
        (-3.456e-9, "\u22123.46 \u00d7 10\u207b\u2079"),
        (1893.0, "1893"),
        (123456.7, "1.23 \u00d7 10\u2075"),
        (12.3456, "12.3"),
        (0.0, "0"),
        (-0.0, "0"),
        (0.0009996, "0.00100"),  # rounding moves the exponent: three significant digits still
        (None, "\u2014"),
        (math.nan, "\u2014"),
        (math.inf, "\u221e"),
    ],
)
def test_text(x, shown):
    assert text(x) == shown


@pytest.mark.parametrize("x", [1e-300, 3e-12, -4.9e-8, 1.2e-7, 0.00049, 5e-4, 0.000999, 2.5e-3])
@pytest.mark.parametrize("sig", [1, 2, 3, 4])
def test_nonzero_never_reads_as_zero(x, sig):
    shown = text(x, sig)
    assert shown.strip("\u2212") not in {"0", "0.0", "0.00", "0.000", "0.0000"}
    assert parts(x, sig).value() != 0
    assert parts(x, sig).value() == pytest.approx(x, rel=0.5 * 10 ** (1 - sig))


def test_tex_forms():
    assert tex(1.2e-7) == r"1.2 \times 10^{-7}"
    assert tex(-0.111) == "-0.111"
    assert factor(-0.111) == r"\left(-0.111\right)"
    assert factor(1.2e-7) == r"\left(1.2 \times 10^{-7}\right)"
    assert factor(0.4) == "0.4"
    assert tex(math.inf) == r"\infty" and tex(-math.inf) == r"-\infty" and tex(None) == r"\text{—}"
    assert tex_matrix([[0.1, -0.25]]) == r"\begin{bmatrix}0.1 & -0.25\end{bmatrix}"
    assert percent(0.9125) == "91.2%"


def test_computation_holds_as_shown_or_is_marked():
    # sigma'(z) = a (1 - a) for the notes' a_o = 0.54983: 0.550 x 0.450 = 0.2475 -> "0.248", but the true value
    # 0.24752 also reads 0.248; fine at 3 digits.
    a = 0.549833997312478
    shown = holds(lambda x, y: x * y, [a, 1 - a], a * (1 - a))
    assert shown.relation == "="
    # 0.125 x 0.125 = 0.015625: at 3 digits 0.125 x 0.125 -> 0.0156 holds.
    assert holds(operator.mul, [0.125, 0.125], 0.015625).relation == "="
    # A product whose rounded operands give a different third digit gets more digits until it holds.
    x, y = 0.3336, 0.3336
    s = holds(operator.mul, [x, y], x * y)
    assert s.relation == "=" and s.sig > 3
    ox, oy = (float(v) for v in s.operands)
    assert round(ox * oy, len(s.result.split(".")[1])) == float(s.result)


def test_computation_that_never_holds_says_approx():
    # a sum of many rounded terms at 1 significant digit with no room for more digits
    vals = [0.14, 0.14, 0.14, 0.14, 0.14]
    s = holds(lambda *v: sum(v), vals, sum(vals), sig=1, extra=0)
    assert s.relation == r"\approx"


def test_diverging_colour_is_the_sign():
    assert colors.diverging(1.0, 1.0) == colors.POSITIVE.lower()
    assert colors.diverging(-1.0, 1.0) == colors.NEGATIVE.lower()
    assert colors.diverging(0.0, 1.0) == colors.NEUTRAL.lower()
    assert colors.diverging(math.nan, 1.0) == colors.NEUTRAL
