"""Packaging, as a new user meets it: build the sdist and from it the wheel, install the wheel into a fresh venv,
start `backprop-viz serve` from another folder, and fetch every page and every asset those pages reference.

The fresh venv gets backprop-viz from the wheel alone. Its dependencies (numpy, scipy, ... ~300 MB) are not
downloaded again: a .pth file lends it the test venv's site-packages, which holds the dependencies but not
backprop-viz's code (that is an editable install whose finder a .pth-added folder never runs). The test checks that
`app` and `engine` are imported from the fresh venv, and, separately, that every third-party module app/ and engine/
import is declared in the wheel's Requires-Dist, so a clean `pip install` would bring it. Set
BACKPROP_VIZ_WHEEL_FULL_INSTALL=1 to install the dependencies from the package index instead.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import socket
import subprocess
import sys
import sysconfig
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
from email.parser import Parser
from html.parser import HTMLParser
from importlib import metadata
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
DIST = "backprop-viz"
PAGES_TO_START_FROM = ["/", "/docs", "/redoc"]
MAX_PAGES = 60
FULL_INSTALL = os.environ.get("BACKPROP_VIZ_WHEEL_FULL_INSTALL") == "1"
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback never goes through a proxy


def tracked_files(folder: str) -> list[str]:
    """Files of the repository under `folder` (git's list when this is a checkout, else the file tree)."""
    if (ROOT / ".git").exists() and shutil.which("git"):
        out = subprocess.run(
            ["git", "ls-files", "--", folder], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout
        return [line for line in out.splitlines() if (ROOT / line).is_file()]
    return [p.relative_to(ROOT).as_posix() for p in (ROOT / folder).rglob("*") if p.is_file()]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    """`python -m build`: the sdist, then the wheel built from the unpacked sdist (as pip does from PyPI)."""
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    (wheel,) = out.glob("*.whl")
    (sdist,) = out.glob("*.tar.gz")
    return {"wheel": wheel, "sdist": sdist}


def test_wheel_holds_code_templates_static_and_licences(built):
    names = set(zipfile.ZipFile(built["wheel"]).namelist())
    for folder in ("app", "engine"):
        for path in tracked_files(folder):
            if path.endswith(".py"):
                assert path in names, f"{path} is not in the wheel (a subpackage missing from pyproject's list?)"
    for folder in ("templates", "static"):
        files = tracked_files(folder)
        assert files
        for path in files:
            assert f"app/{path}" in names, f"{path} is not in the wheel as app/{path}"
    info = next(n for n in names if n.endswith(".dist-info/METADATA"))
    meta = Parser().parsestr(zipfile.ZipFile(built["wheel"]).read(info).decode())
    assert meta["License-Expression"] == "MIT"
    assert "LICENSE" in meta.get_all("License-File")
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert meta["Version"] == metadata.version(DIST)


def test_sdist_holds_templates_and_static(built):
    with tarfile.open(built["sdist"]) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    for folder in ("templates", "static"):
        for path in tracked_files(folder):
            assert path in names, f"{path} is not in the sdist"
    assert "LICENSE" in names and "pyproject.toml" in names


def imported_top_modules(folder: str) -> set[str]:
    """Top-level names of every absolute import in the folder's .py files (relative imports left out)."""
    found = set()
    for path in tracked_files(folder):
        if path.endswith(".py"):
            for node in ast.walk(ast.parse((ROOT / path).read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    found |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    found.add(node.module.split(".")[0])
    return found


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(req: str) -> str:
    return normalize(re.split(r"[ ;<>=!~\[(]", req, maxsplit=1)[0])


def with_dependencies(names: set[str]) -> set[str]:
    """The distributions and, recursively, what they require (extras left out), as installed here."""
    todo, done = list(names), set()
    while todo:
        name = todo.pop()
        if name in done:
            continue
        done.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        todo += [requirement_name(r) for r in requires if "extra ==" not in r]
    return done


OPTIONAL_IMPORTS = {"torch"}  # compared against when installed, never required


def test_every_third_party_import_is_a_declared_dependency(built):
    names = zipfile.ZipFile(built["wheel"]).namelist()
    info = next(n for n in names if n.endswith(".dist-info/METADATA"))
    meta = Parser().parsestr(zipfile.ZipFile(built["wheel"]).read(info).decode())
    required = {requirement_name(req) for req in meta.get_all("Requires-Dist") if "extra ==" not in req}
    required = with_dependencies(required)  # jinja2 brings markupsafe, fastapi brings starlette
    stdlib = set(sys.stdlib_module_names)
    providers = metadata.packages_distributions()
    missing = []
    for module in sorted(imported_top_modules("app") | imported_top_modules("engine")):
        if module in stdlib or module in ("app", "engine", "__future__") or module in OPTIONAL_IMPORTS:
            continue
        dists = {normalize(d) for d in providers.get(module, [])}
        if not dists & required:
            missing.append(f"{module} (from {sorted(dists) or 'no installed distribution'})")
    assert missing == [], f"imported but not in [project] dependencies: {missing}"


class References(HTMLParser):
    """The URLs a page loads (scripts, styles, icons, images) and the pages it links to."""

    def __init__(self):
        super().__init__()
        self.assets: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "script" and a.get("src"):
            self.assets.append(a["src"])
        elif tag == "link" and a.get("href"):
            self.assets.append(a["href"])
        elif tag in ("img", "source") and a.get("src"):
            self.assets.append(a["src"])
        elif tag == "a" and a.get("href"):
            self.links.append(a["href"])


JS_IMPORT = re.compile(r"""(?:\bimport\s*(?:[\w*{}\s,]+\s*from\s*)?|\bimport\s*\(\s*)["'](\.{1,2}/[^"']+)["']""")
CSS_URL = re.compile(r"""url\(\s*["']?(?!data:)([^"')]+)["']?\s*\)""")


def css_references(css: str) -> list[str]:
    """url(...)s of a stylesheet, without the .woff/.ttf fallbacks of a font whose .woff2 is listed (KaTeX's CSS
    names all three; browsers take the woff2, the only one vendored: see scripts/vendor_assets.sh)."""
    refs = CSS_URL.findall(css)
    woff2 = {ref.rsplit(".", 1)[0] for ref in refs if ref.endswith(".woff2")}
    return [ref for ref in refs if not (ref.endswith((".woff", ".ttf")) and ref.rsplit(".", 1)[0] in woff2)]


def fetch(url: str) -> tuple[int, str, bytes]:
    try:
        with OPENER.open(url, timeout=60) as resp:
            return resp.status, resp.headers.get("content-type", ""), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("content-type", ""), e.read()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def same_origin(base: str, url: str) -> bool:
    return urlsplit(url).netloc in ("", urlsplit(base).netloc) and urlsplit(url).scheme in ("", "http")


@pytest.fixture(scope="module")
def fresh_venv(built, tmp_path_factory) -> Path:
    """A new venv with the wheel installed (dependencies lent by the test venv, unless FULL_INSTALL)."""
    venv = tmp_path_factory.mktemp("fresh") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    if FULL_INSTALL:
        cmd = [str(python), "-m", "pip", "install", "--quiet", str(built["wheel"])]
    else:
        purelib = subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        Path(purelib, "zz_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
        cmd = [str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(built["wheel"])]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    return venv


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    return {**env, "PYTHONUNBUFFERED": "1", "OPENBLAS_NUM_THREADS": "1"}


def test_installed_code_comes_from_the_wheel(fresh_venv, tmp_path):
    python = fresh_venv / "bin" / "python"
    out = subprocess.run(
        [
            str(python),
            "-c",
            "import app, engine, app.templating as t; print(app.__file__, engine.__file__, t.STATIC_DIR)",
        ],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    for path in out.stdout.split():
        assert Path(path).resolve().is_relative_to(fresh_venv.resolve()), path
    version = subprocess.run(
        [str(fresh_venv / "bin" / "backprop-viz"), "--version"],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert version.stdout.strip() == f"backprop-viz {metadata.version(DIST)}"


@pytest.fixture(scope="module")
def served(fresh_venv, tmp_path_factory):
    """`backprop-viz serve` of the fresh venv, started in an empty folder; yields its base URL."""
    folder = tmp_path_factory.mktemp("elsewhere")
    port = free_port()
    log = folder / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(fresh_venv / "bin" / "backprop-viz"), "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=folder,
            env=clean_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(1500):  # a hang guard (5 minutes), not a speed test: start-up is slow on a loaded machine
            if proc.poll() is not None:
                pytest.fail(f"backprop-viz serve exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
            try:
                if fetch(f"{base}/healthz")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        else:
            pytest.fail(f"backprop-viz serve did not answer /healthz:\n{log.read_text()[-4000:]}")
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
    assert "Traceback" not in log.read_text(), log.read_text()[-4000:]


def test_every_page_and_every_asset_it_references(served):
    pages, assets, seen_assets = list(PAGES_TO_START_FROM), [], set()
    visited: set[str] = set()
    problems = []
    while pages and len(visited) < MAX_PAGES:
        path = pages.pop(0)
        if path in visited:
            continue
        visited.add(path)
        status, ctype, body = fetch(served + path)
        if status != 200 or "text/html" not in ctype:
            problems.append(f"page {path}: {status} {ctype}")
            continue
        refs = References()
        refs.feed(body.decode("utf-8", errors="replace"))
        for href in refs.links:
            url = urljoin(served + path, href)
            if same_origin(served, url) and not urlsplit(url).path.startswith(("/static/", "/api/")):
                target = urlsplit(url).path + (f"?{urlsplit(url).query}" if urlsplit(url).query else "")
                if urlsplit(url).path.split("/")[-1].count(".") == 0 and target not in visited:
                    pages.append(target)
        assets += [urljoin(served + path, src) for src in refs.assets]
    while assets:
        url = assets.pop(0)
        if url in seen_assets or not same_origin(served, url):
            if not same_origin(served, url):
                problems.append(f"asset from another host: {url}")
            continue
        seen_assets.add(url)
        status, ctype, body = fetch(url)
        if status != 200:
            problems.append(f"asset {url}: {status}")
            continue
        text = body.decode("utf-8", errors="replace")
        if url.split("?")[0].endswith(".js"):
            assets += [urljoin(url, ref) for ref in JS_IMPORT.findall(text)]
        elif url.split("?")[0].endswith(".css"):
            assets += [urljoin(url, ref) for ref in css_references(text)]
    assert problems == []
    assert {"/", "/step", "/race", "/playground", "/notes", "/docs", "/redoc"} <= visited
    # the vendored scripts, fonts and styles all came from the installed package
    for needle in ("htmx.min.js", "katex.min.css", "KaTeX_Main-Regular.woff2", "swagger-ui-bundle.js", "redoc."):
        assert any(needle in url for url in seen_assets), needle
    assert fetch(served + "/openapi.json")[0] == 200
