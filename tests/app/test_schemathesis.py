"""Schemathesis against /openapi.json of a real uvicorn: a bounded run (20 examples per operation, fixed seed,
no shrinking) that must find 0 failures. Takes about a minute.

Checks: all of them, except
* positive_data_acceptance: it expects every schema-valid request to be accepted, but part of this API's
  validity cannot be written in JSON Schema: the work budget (steps x rows x parameters), the input width
  matching the dataset, weights shaped like the layers, exactly one of `spec`/`spec_token`, what a token
  decodes to. Those are documented 422s (test_errors.py checks each, and that the schema's own bounds agree
  with the engine's);
* ignored_auth, object_level_authorization: the API has no authentication.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES_PER_OPERATION = 20
EXCLUDED_CHECKS = ["positive_data_acceptance", "ignored_auth", "object_level_authorization"]


def st_command() -> list[str]:
    st = Path(sys.executable).parent / "st"
    if st.exists():
        return [str(st)]
    found = shutil.which("st")
    if found is None:
        pytest.fail("schemathesis's `st` is not installed (pip install -e '.[test]')")
    return [found]


def test_schemathesis_finds_no_failures(start_server, tmp_path):
    base = start_server()
    cmd = [
        *st_command(),
        "run",
        f"{base}/openapi.json",
        "--max-examples",
        str(EXAMPLES_PER_OPERATION),
        "--no-shrink",
        "--seed",
        "1",
        "--generation-database",
        "none",
        "--checks",
        "all",
        "--exclude-checks",
        ",".join(EXCLUDED_CHECKS),
        "--request-timeout",
        "120",  # a hang guard, not a speed test: the run is bounded by its example count
        "--no-color",
    ]
    # cwd: .schemathesis/ and .hypothesis/ land in the temp dir, not in the repo
    env = {**os.environ, "NO_COLOR": "1"}
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1800)  # hang guard only
    output = proc.stdout + proc.stderr
    server_log = start_server.log(base)
    assert proc.returncode == 0, (
        f"schemathesis exit code {proc.returncode}\n{output}\n--- uvicorn log ---\n{server_log[-5000:]}"
    )
    assert "Exception in ASGI application" not in server_log, server_log[-5000:]
