#!/usr/bin/env bash
# Re-fetch the vendored front-end assets (htmx, its SSE extension, KaTeX, plotly.js,
# Swagger UI and ReDoc for /docs and /redoc) from
# the npm registry with `npm pack` and copy the few files the pages need into
# static/vendor/. Pages must work with no internet, so nothing is loaded from a
# CDN at run time; these copies are committed to the repo.
#
# Usage: scripts/vendor_assets.sh
#
# Everything is unpacked in a temporary directory (no node_modules, no
# package.json, no tarballs are left in the repo). Only static/vendor/htmx/,
# static/vendor/katex/, static/vendor/plotly/, static/vendor/swagger-ui/,
# static/vendor/redoc/ and static/vendor/VERSIONS.txt are replaced; anything
# else under static/vendor/ is left alone.
set -euo pipefail

HTMX="htmx.org@2.0.11"
HTMX_SSE="htmx-ext-sse@2.2.4"
KATEX="katex@0.19.1"
# plotly.js cartesian partial bundle: scatter, bar, heatmap, contour (what the pages draw), 1.5 MB instead of 4.8
PLOTLY="plotly.js-cartesian-dist-min@4.1.1"
# /docs and /redoc (app/docs.py). ReDoc stays on 2.x, the major FastAPI's get_redoc_html is written for.
SWAGGER_UI="swagger-ui-dist@5.35.0"
REDOC="redoc@2.5.4"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
vendor="$repo_root/static/vendor"

for tool in npm tar sha256sum; do
    command -v "$tool" >/dev/null 2>&1 || { echo "vendor_assets: '$tool' not found" >&2; exit 1; }
done

work="$(mktemp -d "${TMPDIR:-/tmp}/vendor_assets.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# fetch SPEC DIR: npm pack SPEC in $work and unpack it into $work/DIR/package
fetch() {
    local spec="$1" dir="$2" tgz
    tgz="$(cd "$work" && npm pack --silent "$spec" | tail -n 1)"
    [[ -f "$work/$tgz" ]] || { echo "vendor_assets: npm pack $spec produced no tarball" >&2; exit 1; }
    mkdir -p "$work/$dir"
    tar -xzf "$work/$tgz" -C "$work/$dir"
    echo "fetched $spec ($tgz)" >&2
}

# need FILE: fail loudly if an expected file is not in the package
need() {
    [[ -f "$1" ]] || { echo "vendor_assets: missing $1 (package layout changed?)" >&2; exit 1; }
}

fetch "$HTMX" htmx
fetch "$HTMX_SSE" htmx-sse
fetch "$KATEX" katex
fetch "$PLOTLY" plotly
fetch "$SWAGGER_UI" swagger-ui
fetch "$REDOC" redoc

# Stage the new tree first, swap it in only when everything was found.
stage="$work/stage"
mkdir -p "$stage/htmx" "$stage/katex/contrib" "$stage/katex/fonts" "$stage/plotly" "$stage/swagger-ui" "$stage/redoc"

p="$work/htmx/package"
need "$p/dist/htmx.min.js"; need "$p/LICENSE"
cp "$p/dist/htmx.min.js" "$stage/htmx/htmx.min.js"
cp "$p/LICENSE" "$stage/htmx/LICENSE"

p="$work/htmx-sse/package"
need "$p/dist/sse.min.js"
cp "$p/dist/sse.min.js" "$stage/htmx/sse.min.js"
if [[ -f "$p/LICENSE" ]]; then
    cp "$p/LICENSE" "$stage/htmx/LICENSE-htmx-ext-sse"
fi

