"""/docs (Swagger UI) and /redoc (ReDoc) served offline: both read /openapi.json and load only vendored files.

Swagger UI's page is ours rather than FastAPI's `get_swagger_ui_html`, whose page starts Swagger UI from an inline
<script>: here the settings ride in a data attribute and static/js/swagger-init.js starts it, so the page needs no
inline script under the coming Content-Security-Policy. ReDoc's page is FastAPI's own `get_redoc_html` (it has no
inline script), pointed at the vendored bundle with Google Fonts off. Files: static/vendor/swagger-ui/ and
static/vendor/redoc/ (scripts/vendor_assets.sh).
"""

import json
from html import escape

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html
from fastapi.responses import HTMLResponse

from .templating import static_url

router = APIRouter(include_in_schema=False)

# Swagger UI settings (FastAPI's defaults, and no validator badge: it would ask validator.swagger.io).
SWAGGER_SETTINGS = {
    "dom_id": "#swagger-ui",
    "layout": "BaseLayout",
    "deepLinking": True,
    "showExtensions": True,
    "showCommonExtensions": True,
    "validatorUrl": None,
    "tryItOutEnabled": False,
    "defaultModelsExpandDepth": 0,
}


def _openapi_url(request: Request) -> str:
    app = request.app
    return (request.scope.get("root_path", "") or "") + (app.openapi_url or "/openapi.json")


def _title(request: Request) -> str:
    return f"{request.app.title} API v1"


@router.get("/docs", response_class=HTMLResponse)
def swagger_ui(request: Request) -> HTMLResponse:
    """The JSON API in Swagger UI (try requests from the page), from vendored files only."""
    settings = {**SWAGGER_SETTINGS, "url": _openapi_url(request)}
    html = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(_title(request))} - Swagger UI</title>
<link rel="icon" href="/favicon.ico">
<link rel="stylesheet" href="{escape(static_url("vendor/swagger-ui/swagger-ui.css"))}">
</head>
<body>
<div id="swagger-ui" data-settings="{escape(json.dumps(settings))}"></div>
<noscript>Swagger UI needs JavaScript; the API's description is at <a href="{escape(settings["url"])}">
{escape(settings["url"])}</a>.</noscript>
<script src="{escape(static_url("vendor/swagger-ui/swagger-ui-bundle.js"))}"></script>
<script src="{escape(static_url("js/swagger-init.js"))}"></script>
</body>
</html>
"""
    return HTMLResponse(html)


@router.get("/redoc", response_class=HTMLResponse)
def redoc(request: Request) -> HTMLResponse:
    """The JSON API in ReDoc (a readable reference), from vendored files only."""
    return get_redoc_html(
        openapi_url=_openapi_url(request),
        title=f"{_title(request)} - ReDoc",
        redoc_js_url=static_url("vendor/redoc/redoc.standalone.js"),
        redoc_favicon_url="/favicon.ico",
        with_google_fonts=False,
    )
