"""engine's public API: every name of `__all__` is there, and the README's example runs as written (doctest)."""

import doctest
import re
from pathlib import Path

import engine

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "## Using the engine from Python"


def readme_example() -> str:
    """The README section that shows the engine from Python (up to the next heading)."""
    text = README.read_text(encoding="utf-8")
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    return text[start : end if end >= 0 else len(text)]


def test_all_names_exist_once():
    assert len(engine.__all__) == len(set(engine.__all__))
    missing = [name for name in engine.__all__ if not hasattr(engine, name)]
    assert missing == []


def test_public_api_covers_the_four_uses():
    for name in ("train", "train_runs", "step_record", "check_experiment", "parameter_grid", "slice_grid"):
        assert name in engine.__all__
        assert callable(getattr(engine, name)) and getattr(engine, name).__doc__


def test_no_public_name_is_left_out():
    """Functions and classes defined at the top of engine/__init__ are all exported (none half-public)."""
    imported = set(re.findall(r"^from \.\w+ import (.+)$", Path(engine.__file__).read_text(), re.M))
    names = {n.strip() for line in imported for n in line.split(",")}
    assert names == set(engine.__all__)


def test_readme_example_runs_as_written():
    section = readme_example()
    assert ">>> import engine" in section
    parser = doctest.DocTestParser()
    test = parser.get_doctest(section, {}, "README: Using the engine from Python", str(README), 0)
    assert len(test.examples) >= 10
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    failures = []
    runner.run(test, out=failures.append)
    assert runner.summarize(verbose=False).failed == 0, "".join(failures)
