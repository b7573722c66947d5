"""Jinja2 templates with named-block rendering (one block per HTMX fragment), their filters, and where files live."""

import json
from pathlib import Path

from jinja2_fragments.fastapi import Jinja2Blocks
from markupsafe import Markup

from .views import colors, format

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES_DIR = ROOT / "templates"
STATIC_DIR = ROOT / "static"

templates = Jinja2Blocks(directory=str(TEMPLATES_DIR))


def static_url(path: str) -> str:
    """The URL of a file under static/ (the one place that decides how static URLs look)."""
    return "/static/" + path.lstrip("/")


# Plotly's bundle, loaded only by pages that draw charts (their "charts" block); app.main serves it.
PLOTLY_URL = "/vendor/plotly.min.js"


def json_script(value) -> Markup:
    """A value as JSON safe inside <script type="application/json"> (no `</script>` can end it early)."""
    text = json.dumps(value, separators=(",", ":"), allow_nan=False)
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


env = templates.env
env.filters.update(
    num=format.text, tex=format.tex, factor=format.factor, percent=format.percent, json_script=json_script
)
env.globals.update(
    static_url=static_url,
    plotly_url=PLOTLY_URL,
    colors=colors,
    color_css=colors.css_variables(),
    color_config=json.dumps(colors.browser_config(), separators=(",", ":")),
)
