"""Assembles the app: middleware, static files, the API router and the pages."""

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.gzip import DEFAULT_EXCLUDED_CONTENT_TYPES as GZIP_EXCLUDED

from engine.cancel import Stopped

from .docs import router as docs_router
from .errors import http_error_handler, request_validation_handler, stopped_handler, value_error_handler
from .limits import BodySizeLimit
from .middleware import Guard
from .routes import api, pages, playground_page, race_page, step_page
from .schemas import ErrorOut
from .serialize import JSONResponse
from .settings import get_settings
from .static_files import ServeStatic
from .templating import PLOTLY_URL, STATIC_DIR, static_assets

app = FastAPI(
    title="backprop-viz",
    version="1.0.0",
    summary="Every number of one backpropagation step, from an exact NumPy engine.",
    description=(
        "JSON API v1 of backprop-viz. Bodies are JSON; matrices are lists of rows; samples are rows. "
        "An experiment is a pure function of its spec: the same spec gives the same numbers on any worker. "
        "Non-finite numbers produced by training (divergence) are `null`; errors are 4xx with a message "
        "that names the field."
    ),
    docs_url=None,  # /docs and /redoc come from app.docs, on vendored files (no CDN)
    redoc_url=None,
    default_response_class=JSONResponse,  # orjson, NaN/Inf -> null (app.serialize): one response class for the API
)
app.add_exception_handler(ValueError, value_error_handler)
app.add_exception_handler(RequestValidationError, request_validation_handler)
app.add_exception_handler(StarletteHTTPException, http_error_handler)
app.add_exception_handler(Stopped, stopped_handler)  # past the time limit, or the client left
# Dynamic answers: gzip level 1 (a spiral step record: 15 ms of CPU at level 9's default vs a few at 1, for 7-10%
# more bytes). Static files arrive already compressed (Content-Encoding set), which the middleware passes through.
app.add_middleware(ServeStatic, assets=static_assets)  # innermost: /static/... before routing (app.static_files)
# Server-sent events are compressed too (Starlette leaves them out by default): each event is flushed as it is
# written, so the stream still arrives event by event; /race/events sends ~3 MB of HTML and JSON otherwise.
app.add_middleware(
    GZipMiddleware,
    minimum_size=1024,
    compresslevel=1,
    exclude_content_types=tuple(t for t in GZIP_EXCLUDED if t != "text/event-stream"),
)
app.add_middleware(BodySizeLimit, max_bytes=get_settings().max_body_bytes)
# Outermost: probes, security headers, HEAD, the per-worker compute limit, deadlines and cancellation, logs.
app.add_middleware(Guard, cache=api.cache)
static_assets.preload()  # every static file read, hashed and gzipped once, at start-up
app.mount("/static", static_assets, name="static")

# Errors every JSON endpoint can answer, documented once for all of them (schemathesis holds us to the list).
COMMON_ERRORS = {
    400: {"model": ErrorOut, "description": "The body could not be parsed"},
    413: {"model": ErrorOut, "description": "Body too large"},
    422: {"model": ErrorOut, "description": "Invalid input; `detail[].loc` names the field"},
    503: {"model": ErrorOut, "description": "This worker is busy: retry after `Retry-After` seconds"},
    504: {"model": ErrorOut, "description": "Over the time limit: the work was stopped"},
}
for router in (api.router, pages.router, step_page.router, race_page.router, playground_page.router):
    for route in router.routes:
        if isinstance(route, APIRoute) and route.path.startswith("/api/"):
            for status, doc in COMMON_ERRORS.items():
                route.responses.setdefault(status, doc)
    app.include_router(router)
app.include_router(docs_router)


@app.get("/vendor/plotly.min.js", include_in_schema=False)
def plotly_js():
    """The old URL of plotly.js (pages saved before it was vendored under static/): the vendored bundle."""
    return RedirectResponse(PLOTLY_URL, status_code=308)


@app.get("/favicon.ico", include_in_schema=False)
def favicon():
    """Browsers ask for /favicon.ico whatever the page says."""
    return FileResponse(STATIC_DIR / "favicon.svg", media_type="image/svg+xml")


# /healthz and /readyz are answered by the Guard middleware, on the event loop (app.middleware).
