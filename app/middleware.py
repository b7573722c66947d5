"""The guard around every request: ids, security headers, HEAD, probes, a per-worker compute limit, deadlines,
cancellation when the client leaves, and access logs that name spec ids instead of whole tokens.

One pure-ASGI middleware (outermost), so it sees every response, streamed or not:
* `/healthz` (liveness) and `/readyz` (readiness: a compute slot free, the checkpoint cache's size) are answered
  here, on the event loop, without touching the thread pool or the app;
* a request that computes (a POST, the /step page and fragments, the race's stream) takes one of `max_concurrent`
  slots; with none free it waits in a bounded line (`max_queued` requests, at most `queue_timeout` s, first come
  first served), and beyond that it gets a 503 with Retry-After at once: the line never grows without bound (a
  page load gets a small page that reloads itself after Retry-After);
* it runs under an `engine.cancel.Budget`: the engine stops at its next check when `request_timeout` passes (the
  client gets a 504) or when the client disconnects (streaming or not), and the worker is free again;
* every response carries a Content-Security-Policy that allows only our own scripts, styles and fonts (the
  /docs and /redoc pages: also exactly the inline scripts FastAPI's helpers generate, by hash), nosniff,
  frame-ancestors 'none', a Referrer-Policy, and an X-Request-ID;
* HEAD is answered on every GET route (the GET's headers, no body);
* the access log (uvicorn's, or one JSON object per request with `json_logs`) shows `spec=<spec id>`, never the
  token.
"""

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import re
import sys
import time
import uuid
import zlib
from collections import deque
from urllib.parse import parse_qsl, quote, urlencode

from engine import cancel

from .settings import get_settings

log = logging.getLogger("backprop_viz.access")

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'"
)
# Pages built by FastAPI's get_swagger_ui_html / get_redoc_html / get_swagger_ui_oauth2_redirect_html: they carry
# one inline <script> each; the policy of those pages allows exactly the scripts in the page (by hash) and
# ReDoc's blob: worker.
DOCS_PATHS = ("/docs", "/redoc", "/docs/oauth2-redirect")
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=(), usb=()"),
]
PROBES = ("/healthz", "/readyz")
REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.S | re.I)
TOKEN_PARAMS = ("spec", "spec_token")


COMPUTE_GETS = ("/step", "/race/events", "/race/race.csv")  # pages and streams that run the engine


def is_compute(method: str, path: str) -> bool:
    """Requests that run the engine: every POST (the JSON API, the pages' forms), the server-rendered /step and
    its exports, and the race's event stream and CSV."""
    return method == "POST" or any(path == p or path.startswith(p + "/") for p in COMPUTE_GETS)


def spec_id_of_token(token: str) -> str:
    """A token's spec id (the hash of the canonical JSON it carries), or 'invalid'; cheap, never raises."""
    try:
        raw = zlib.decompressobj().decompress(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)), 1 << 20)
        return hashlib.sha256(raw).hexdigest()[:16]
    except Exception:
        return "invalid"


def loggable_path(path: str, query: str) -> tuple[str, str | None]:
    """The path and query as a log shows them: spec tokens replaced by their spec id, other long values cut."""
    if not query:
        return path, None
    spec_id, shown = None, []
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key in TOKEN_PARAMS and value:
            spec_id = spec_id_of_token(value)
            value = f"<id {spec_id}>"
        elif len(value) > 64:
            value = f"<{len(value)} chars>"
        shown.append((key, value))
    return f"{path}?{urlencode(shown, safe='<> ', quote_via=quote)}", spec_id


class SanitizeAccessLog(logging.Filter):
    """uvicorn's access log, with spec tokens replaced by spec ids (or dropped when JSON logs replace it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if get_settings().json_logs or not get_settings().access_log:
            return False
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str) and "?" in args[2]:
            path, _, query = args[2].partition("?")
            record.args = (*args[:2], loggable_path(path, query)[0], *args[3:])
        return True


def install_log_filter() -> None:
    """Attach the sanitizing filter to uvicorn's access logger (once)."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, SanitizeAccessLog) for f in access.filters):
        access.addFilter(SanitizeAccessLog())


def _json_body(status: int, message: str, field: str = "request") -> bytes:
    return json.dumps({"detail": [{"loc": [field], "msg": message, "type": "server_busy"}]}).encode()


