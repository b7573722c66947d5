"""The landing page and the course notes, recomputed."""

from fastapi import APIRouter, Request

from .. import notes
from ..templating import templates

router = APIRouter(include_in_schema=False)


@router.get("/")
def index(request: Request, present: int = 0):
    """Links to the three pages."""
    return templates.TemplateResponse(request, "index.html", {"page": "index", "present": bool(present)})


@router.get("/notes")
def notes_page(request: Request, present: int = 0):
    """Every formula of the course notes, with the engine's numbers."""
    return templates.TemplateResponse(
        request, "notes.html", {"page": "notes", "present": bool(present), "c": notes.content()}
    )
