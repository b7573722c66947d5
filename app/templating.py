"""Jinja2 templates with named-block rendering (one block per HTMX fragment), their filters, and where files live."""

import json
from pathlib import Path

from jinja2_fragments.fastapi import Jinja2Blocks
from markupsafe import Markup

from .static_files import StaticAssets
from .views import colors, format

PACKAGE_DIR = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """templates/ or static/: inside the installed package (the wheel maps them to app/NAME, see pyproject.toml),
    else at the top of a source checkout (an editable install, or running from the repository)."""
    installed = PACKAGE_DIR / name
    return installed if installed.is_dir() else PACKAGE_DIR.parent / name


TEMPLATES_DIR = data_dir("templates")
STATIC_DIR = data_dir("static")

templates = Jinja2Blocks(directory=str(TEMPLATES_DIR))


# static/ served from memory, gzipped once, cached by content hash (app.static_files; app.main mounts it at /static)
static_assets = StaticAssets(STATIC_DIR, "/static")


def static_url(path: str) -> str:
    """The URL of a file under static/ (the one place that decides how static URLs look): `/static/PATH?v=HASH`,
    the content hash that lets browsers cache it for a year (a changed file gets a new URL)."""
    return static_assets.url(path)


# Plotly's cartesian bundle (scatter, bar, heatmap, contour; static/vendor/plotly, scripts/vendor_assets.sh), loaded
# only by pages that draw charts (their "charts" block).
PLOTLY_URL = static_url("vendor/plotly/plotly-cartesian.min.js")


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
