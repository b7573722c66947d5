"""Jinja2 templates with named-block rendering (one block per HTMX fragment), and where files live."""
from pathlib import Path

from jinja2_fragments.fastapi import Jinja2Blocks

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES_DIR = ROOT / "templates"
STATIC_DIR = ROOT / "static"

templates = Jinja2Blocks(directory=str(TEMPLATES_DIR))
