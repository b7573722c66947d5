"""Static files: content-hash URLs cached for a year, ETag revalidation, gzip done once, nothing outside static/;
and app.serialize: strict JSON with NaN/Inf as null, NumPy arrays of any layout."""

import asyncio
import json
import re

import httpx
import numpy as np
import pytest

from app.main import app
from app.serialize import clean, dumps
from app.static_files import StaticAssets
from app.templating import PLOTLY_URL, STATIC_DIR, static_url


def get(path, headers=None, method="GET"):
    async def go():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
            return await c.request(method, path, headers=headers or {})

    return asyncio.run(go())


def test_versioned_url_is_immutable_and_gzipped_once():
    url = static_url("js/app.js")
    path, version = url.split("?v=")
    assert path == "/static/js/app.js" and re.fullmatch(r"[0-9a-f]{12}", version)
    r = get(url, {"accept-encoding": "gzip"})
    assert r.status_code == 200
    assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert r.headers["etag"] == f'"{version}"'
    assert r.headers["content-type"].startswith("text/javascript")
    assert r.content == (STATIC_DIR / "js/app.js").read_bytes()  # httpx undid the gzip


def test_plain_or_stale_url_revalidates_with_etag():
    plain = get("/static/css/app.css", {"accept-encoding": "identity"})
    assert plain.status_code == 200 and plain.headers["cache-control"] == "no-cache"
    assert "content-encoding" not in plain.headers
    assert plain.content == (STATIC_DIR / "css/app.css").read_bytes()
    stale = get("/static/css/app.css?v=000000000000")
    assert stale.headers["cache-control"] == "no-cache"
    again = get("/static/css/app.css", {"if-none-match": plain.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    other = get("/static/css/app.css", {"if-none-match": '"nope"'})
    assert other.status_code == 200


def test_gzip_body_is_the_file_compressed_and_fonts_are_not_recompressed():
    r = get(PLOTLY_URL, {"accept-encoding": "gzip, br"})
    assert r.headers["content-encoding"] == "gzip"
    raw = (STATIC_DIR / "vendor/plotly/plotly-cartesian.min.js").read_bytes()
    assert int(r.headers["content-length"]) < len(raw) / 2
    assert r.content == raw
    font = next((STATIC_DIR / "vendor/katex/fonts").glob("*.woff2")).relative_to(STATIC_DIR).as_posix()
    f = get("/static/" + font, {"accept-encoding": "gzip"})
    assert f.status_code == 200 and "content-encoding" not in f.headers and f.headers["content-type"] == "font/woff2"


def test_head_and_methods():
    r = get("/static/js/app.js", {"accept-encoding": "identity"}, method="HEAD")
    assert r.status_code == 200 and r.content == b""
    assert int(r.headers["content-length"]) == len((STATIC_DIR / "js/app.js").read_bytes())
    assert get("/static/js/app.js", method="POST").status_code == 405


@pytest.mark.parametrize(
    "path", ["/static/../app/main.py", "/static/%2e%2e/app/main.py", "/static/", "/static/js", "/static/nope.js"]
)
def test_nothing_outside_static_or_missing(path):
    assert get(path).status_code == 404


def test_pages_load_the_vendored_cartesian_plotly_only_where_they_draw():
    assert PLOTLY_URL.startswith("/static/vendor/plotly/plotly-cartesian.min.js?v=")
    assert PLOTLY_URL not in get("/notes").text and PLOTLY_URL not in get("/").text
    assert PLOTLY_URL in get("/race").text
    old = get("/vendor/plotly.min.js")
    assert old.status_code == 308 and old.headers["location"] == PLOTLY_URL


def test_edited_file_gets_a_new_version(tmp_path):
    (tmp_path / "a.js").write_text("export const a = 1;\n")
    assets = StaticAssets(tmp_path, "/s")
    first = assets.url("a.js")
    (tmp_path / "a.js").write_text("export const a = 22;\n")
    assert assets.url("a.js") != first
    assert assets.url("missing.js") == "/s/missing.js"


def test_serialize_strict_json_nan_inf_null_any_layout():
    m = np.arange(6.0).reshape(2, 3)
    m[0, 1] = np.nan
    payload = {
        "matrix": m,
        "transposed": m.T,  # not C-contiguous
        "column": m[:, 1],
        "big_endian": np.array([1.5, np.inf], dtype=">f8"),
        "scalars": [np.float64(-np.inf), np.int64(3), np.bool_(True), float("nan"), np.float32(0.5)],
        "bytes": b"ab\xff",
        1: "key",
    }
    text = dumps(payload).decode()
    assert "NaN" not in text and "Infinity" not in text
    back = json.loads(text)
    assert back["matrix"] == [[0.0, None, 2.0], [3.0, 4.0, 5.0]]
    assert back["transposed"] == [[0.0, 3.0], [None, 4.0], [2.0, 5.0]]
    assert back["column"] == [None, 4.0]
    assert back["big_endian"] == [1.5, None]
    assert back["scalars"] == [None, 3, True, None, 0.5]
    assert back["bytes"] == "ab\ufffd" and back["1"] == "key"
    assert clean(payload)["transposed"] == back["transposed"] and clean(float("inf")) is None
    # integers beyond 64 bits (a client's echoed input): orjson refuses them, dumps writes them exactly
    huge = {"n": 10**30, "m": [-(2**70), 2**64 - 1], "ok": np.int64(-(2**63))}
    assert json.loads(dumps(huge)) == {"n": 10**30, "m": [-(2**70), 2**64 - 1], "ok": -(2**63)}
    r = get("/api/v1/datasets")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