class Guard:
    """See the module docstring. `cache` (optional) is the worker's CheckpointCache, reported by /readyz."""

    def __init__(self, app, cache=None):
        self.app, self.cache = app, cache
        self.in_flight = 0
        self.line: deque = deque()  # futures of requests waiting for a slot, first come first served
        self.started = time.monotonic()
        install_log_filter()
        # The event loop (probes, static files, queueing) needs the GIL back quickly from computing threads.
        sys.setswitchinterval(get_settings().gil_switch_interval)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        settings = get_settings()
        began = time.perf_counter()
        path, method = scope.get("path", ""), scope.get("method", "GET")
        request_id = _request_id(scope)
        head = method == "HEAD"
        inner = dict(scope, method="GET") if head else scope
        docs = path in DOCS_PATHS
        if docs:  # the page's bytes must be hashed: ask the inner app for them uncompressed
            inner["headers"] = [(k, v) for k, v in scope.get("headers", []) if k != b"accept-encoding"]
        state = {"status": None, "started": False, "done": False}
        budget = cancel.Budget(settings.request_timeout)

        async def respond(start: dict, body: bytes = b"", more: bool = False):
            """Send a response start (with our headers) and body; a HEAD gets the headers only."""
            headers = list(start.get("headers", []))
            names = {k.lower() for k, _ in headers}
            csp = CSP
            if docs:
                csp = _docs_policy(body)
            headers += [(k, v) for k, v in SECURITY_HEADERS if k not in names]
            if b"content-security-policy" not in names:
                headers.append((b"content-security-policy", csp.encode()))
            headers.append((b"x-request-id", request_id.encode()))
            state["status"], state["started"] = start["status"], True
            await send({**start, "headers": headers})
            if body or not more:
                await send({"type": "http.response.body", "body": b"" if head else body, "more_body": more})

        if path in PROBES and method in ("GET", "HEAD"):
            status, body = self._probe(path)
            start = {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8" if path == "/healthz" else b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"cache-control", b"no-store"),
                ],
            }
            await respond(start, body)
            return self._log(scope, state, began, request_id, budget)
        if len(scope.get("query_string", b"")) > settings.max_query_chars:
            body = _json_body(414, f"query: longer than {settings.max_query_chars} characters", "query")
            await respond(_start(414, body), body)
            return self._log(scope, state, began, request_id, budget)

        compute = is_compute(method, path)
        if compute and not await self._acquire(settings):
            await respond(*_busy(scope, settings, self.in_flight, len(self.line)))
            return self._log(scope, state, began, request_id, budget)
        budget = cancel.Budget(settings.request_timeout)  # the time limit counts from the slot, not the line

        held: list = []  # the docs pages: the start message, until the whole body is known

        async def guarded_send(message):
            if state["done"]:
                return  # the guard already answered (time limit): drop what the app sends late
            if message["type"] == "http.response.start":
                if docs:
                    held.append(message)
                    return
                await respond(message, more=True)
                return
            if message["type"] == "http.response.body":
                if docs:
                    held.append(message)
                    if not message.get("more_body"):
                        start, chunks = held[0], [m.get("body", b"") for m in held[1:]]
                        await respond(start, b"".join(chunks))
                    return
                if head:
                    if not message.get("more_body"):
                        await send({"type": "http.response.body", "body": b"", "more_body": False})
                    return
            await send(message)

        receive_guarded, watcher = await _watch_disconnect(scope, receive, budget)
        token = cancel.activate(budget)
        try:
            task = asyncio.ensure_future(self.app(inner, receive_guarded, guarded_send))
            # the engine stops itself at the deadline; this is the net for work that does not check in time
            # (a download of a static file or a page to a slow client is not cut short: only computations)
            done, _ = await asyncio.wait({task}, timeout=settings.request_timeout + 2.0 if compute else None)
            if not done:
                budget.cancel()
                if not state["started"]:
                    body = _json_body(
                        504, f"request: took longer than the limit of {settings.request_timeout:g} s and was stopped"
                    )
                    await respond(_start(504, body), body)
                state["done"] = True
                with contextlib.suppress(Exception):  # answered already; the app's own error is of no use now
                    await task  # the slot is held until the work has really stopped
            else:
                task.result()
        finally:
            if compute:
                self._release()
            cancel.deactivate(token)
            if watcher is not None:
                watcher.cancel()
            self._log(inner, state, began, request_id, budget)

    async def _acquire(self, settings) -> bool:
        """A compute slot now, or after waiting in the bounded line; False when the line is full or the wait is
        over `queue_timeout`."""
        if self.in_flight < settings.max_concurrent and not self.line:
            self.in_flight += 1
            return True
        if len(self.line) >= settings.max_queued:
            return False
        turn = asyncio.get_running_loop().create_future()
        self.line.append(turn)
        try:
            await asyncio.wait_for(asyncio.shield(turn), settings.queue_timeout)
            return True
        except TimeoutError:
            self._leave_line(turn)
            return False
        except asyncio.CancelledError:
            self._leave_line(turn)
            raise

    def _leave_line(self, turn) -> None:
        """Stop waiting; a slot handed over just as the wait ended is passed on."""
        if turn.done() and not turn.cancelled():
            self._release()
        else:
            turn.cancel()
        if turn in self.line:
            self.line.remove(turn)

    def _release(self) -> None:
        """Hand the slot to the first in line still waiting, or free it."""
        while self.line:
            turn = self.line.popleft()
            if not turn.done():
                turn.set_result(True)
                return
        self.in_flight -= 1

    def _probe(self, path: str) -> tuple[int, bytes]:
        """Liveness: the event loop answers. Readiness: a compute slot is free (with the cache's size)."""
        if path == "/healthz":
            return 200, b"ok"
        settings = get_settings()
        ready = self.in_flight < settings.max_concurrent or len(self.line) < settings.max_queued
        body = {
            "ready": ready,
            "in_flight": self.in_flight,
            "max_concurrent": settings.max_concurrent,
            "queued": len(self.line),
            "max_queued": settings.max_queued,
            "uptime_s": round(time.monotonic() - self.started, 1),
            "checkpoint_cache": self.cache.stats() if self.cache is not None else None,
        }
        return (200 if ready else 503), json.dumps(body).encode()

    def _log(self, scope, state, began, request_id, budget) -> None:
        settings = get_settings()
        if not settings.json_logs:
            return
        path, spec_id = loggable_path(scope.get("path", ""), scope.get("query_string", b"").decode("latin-1"))
        route = scope.get("route")
        client = scope.get("client") or ("", 0)
        entry = {
            "ts": round(time.time(), 3),
            "request_id": request_id,
            "method": scope.get("method"),
            "route": getattr(route, "path", None),
            "path": path,
            "status": state["status"],
            "duration_ms": round(1000 * (time.perf_counter() - began), 1),
            "work_units": budget.notes.get("work"),
            "spec_id": spec_id,
            "stopped": "client disconnected" if budget.cancelled and state["status"] != 504 else None,
            "client": client[0],
        }
        log.info(json.dumps(entry, separators=(",", ":")))


