"""The landing page."""
from fastapi import APIRouter, Request

from ..templating import templates

router = APIRouter(include_in_schema=False)


@router.get("/")
def index(request: Request, present: int = 0):
    """Links to the three pages."""
    return templates.TemplateResponse(request, "index.html", {"page": "index", "present": bool(present)})
