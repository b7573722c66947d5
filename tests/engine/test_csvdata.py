"""engine.csvdata (CSV through the csv module) and explicit data with a test split."""

import numpy as np
import pytest

from engine.csvdata import parse_points, targets, to_csv
from engine.datasets import make_custom
from engine.experiment import prepare
from engine.spec import experiment_from_dict


def test_comma_file_with_quoted_fields_and_a_header():
    got = parse_points('"x1","x2","label"\n"0.5",-1,1\n0.25,"2e-1",0\n')
    assert got.header == ("x1", "x2", "label") and got.separator == ","
    assert got.points == [[0.5, -1.0, 1.0], [0.25, 0.2, 0.0]] and got.errors == []


@pytest.mark.parametrize("sep", [";", "\t"])
def test_semicolon_and_tab_files_with_decimal_commas(sep):
    got = parse_points(sep.join(["0,5", "-1", "2"]) + "\n" + sep.join(["1.5", "0", "0"]) + "\n")
    assert got.separator == sep and got.header is None
    assert got.points == [[0.5, -1.0, 2.0], [1.5, 0.0, 0.0]] and got.n_classes == 3


def test_bad_rows_each_get_a_message_with_their_line():
    text = "x1,x2,label\n0,0,1\n1,2\nabc,0,1\n0,99,0\n0,0,1.5\n\n0,0,12\n0,0,1\n"
    got = parse_points(text)
    lines = dict(got.errors)
    assert got.points == [[0, 0, 1], [0, 0, 1]]
    assert set(lines) == {3, 4, 5, 6, 8}
    assert "expected 3 values" in lines[3] and "x1 'abc' is not a number" in lines[4]
    assert "outside" in lines[5] and "class 0 to 9" in lines[6] and "class 0 to 9" in lines[8]


def test_regression_targets_nothing_evaluated_and_row_limit():
    got = parse_points("0,0,-3.25\n1,1,1e2\n", task="regression")
    assert got.points == [[0, 0, -3.25], [1, 1, 100.0]]
    assert "is not a number" in parse_points("0,0,__import__('os')\n").errors[0][1]
    assert parse_points("1,nan,0\n").errors and parse_points("1,inf,0\n").errors
    with pytest.raises(ValueError, match="at most 3"):
        parse_points("0,0,0\n" * 4, max_rows=3)
    with pytest.raises(ValueError, match="not valid CSV"):
        parse_points('0,"0\n')
    assert parse_points("0.5,1\n", n_inputs=1).points == [[0.5, 1.0]]


def test_targets_and_csv_round_trip():
    pts = [[0.1, 0.2, 0.0], [0.3, -0.4, 2.0], [1.0 / 3, 0.0, 1.0]]
    X, Y = targets(pts, "classification")
    assert Y == [[1, 0, 0], [0, 0, 1], [0, 1, 0]]
    assert targets(pts[:1], "classification")[1] == [[0.0]]
    text = to_csv(X, [p[2] for p in pts])
    assert parse_points(text).points == pts


def test_explicit_data_gets_a_seeded_test_split():
    X = np.arange(20.0).reshape(10, 2)
    Y = (np.arange(10) % 2).reshape(-1, 1).astype(float)
    d = make_custom(X, Y, test_fraction=0.3, seed=4)
    assert d.X_train.shape == (7, 2) and d.X_test.shape == (3, 2)
    assert sorted(np.vstack([d.X_train, d.X_test])[:, 0]) == list(X[:, 0])
    assert np.array_equal(make_custom(X, Y, 0.3, 4).X_test, d.X_test)
    assert np.array_equal(make_custom(X, Y).X_train, X)  # no split: all rows, in order
    spec = experiment_from_dict(
        {"network": {"layers": [2, 2, 1]}, "data": {"X": X.tolist(), "Y": Y.tolist(), "test_fraction": 0.2, "seed": 1}}
    )
    prep = prepare(spec)
    assert prep.X.shape == (8, 2) and prep.X_test.shape == (2, 2)
    with pytest.raises(ValueError, match="test_fraction"):
        experiment_from_dict({"data": {"X": [[0]], "Y": [[1]], "test_fraction": 0.95}})
