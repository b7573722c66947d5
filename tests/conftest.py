"""Suite-wide: when one pytest run collects everything, the browser tests run last.

anyio-based tests (the API tests' `client`) cannot run after a Playwright test in the same process (Playwright's
sync API leaves an event loop behind), so a plain `pytest` over the whole tree orders tests/browser after the rest.
`make test` runs them in a pytest process of their own anyway (see the Makefile).
"""

from pathlib import Path

import pytest

BROWSER_DIR = Path(__file__).resolve().parent / "browser"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: BROWSER_DIR in Path(str(item.path)).resolve().parents)  # stable sort