p="$work/katex/package"
need "$p/dist/katex.min.js"; need "$p/dist/katex.min.css"
need "$p/dist/contrib/auto-render.min.js"; need "$p/LICENSE"
cp "$p/dist/katex.min.js" "$p/dist/katex.min.css" "$stage/katex/"
cp "$p/dist/contrib/auto-render.min.js" "$stage/katex/contrib/"
cp "$p/LICENSE" "$stage/katex/LICENSE"
shopt -s nullglob
woff2=("$p"/dist/fonts/*.woff2)
shopt -u nullglob
(( ${#woff2[@]} > 0 )) || { echo "vendor_assets: no woff2 fonts in $KATEX" >&2; exit 1; }
cp "${woff2[@]}" "$stage/katex/fonts/"

p="$work/plotly/package"
need "$p/plotly-cartesian.min.js"; need "$p/LICENSE"
cp "$p/plotly-cartesian.min.js" "$stage/plotly/plotly-cartesian.min.js"
cp "$p/LICENSE" "$stage/plotly/LICENSE"

# Swagger UI: the bundle and its CSS (the init code is ours, static/js/swagger-init.js: no inline script)
p="$work/swagger-ui/package"
need "$p/swagger-ui-bundle.js"; need "$p/swagger-ui.css"; need "$p/LICENSE"; need "$p/NOTICE"
cp "$p/swagger-ui-bundle.js" "$p/swagger-ui-bundle.js.LICENSE.txt" "$p/swagger-ui.css" "$stage/swagger-ui/"
cp "$p/LICENSE" "$p/NOTICE" "$stage/swagger-ui/"

# ReDoc: the standalone bundle (no fonts from a CDN: app/docs.py passes with_google_fonts=False)
p="$work/redoc/package"
need "$p/bundles/redoc.standalone.js"; need "$p/LICENSE"
cp "$p/bundles/redoc.standalone.js" "$p/bundles/redoc.standalone.js.LICENSE.txt" "$stage/redoc/"
cp "$p/LICENSE" "$stage/redoc/LICENSE"
# Its sidebar credit ("API docs by Redocly") loads a logo from cdn.redoc.ly whatever the options: point that at an
# empty data: URL (the <img> hides itself when it fails to load), so /redoc asks nothing off the machine. The only
# change made to a vendored file; VERSIONS.txt records the patched file's hash.
sed -i 's#https://cdn\.redoc\.ly/redoc/logo-mini\.svg#data:,#g' "$stage/redoc/redoc.standalone.js"
if grep -q 'cdn\.redoc\.ly' "$stage/redoc/redoc.standalone.js"; then
    echo "vendor_assets: redoc.standalone.js still names cdn.redoc.ly (bundle changed?)" >&2; exit 1
fi

# Every woff2 font the CSS names must be present (woff/ttf fallbacks are
# deliberately not vendored: Chromium takes the woff2 entry, listed first).
missing=0
while read -r ref; do
    [[ -f "$stage/katex/$ref" ]] || { echo "vendor_assets: katex.min.css references missing $ref" >&2; missing=1; }
done < <(grep -o 'fonts/[A-Za-z0-9_.-]*\.woff2' "$stage/katex/katex.min.css" | sort -u)
(( missing == 0 )) || exit 1

# VERSIONS.txt: which package each file came from, with its sha256.
# Deterministic (no dates) so that a re-run with the same pins gives no diff.
{
    echo "# Vendored front-end assets, written by scripts/vendor_assets.sh (do not edit by hand)."
    echo "# Paths are relative to static/vendor/."
    echo
    section() {
        local spec="$1"; shift
        echo "[$spec]"
        (cd "$stage" && sha256sum "$@" | sort -k2)
        echo
    }
    section "$HTMX" htmx/htmx.min.js htmx/LICENSE
    if [[ -f "$stage/htmx/LICENSE-htmx-ext-sse" ]]; then
        section "$HTMX_SSE" htmx/sse.min.js htmx/LICENSE-htmx-ext-sse
    else
        section "$HTMX_SSE" htmx/sse.min.js
    fi
    # shellcheck disable=SC2046
    section "$KATEX" katex/katex.min.js katex/katex.min.css katex/contrib/auto-render.min.js \
        katex/LICENSE $(cd "$stage" && ls katex/fonts/*.woff2)
    section "$PLOTLY" plotly/LICENSE plotly/plotly-cartesian.min.js
    section "$SWAGGER_UI" swagger-ui/LICENSE swagger-ui/NOTICE swagger-ui/swagger-ui-bundle.js \
        swagger-ui/swagger-ui-bundle.js.LICENSE.txt swagger-ui/swagger-ui.css
    section "$REDOC" redoc/LICENSE redoc/redoc.standalone.js redoc/redoc.standalone.js.LICENSE.txt
} > "$stage/VERSIONS.txt"

mkdir -p "$vendor"
rm -rf "$vendor/htmx" "$vendor/katex" "$vendor/plotly" "$vendor/swagger-ui" "$vendor/redoc"
cp -R "$stage/htmx" "$stage/katex" "$stage/plotly" "$stage/swagger-ui" "$stage/redoc" "$stage/VERSIONS.txt" "$vendor/"

echo "vendored into $vendor:" >&2
(cd "$vendor" && du -sh htmx katex plotly swagger-ui redoc >&2)
