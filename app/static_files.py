"""Static assets served from memory, compressed once, with content-hash ETags and long caching for versioned URLs.

A class opening a page at once must cost the server almost nothing (issue 13): recompressing plotly.js per download
cost 0.24 s of CPU each, so every text asset is gzipped once (level 9, when it is first needed or at `preload`) and
kept in memory with its raw bytes. Answers:

* `static_url(path)` (app.templating, the one place URLs are made) appends `?v=<content hash>`; a request whose `v`
  matches the file's current hash gets `Cache-Control: public, max-age=31536000, immutable` (the URL changes when
  the file does);
* any other request (ES modules import each other by relative path, KaTeX's CSS names its fonts by relative path)
  gets `Cache-Control: no-cache` and a strong ETag, so a browser revalidates and a 304 costs a few microseconds;
* `If-None-Match` with the current ETag -> 304; `Accept-Encoding: gzip` -> the precompressed body, when smaller.

`ServeStatic` answers /static/... as a middleware, before routing: FastAPI's router tries its ~80 routes in turn
for every request (about 1 ms of CPU here), which would be most of a static file's cost. The mount at /static stays
for anything that builds URLs from the app's routes.

Each request stats the file (a few microseconds) and reloads it if its size or mtime changed, so editing a file
under static/ while the server runs is picked up (development), and the hash in `static_url` follows it.
"""

import gzip
import hashlib
import mimetypes
import os
import stat
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs

from starlette.types import Receive, Scope, Send

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
IMMUTABLE_B, REVALIDATE_B = IMMUTABLE.encode(), REVALIDATE.encode()
# compressible by type; fonts (woff2), images are already compressed
COMPRESSIBLE = (".js", ".mjs", ".css", ".svg", ".json", ".txt", ".html", ".map", ".md", ".xml")
TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
    ".md": "text/plain; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".map": "application/json",
    ".woff2": "font/woff2",
    ".woff": "font/woff",
    ".ttf": "font/ttf",
    ".png": "image/png",
    ".ico": "image/x-icon",
}


@dataclass(frozen=True)
class Asset:
    """One file as served: its bytes, its gzipped bytes (None when gzip does not pay), hash and type."""

    stamp: tuple[int, int]  # (size, mtime_ns) of the file these bytes came from
    body: bytes
    gz: bytes | None
    version: str  # the first 12 hex digits of the content's sha256
    etag: str
    media_type: str


def _media_type(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in TYPES:
        return TYPES[suffix]
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed or "application/octet-stream"


def _load(path: Path, stamp: tuple[int, int]) -> Asset:
    body = path.read_bytes()
    version = hashlib.sha256(body).hexdigest()[:12]
    gz = None
    if path.suffix.lower() in COMPRESSIBLE and len(body) > 512:
        packed = gzip.compress(body, compresslevel=9, mtime=0)  # mtime=0: the same bytes on every worker
        if len(packed) < 0.9 * len(body):
            gz = packed
    return Asset(stamp, body, gz, version, f'"{version}"', _media_type(path))


class StaticAssets:
    """An ASGI app serving the files under `directory` (mount it at `prefix`), and the URLs of those files."""

    def __init__(self, directory: Path | str, prefix: str = "/static"):
        self.directory = Path(directory).resolve()
        self.prefix = "/" + prefix.strip("/")
        self._assets: dict[str, Asset] = {}
        self._lock = threading.Lock()

    # ---- files -------------------------------------------------------------------------------------------
    def get(self, relative: str) -> Asset | None:
        """The current Asset of a file (loaded and compressed once per version of the file), or None when the path
        is not a regular file under the directory (no `..`, no hidden parts)."""
        relative = relative.lstrip("/")
        if not relative or any(part in ("", ".", "..") or part[0] == "." for part in relative.split("/")):
            return None
        path = self.directory / relative
        try:
            st = path.stat()
        except (OSError, ValueError):
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        stamp = (st.st_size, st.st_mtime_ns)
        asset = self._assets.get(relative)
        if asset is None or asset.stamp != stamp:
            with self._lock:
                asset = self._assets.get(relative)
                if asset is None or asset.stamp != stamp:
                    asset = self._assets[relative] = _load(path, stamp)
        return asset

    def preload(self) -> int:
        """Load and compress every file now (at start-up), so no request pays for it; returns the file count."""
        count = 0
        for root, dirs, files in os.walk(self.directory):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            for name in files:
                relative = Path(root, name).relative_to(self.directory).as_posix()
                if self.get(relative) is not None:
                    count += 1
        return count

    def url(self, relative: str) -> str:
        """`<prefix>/<relative>?v=<content hash>` (the plain URL when the file does not exist)."""
        relative = relative.lstrip("/")
        asset = self.get(relative)
        base = f"{self.prefix}/{relative}"
        return base if asset is None else f"{base}?v={asset.version}"

    # ---- ASGI --------------------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """As a mounted app: the path below the mount point."""
        if scope["type"] != "http":  # pragma: no cover
            return
        path, root = scope["path"], scope.get("root_path", "")
        await self.serve(scope, send, path[len(root) :] if root and path.startswith(root + "/") else path)

    async def serve(self, scope: Scope, send: Send, relative: str) -> None:
        """Answer a GET or HEAD of `relative` with raw ASGI messages (a few microseconds: no Response object)."""
        method = scope["method"]
        if method not in ("GET", "HEAD"):
            return await _plain(send, 405, b"Method Not Allowed", [(b"allow", b"GET, HEAD")])
        asset = self.get(relative)
        if asset is None:
            return await _plain(send, 404, b"Not Found")
        if_none_match = accept_encoding = None
        for name, value in scope["headers"]:
            if name == b"if-none-match":
                if_none_match = value.decode("latin-1")
            elif name == b"accept-encoding":
                accept_encoding = value.decode("latin-1")
        query = scope.get("query_string", b"")
        versioned = query == b"v=" + asset.version.encode() or asset.version in parse_qs(query.decode("latin-1")).get(
            "v", ()
        )
        headers = [
            (b"etag", asset.etag.encode()),
            (b"cache-control", IMMUTABLE_B if versioned else REVALIDATE_B),
            (b"vary", b"Accept-Encoding"),
        ]
        if _matches(if_none_match, asset.etag):
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            return await send({"type": "http.response.body", "body": b""})
        body = asset.body
        if asset.gz is not None and accept_encoding and _accepts_gzip(accept_encoding):
            body = asset.gz
            headers.append((b"content-encoding", b"gzip"))
        headers += [(b"content-type", asset.media_type.encode()), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})


async def _plain(send: Send, status: int, text: bytes, extra: list | None = None) -> None:
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(text)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra or [])})
    await send({"type": "http.response.body", "body": text})


class ServeStatic:
    """Middleware: requests under `assets.prefix` are answered by `assets` at once, everything else goes on."""

    def __init__(self, app, assets: StaticAssets):
        self.app, self.assets = app, assets
        self.start = assets.prefix + "/"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(self.start):
            await self.assets.serve(scope, send, scope["path"][len(self.start) :])
            return
        await self.app(scope, receive, send)


def _matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 weak comparison of If-None-Match against our ETag."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in if_none_match.split(","))


def _accepts_gzip(accept_encoding: str) -> bool:
    """True when Accept-Encoding lists gzip (or *) without q=0."""
    for item in accept_encoding.lower().split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip() in ("gzip", "*"):
            q = params.strip().removeprefix("q=")
            try:
                return not params or float(q) > 0
            except ValueError:
                return True
    return False