def _busy(scope, settings, running: int, queued: int) -> tuple[dict, bytes]:
    """The fast 503: JSON naming the limit, or for a page load a small page that reloads itself."""
    retry = str(settings.retry_after).encode()
    message = (
        f"request: this worker is busy ({running} computations running and {queued} waiting, the limits are "
        f"{settings.max_concurrent} and {settings.max_queued}); retry in {settings.retry_after} s"
    )
    accept = dict(scope.get("headers", [])).get(b"accept", b"")
    if (
        scope.get("method") == "GET"
        and b"text/html" in accept
        and not dict(scope.get("headers", [])).get(b"hx-request")
    ):
        body = (
            f'<!doctype html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" '
            f'content="{settings.retry_after}"><title>Busy</title></head><body><p>The server is busy; this page '
            f"reloads itself in {settings.retry_after} s.</p></body></html>"
        ).encode()
        start = _start(503, body, [(b"retry-after", retry)])
        start["headers"][0] = (b"content-type", b"text/html; charset=utf-8")
        return start, body
    body = _json_body(503, message)
    return _start(503, body, [(b"retry-after", retry)]), body


def _start(status: int, body: bytes, extra=()) -> dict:
    return {
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra],
    }


def _request_id(scope) -> str:
    """The client's X-Request-ID if it is a plain short token, else a fresh one."""
    for key, value in scope.get("headers", []):
        if key == b"x-request-id":
            candidate = value.decode("latin-1")
            if REQUEST_ID.match(candidate):
                return candidate
    return uuid.uuid4().hex


def _docs_policy(body: bytes) -> str:
    """The CSP of a /docs or /redoc page: exactly its inline scripts by hash, and ReDoc's blob: worker."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(m.group(1)).digest()).decode() + "'"
        for m in INLINE_SCRIPT.finditer(body)
    )
    return CSP.replace("script-src 'self'", f"script-src 'self' {hashes}".rstrip()) + "; worker-src 'self' blob:"


async def _watch_disconnect(scope, receive, budget: cancel.Budget):
    """A receive for the app, and a task that cancels the budget when the client disconnects.

    The body is handed to the app as it asks for it (so the body-size limit still sees every chunk); once it has
    all of it (at once for a request without a body) a watcher keeps reading, and a disconnect cancels the work
    and is passed on to whoever in the app listens for it (a streaming response)."""
    headers = dict(scope.get("headers", []))
    has_body = headers.get(b"content-length", b"0") not in (b"0", b"") or b"transfer-encoding" in headers
    pending: list = []
    gone = asyncio.Event()
    box = {"watcher": None}

    async def watch():
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                budget.cancel()
                gone.set()
                return

    def start_watching():
        if box["watcher"] is None:
            box["watcher"] = asyncio.ensure_future(watch())

    async def guarded_receive():
        if pending:
            return pending.pop(0)
        if box["watcher"] is not None:
            await gone.wait()
            return {"type": "http.disconnect"}
        message = await receive()
        if message["type"] == "http.disconnect":
            budget.cancel()
            gone.set()
        elif message["type"] == "http.request" and not message.get("more_body"):
            start_watching()
        return message

    if not has_body:  # its one (empty) body message is read now, then the watcher takes over
        first = await receive()
        if first["type"] == "http.disconnect":
            budget.cancel()
            gone.set()
        else:
            pending.append(first)
            start_watching()

    class _Lazy:
        """The watcher task, which may start only after the body has been read."""

        def cancel(self):
            if box["watcher"] is not None:
                box["watcher"].cancel()

    return guarded_receive, _Lazy()
