"""One number formatter for every page: significant digits, never `0.000` for a nonzero value.

Rules (the tests in tests/app/test_format.py hold them):
- A value is shown with `sig` significant digits, so 1.2e-7 reads 1.2 x 10^-7 and never 0.000.
- Plain notation for 1e-3 <= |x| < 1e5, scientific outside it; integers of up to five digits stay whole.
- Trailing zeros mean "rounded": 0.5 is exactly 0.5, 0.500 is 0.5 to three significant digits.
- A shown computation holds at the digits shown: `holds` adds digits until `a op b = c` is true of the text,
  and writes `\\approx` when it never is.
- Missing and non-finite values read as a dash or +-infinity, never as a number.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

MINUS = "\u2212"
DASH = "\u2014"
SUPERSCRIPT = str.maketrans("-0123456789", "\u207b\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079")
PLAIN_LOW, PLAIN_HIGH = 1e-3, 1e5


@dataclass(frozen=True)
class Parts:
    """A finite number as shown: sign, mantissa digits and a power of ten (0 for plain notation)."""

    negative: bool
    mantissa: str
    exponent: int

    def value(self) -> float:
        """The number the reader sees."""
        v = float(self.mantissa) * 10.0**self.exponent
        return -v if self.negative else v


def parts(x: float, sig: int = 3) -> Parts:
    """Round x to `sig` significant digits and choose plain or scientific notation."""
    x = float(x)
    if x == 0:
        return Parts(False, "0", 0)
    a = abs(x)
    if a == round(a) and a < PLAIN_HIGH:
        return Parts(x < 0, str(int(a)), 0)  # whole numbers (counts, steps, 1893) stay whole
    exponent = math.floor(math.log10(a))
    rounded = float(f"{a:.{sig - 1}e}")
    exponent = math.floor(math.log10(rounded))  # 9.996 -> 10.0 moves the exponent
    if PLAIN_LOW <= rounded < PLAIN_HIGH:
        decimals = max(sig - 1 - exponent, 0)
        text = f"{rounded:.{decimals}f}"
        if float(text) == a:  # exact at fewer digits: 0.5 stays 0.5
            text = _trim(text)
        return Parts(x < 0, text, 0)
    mantissa = f"{rounded / 10.0**exponent:.{sig - 1}f}"
    if float(mantissa) * 10.0**exponent == a:
        mantissa = _trim(mantissa)
    return Parts(x < 0, mantissa, exponent)


def _trim(text: str) -> str:
    return text.rstrip("0").rstrip(".") if "." in text else text


def _special(x) -> str | None:
    """The word for a value that is not a finite number, or None."""
    if x is None:
        return DASH
    x = float(x)
    if math.isnan(x):
        return DASH
    if math.isinf(x):
        return "\u221e" if x > 0 else MINUS + "\u221e"
    return None


def text(x, sig: int = 3) -> str:
    """x as plain text: a true minus sign, `1.2 × 10⁻⁷` for tiny or huge values."""
    special = _special(x)
    if special is not None:
        return special
    p = parts(x, sig)
    body = p.mantissa if p.exponent == 0 else f"{p.mantissa} \u00d7 10{str(p.exponent).translate(SUPERSCRIPT)}"
    return (MINUS if p.negative else "") + body


def tex(x, sig: int = 3) -> str:
    """x as LaTeX: `-1.2 \\times 10^{-7}`."""
    special = _special(x)
    if special is not None:
        return {DASH: r"\text{—}", "\u221e": r"\infty"}.get(special, r"-\infty")
    p = parts(x, sig)
    body = p.mantissa if p.exponent == 0 else rf"{p.mantissa} \times 10^{{{p.exponent}}}"
    return ("-" if p.negative else "") + body


def factor(x, sig: int = 3) -> str:
    """x as a LaTeX factor in a product: negatives and powers of ten in parentheses."""
    s = tex(x, sig)
    return f"\\left({s}\\right)" if s.startswith("-") or r"\times" in s else s


def percent(x, sig: int = 3) -> str:
    """A fraction as a percentage: 0.912 -> 91.2%."""
    special = _special(x)
    return special if special is not None else text(100 * float(x), sig) + "%"


def decimals(x, places: int) -> str:
    """x to a fixed number of decimals, as a printed table (the course notes) shows it: 0.525, −0.011.

    Only for setting a value beside a number printed that way (note 002's checks); everywhere else use `text`,
    which never shows a nonzero value as 0.000.
    """
    special = _special(x)
    if special is not None:
        return special
    s = f"{float(x):.{places}f}"
    if float(s) == 0:
        s = s.lstrip("-")
    return s.replace("-", MINUS)


def tex_vector(values: Iterable, sig: int = 3) -> str:
    """A column vector."""
    return r"\begin{bmatrix}" + r" \\ ".join(tex(v, sig) for v in np.ravel(values)) + r"\end{bmatrix}"


def tex_row(values: Iterable, sig: int = 3) -> str:
    """A row vector."""
    return r"\begin{bmatrix}" + " & ".join(tex(v, sig) for v in np.ravel(values)) + r"\end{bmatrix}"


def tex_matrix(m, sig: int = 3) -> str:
    """A matrix, row by row."""
    rows = np.atleast_2d(np.asarray(m, dtype=float))
    return r"\begin{bmatrix}" + r" \\ ".join(" & ".join(tex(v, sig) for v in r) for r in rows) + r"\end{bmatrix}"


@dataclass(frozen=True)
class Shown:
    """Operands and result of a computation as displayed, and the relation that is true of the text."""

    operands: tuple[str, ...]
    result: str
    relation: str  # "=" or r"\approx"
    sig: int


def holds(
    combine: Callable[..., float], operands: Sequence[float], result: float, sig: int = 3, extra: int = 2
) -> Shown:
    """Display `combine(*operands) = result` so that it is true at the digits shown.

    Tries `sig` significant digits, then up to `extra` more; if rounding still breaks it, the relation is
    `\\approx` at `sig` digits. "True at the digits shown": combining the operands *as displayed* and rounding
    to the result's displayed precision gives the displayed result.
    """
    if any(_special(v) is not None for v in (*operands, result)):
        return Shown(tuple(tex(v, sig) for v in operands), tex(result, sig), "=", sig)
    for digits in range(sig, sig + extra + 1):
        shown = [parts(v, digits) for v in operands]
        shown_result = parts(result, digits)
        recomputed = combine(*(p.value() for p in shown))
        if _same_at(recomputed, shown_result, digits):
            return Shown(tuple(tex(v, digits) for v in operands), tex(result, digits), "=", digits)
    return Shown(tuple(tex(v, sig) for v in operands), tex(result, sig), r"\approx", sig)


def _same_at(value: float, shown: Parts, digits: int) -> bool:
    """Does `value`, written the way `shown` is written, read the same?"""
    if not math.isfinite(value):
        return False
    mine = parts(value, digits)
    if mine == shown:
        return True
    # same precision as the displayed text: compare the decimals it shows
    decimals = len(shown.mantissa.split(".")[1]) if "." in shown.mantissa else 0
    scale = 10.0**shown.exponent
    return round(value / scale, decimals) == round(shown.value() / scale, decimals)
