"""Every colour the product uses, defined once (Okabe-Ito: safe for the common colour-vision deficiencies).

One meaning everywhere: NEGATIVE (blue) and POSITIVE (vermillion) are the sign of a value on every chart,
diagram and heatmap of every page; class k of a data set is CLASSES[k]; contestant k of a race is PALETTE[k].
The browser gets the same values through `browser_config()` (read by static/js/colors.js) and CSS variables.
"""

from __future__ import annotations

import math

NEGATIVE = "#0072B2"  # blue: values < 0, class 0 of a binary task
POSITIVE = "#D55E00"  # vermillion: values > 0, class 1 of a binary task
NEUTRAL = "#F7F7F7"  # zero: the middle of the diverging scale
NEGATIVE_PALE = "#9CC6E4"  # backgrounds (heatmaps under points) keep the hue, lighter
POSITIVE_PALE = "#F2B38C"
GOOD = "#009E73"  # passed checks, train curves that are fine
MARK = "#F0E442"  # highlight behind dark text (the current item)
INK = "#111111"

# Contestants of a race, lines of a chart: in this order.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#000000", "#8C6D31"]
# Classes of a data set: binary tasks use the sign colours; more classes continue with the palette.
CLASSES = [NEGATIVE, POSITIVE, "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#8C6D31", "#999999", "#F0E442"]


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    h = hex_colour.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def _mix(a: str, b: str, t: float) -> str:
    """The colour a fraction t of the way from a to b."""
    ra, rb = _rgb(a), _rgb(b)
    return "#%02x%02x%02x" % tuple(round(x + (y - x) * t) for x, y in zip(ra, rb))


def diverging(value: float | None, scale: float) -> str:
    """The colour of `value` on the diverging scale whose ends are -scale and +scale (sign = hue)."""
    if value is None or not math.isfinite(value) or scale <= 0:
        return NEUTRAL
    t = min(abs(value) / scale, 1.0)
    return _mix(NEUTRAL, POSITIVE if value > 0 else NEGATIVE, t)


def plotly_diverging() -> list[list]:
    """The same scale as a Plotly colorscale (use with zmid=0 so zero is NEUTRAL)."""
    return [[0.0, NEGATIVE], [0.5, NEUTRAL], [1.0, POSITIVE]]


def browser_config() -> dict:
    """What static/js/colors.js reads from <html data-colors>."""
    return {
        "negative": NEGATIVE,
        "positive": POSITIVE,
        "neutral": NEUTRAL,
        "negative_pale": NEGATIVE_PALE,
        "positive_pale": POSITIVE_PALE,
        "good": GOOD,
        "mark": MARK,
        "ink": INK,
        "palette": PALETTE,
        "classes": CLASSES,
        "diverging": plotly_diverging(),
    }


def css_variables() -> str:
    """The colours as CSS custom properties (the style attribute of <html>): CSS reads the same source."""
    pairs = {
        "--negative": NEGATIVE,
        "--positive": POSITIVE,
        "--neutral": NEUTRAL,
        "--good": GOOD,
        "--highlight": MARK,
        **{f"--c{k}": c for k, c in enumerate(PALETTE)},
        **{f"--class{k}": c for k, c in enumerate(CLASSES)},
    }
    return "; ".join(f"{k}: {v}" for k, v in pairs.items())
