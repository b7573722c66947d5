"""The `backprop-viz` command: --version, train (table, progress, JSON = the API's answer), export, bad spec files."""

import io
import json
import subprocess
import sys
from importlib import metadata

import numpy as np
import pytest

from app import cli
from engine.experiment import state_at, train_runs
from engine.export import from_npz
from engine.spec import experiment_from_dict

XOR = {
    "network": {"layers": [2, 4, 1], "activations": ["tanh", "sigmoid"], "loss": "bce"},
    "data": {"dataset": "xor"},
    "optimizer": {"name": "adam", "lr": 0.05},
    "steps": 120,
}
RACE = {
    "network": {"layers": [2, 6, 1], "activations": ["tanh", "sigmoid"], "loss": "bce", "init": "he"},
    "data": {"dataset": "moons", "n": 80, "noise": 0.1, "test_fraction": 0.25},
    "optimizers": [
        {"name": "sgd", "lr": 0.5},
        {"name": "adam", "lr": 0.02},
        {"name": "adam", "lr": 0.05, "batch_size": 16},
    ],
    "l2": 0.001,
    "steps": 57,
}
# Mini-batches, dropout and clipping: the chunked CLI run must equal one engine run step for step.
TRICKY = {
    "network": {"layers": [2, 8, 8, 1], "activations": ["relu", "tanh", "sigmoid"], "loss": "bce", "init": "he"},
    "data": {"dataset": "spiral", "n": 60, "noise": 0.1},
    "optimizer": {"name": "momentum", "lr": 0.3, "batch_size": 7},
    "dropout": [0.2, 0.1],
    "clip_norm": 0.5,
    "steps": 33,
}
DIVERGES = {
    "network": {"layers": [1, 1], "activations": ["linear"], "loss": "mse"},
    "data": {"X": [[1.0], [2.0], [3.0]], "Y": [[2.0], [4.0], [6.0]]},
    "optimizer": {"name": "sgd", "lr": 5.0},
    "steps": 400,
}


def write(tmp_path, name, value) -> str:
    path = tmp_path / name
    path.write_text(value if isinstance(value, str) else json.dumps(value))
    return str(path)


def run(args, capsys, cwd=None, monkeypatch=None):
    """main(args) in-process -> (exit status, stdout, stderr)."""
    if cwd is not None:
        monkeypatch.chdir(cwd)
    status = cli.main(args)
    out, err = capsys.readouterr()
    return status, out, err


def test_version_is_the_package_version():
    done = subprocess.run([sys.executable, "-m", "app", "--version"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"backprop-viz {metadata.version('backprop-viz')}"


@pytest.mark.parametrize("body", [XOR, RACE, TRICKY, DIVERGES], ids=["xor", "race", "tricky", "diverges"])
def test_train_in_chunks_equals_one_engine_run(body):
    spec = experiment_from_dict({k: v for k, v in body.items() if k != "steps"})
    steps = body["steps"]
    seen = []
    chunked = cli.train_with_progress(spec, steps, lambda t0, t1, h: seen.append((t0, t1)))
    assert seen[0][0] == 0 and seen[-1][1] == steps
    assert all(a[1] == b[0] for a, b in zip(seen, seen[1:]))  # consecutive chunks cover 0..steps
    for (history, theta), whole in zip(chunked, train_runs(spec, steps)):
        for name in ("loss", "test_loss", "accuracy", "test_accuracy", "learning_rate", "delta_norm", "grad_norm"):
            a, b = getattr(history, name), getattr(whole.history, name)
            assert (a is None) == (b is None), name
            if a is not None:
                np.testing.assert_array_equal(a, b, err_msg=name)
        assert history.diverged_at == whole.history.diverged_at
        np.testing.assert_array_equal(theta, whole.theta)


@pytest.mark.anyio
async def test_evaluate_every_in_a_spec_file_gives_the_api_answer(tmp_path, capsys, client):
    """A mini-batch race with evaluate_every: the chunks end on its multiples, so the file is the API's answer."""
    body = {**RACE, "steps": 67, "evaluate_every": 7}
    spec_path = write(tmp_path, "sparse.json", body)
    status, out, err = run(["train", spec_path, "-o", str(tmp_path / "result.json")], capsys)
    assert status == 0, err
    written = json.loads((tmp_path / "result.json").read_text())
    answer = await client.post("/api/v1/race", json=body)
    assert answer.status_code == 200, answer.text
    assert written == answer.json()
    mini = written["runs"][2]
    assert mini["evaluate_every"] == 7 and written["runs"][0]["evaluate_every"] == 1
    assert [t for t, v in enumerate(mini["loss"]) if v is not None] == [*range(0, 67, 7), 67]
    rows = [line.split() for line in out.splitlines()[2:] if line.split() and line.split()[0].isdigit()]
    assert all(int(r[0]) % 7 == 0 or int(r[0]) == 67 for r in rows) and "—" not in out  # every row a number


def test_a_diverging_run_is_a_result(tmp_path, capsys, monkeypatch):
    spec_path = write(tmp_path, "bad-lr.json", DIVERGES)
    status, out, _ = run(["train", spec_path], capsys, tmp_path, monkeypatch)
    assert status == 0
    assert "diverged at step" in out
    result = json.loads((tmp_path / "bad-lr.result.json").read_text())
    assert result["diverged"] is True and isinstance(result["diverged_at"], int)
    assert result["loss"][-1] is None  # NaN/Inf are null, as in the API


@pytest.mark.anyio
@pytest.mark.parametrize("body, endpoint", [(XOR, "train"), (RACE, "race")], ids=["train", "race"])
async def test_train_writes_the_api_answer(tmp_path, capsys, client, body, endpoint):
    spec_path = write(tmp_path, "exp.json", body)
    status, out, err = run(["train", spec_path, "-o", str(tmp_path / "result.json")], capsys)
    assert status == 0, err
    written = json.loads((tmp_path / "result.json").read_text())
    answer = await client.post(f"/api/v1/{endpoint}", json=body)
    assert answer.status_code == 200, answer.text
    assert written == answer.json()
    assert f"wrote {tmp_path / 'result.json'}" in err


def test_train_prints_the_loss_table(tmp_path, capsys, monkeypatch):
    spec_path = write(tmp_path, "xor.json", XOR)
    status, out, err = run(["train", spec_path, "--progress"], capsys, tmp_path, monkeypatch)
    assert status == 0
    lines = out.splitlines()
    assert lines[0].startswith("training 2-4-1 on xor with adam: 120 steps (spec ")
    assert lines[1].split() == ["step", "loss", "accuracy"]
    rows = [line.split() for line in lines[2:]]
    assert [int(r[0]) for r in rows] == [0, 12, 24, 36, 48, 60, 72, 84, 96, 108, 120]
    result = json.loads((tmp_path / "xor.result.json").read_text())
    for row in rows:  # every shown loss is the JSON's loss at that step, to the 4 significant digits shown
        assert float(row[1]) == pytest.approx(result["loss"][int(row[0])], rel=1e-3)
    assert "100%  120/120 steps" in err  # the progress bar, forced on (stderr is not a terminal here)


def test_race_table_has_a_column_per_contestant(tmp_path, capsys, monkeypatch):
    spec_path = write(tmp_path, "race.json", RACE)
    status, out, _ = run(["train", spec_path, "--steps", "10", "--no-progress"], capsys, tmp_path, monkeypatch)
    assert status == 0
    assert out.splitlines()[1].split() == ["step", "sgd", "adam#1", "adam#2"]
    result = json.loads((tmp_path / "race.result.json").read_text())
    assert result["steps"] == 10 and [len(r["loss"]) for r in result["runs"]] == [11, 11, 11]


def test_train_to_stdout_moves_the_table_to_stderr(tmp_path, capsys, monkeypatch):
    spec_path = write(tmp_path, "xor.json", XOR)
    status, out, err = run(["train", spec_path, "-o", "-", "--steps", "5"], capsys, tmp_path, monkeypatch)
    assert status == 0
    assert json.loads(out)["steps"] == 5
    assert "accuracy" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["xor.json"]


def test_spec_token_and_wrapped_spec_files(tmp_path, capsys, monkeypatch):
    spec = experiment_from_dict({k: v for k, v in XOR.items() if k != "steps"})
    by_token = write(tmp_path, "token.json", {"spec_token": spec.to_token(), "steps": 3})
    wrapped = write(tmp_path, "wrapped.json", {"spec": {k: v for k, v in XOR.items() if k != "steps"}, "steps": 3})
    for path in (by_token, wrapped):
        assert run(["train", path, "-q"], capsys, tmp_path, monkeypatch)[0] == 0
    a = json.loads((tmp_path / "token.result.json").read_text())
    b = json.loads((tmp_path / "wrapped.result.json").read_text())
    assert a == b and a["spec_id"] == spec.id


BAD_FILES = [
    ("missing.json", None, "cannot read"),
    ("garbage.json", "{not json", "not valid JSON"),
    ("list.json", "[1, 2]", "must hold a JSON object"),
    ("typo.json", {**XOR, "optimiser": {"name": "adam"}}, "unknown field 'optimiser'"),
    ("dataset.json", {**XOR, "data": {"dataset": "mnist"}}, "data.dataset: unknown 'mnist'"),
    ("shape.json", {**XOR, "network": {"layers": [3, 4, 1], "activations": ["tanh", "sigmoid"]}}, "network.layers"),
    ("activation.json", {**XOR, "network": {"layers": [2, 1], "activations": ["swish"]}}, "swish"),
    ("nosteps.json", {k: v for k, v in XOR.items() if k != "steps"}, 'give --steps N or a "steps" field'),
    ("negative.json", {**XOR, "steps": -3}, "steps: must be a whole number"),
    ("fraction.json", {**XOR, "steps": 2.5}, "steps: must be a whole number"),
    ("token.json", {"spec_token": "not-a-token-at-all"}, "spec_token: not a valid spec token"),
    ("lr.json", {**XOR, "optimizer": {"name": "adam", "lr": -1}}, "lr"),
]


STEP_FILES = ("nosteps.json", "negative.json", "fraction.json")  # export takes its step from --step instead
BAD_CASES = [("train", *bad) for bad in BAD_FILES] + [("export", *bad) for bad in BAD_FILES if bad[0] not in STEP_FILES]


@pytest.mark.parametrize("command, name, content, message", BAD_CASES, ids=[f"{c[0]}-{c[1]}" for c in BAD_CASES])
def test_bad_spec_files_fail_clearly_and_write_nothing(tmp_path, capsys, monkeypatch, command, name, content, message):
    work = tmp_path / "work"
    work.mkdir()
    path = str(tmp_path / name) if content is None else write(tmp_path, name, content)
    extra = ["--step", "3", "--format", "npz"] if command == "export" else []
    status, out, err = run([command, path, *extra], capsys, work, monkeypatch)
    assert status == 2
    assert err.startswith(f"backprop-viz {command}: error: {path}: ")
    assert message in err
    assert err.count("\n") == 1  # one line, no traceback
    assert out == ""
    assert list(work.iterdir()) == []


@pytest.mark.parametrize(
    "args, message",
    [
        (["--step", "-1", "--format", "json"], "--step: must be a whole number"),
        (["--step", "2", "--format", "json", "--contestant", "3"], "contestant: must be a whole number from 0 to 0"),
    ],
)
def test_export_bad_arguments(tmp_path, capsys, monkeypatch, args, message):
    spec_path = write(tmp_path, "xor.json", XOR)
    status, _, err = run(["export", spec_path, *args], capsys, tmp_path, monkeypatch)
    assert status == 2 and message in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["xor.json"]


def test_export_unknown_format_is_a_usage_error(tmp_path, capsys):
    spec_path = write(tmp_path, "xor.json", XOR)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["export", spec_path, "--step", "1", "--format", "onnx"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'onnx'" in capsys.readouterr().err


def theta_after(body, t, k=0):
    spec = experiment_from_dict({key: v for key, v in body.items() if key != "steps"})
    return spec, state_at(spec, t, k).theta[0]


def test_export_json_loads_back_as_a_spec(tmp_path, capsys, monkeypatch):
    spec_path = write(tmp_path, "xor.json", XOR)
    status, _, err = run(["export", spec_path, "--step", "40", "--format", "json"], capsys, tmp_path, monkeypatch)
    assert status == 0, err
    exported = json.loads((tmp_path / "xor-step40.json").read_text())
    spec, theta = theta_after(XOR, 40)
    assert exported["step"] == 40 and exported["spec_id"] == spec.id
    network = {k: v for k, v in exported["network"].items() if k != "features"}
    again = experiment_from_dict({**XOR, "network": network})
    flat = np.concatenate([np.hstack([np.array(W), np.array(b)[:, None]]).ravel() for W, b in
                           zip(again.network.weights, again.network.biases)])  # fmt: skip
    assert sorted(flat) == sorted(theta)  # the same numbers, exactly (JSON floats round-trip)
    from engine.experiment import prepare

    np.testing.assert_array_equal(prepare(again).params0.flat(), theta)


def test_export_npz_of_a_race_contestant(tmp_path, capsys, monkeypatch):
    spec_path = write(tmp_path, "race.json", RACE)
    out_path = tmp_path / "adam.npz"
    args = ["export", spec_path, "--step", "9", "--format", "npz", "--contestant", "2", "-o", str(out_path)]
    status, _, err = run(args, capsys, tmp_path, monkeypatch)
    assert status == 0, err
    net, params, _ = from_npz(out_path.read_bytes())
    assert net.layers == (2, 6, 1)
    _, theta = theta_after(RACE, 9, 2)
    np.testing.assert_array_equal(params.flat(), theta)


def test_export_torch_snippet_is_python_that_checks_itself(tmp_path, capsys, monkeypatch):
    spec_path = write(tmp_path, "xor.json", XOR)
    status, out, _ = run(["export", spec_path, "--step", "5", "--format", "torch", "-o", "-"], capsys)
    assert status == 0
    compile(out, "snippet.py", "exec")
    assert "nn.Linear(2, 4)" in out and "largest difference from backprop-viz" in out
    try:
        import torch  # noqa: F401
    except ImportError:
        return  # PyTorch is never a dependency; run the snippet only where it is installed
    snippet = tmp_path / "snippet.py"
    snippet.write_text(out)
    done = subprocess.run([sys.executable, str(snippet)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


def test_progress_bar_draws_in_place():
    stream = io.StringIO()
    bar = cli.Progress(200, stream, enabled=True)
    bar.draw(50)
    bar.clear()
    bar.close(200)
    text = stream.getvalue()
    assert text.startswith("\r[#######.......................]  25%  50/200 steps")
    assert "\r\033[K" in text and "100%  200/200 steps" in text and text.endswith("\n")
    quiet = io.StringIO()
    cli.Progress(10, quiet, enabled=False).close(10)
    assert quiet.getvalue() == ""


def test_table_steps():
    assert cli.table_steps(0) == [0]
    assert cli.table_steps(3) == [0, 1, 2, 3]
    assert cli.table_steps(1000) == list(range(0, 1001, 100))


def test_export_json_is_strict_after_divergence(tmp_path, capsys, monkeypatch):
    spec_path = write(tmp_path, "bad-lr.json", DIVERGES)
    status, out, _ = run(["export", spec_path, "--step", "400", "--format", "json", "-o", "-"], capsys)
    assert status == 0

    def refuse(token):
        raise ValueError(f"non-standard JSON constant {token}")

    exported = json.loads(out, parse_constant=refuse)
    assert exported["step"] == 400 and len(exported["network"]["weights"]) == 1


def test_a_preset_id_trains_its_preset(tmp_path, capsys, monkeypatch):
    from engine.presets import PRESETS_BY_ID

    status, out, _ = run(["train", "notes-2-2-1", "-q"], capsys, tmp_path, monkeypatch)
    assert status == 0
    result = json.loads((tmp_path / "notes-2-2-1.result.json").read_text())
    preset = PRESETS_BY_ID["notes-2-2-1"]
    spec = experiment_from_dict(preset["spec"])
    assert result["spec_id"] == spec.id and result["steps"] == preset["steps"]
    np.testing.assert_array_equal(result["loss"], train_runs(spec, preset["steps"])[0].history.loss)


def test_a_page_url_exports_its_spec_at_its_step(tmp_path, capsys, monkeypatch):
    spec, theta = theta_after(XOR, 12)
    url = f"http://127.0.0.1:8000/step?spec={spec.to_token()}&t=12&phase=backward"
    status, _, err = run(["export", url, "--format", "npz"], capsys, tmp_path, monkeypatch)
    assert status == 0, err
    _, params, _ = from_npz((tmp_path / f"spec-{spec.id}-step12.npz").read_bytes())
    np.testing.assert_array_equal(params.flat(), theta)


def test_export_needs_a_step(tmp_path, capsys, monkeypatch):
    spec_path = write(tmp_path, "xor.json", XOR)
    status, _, err = run(["export", spec_path, "--format", "json"], capsys, tmp_path, monkeypatch)
    assert status == 2 and "--step: give the step T" in err


def test_an_unwritable_output_is_a_clear_error(tmp_path, capsys, monkeypatch):
    spec_path = write(tmp_path, "xor.json", XOR)
    target = tmp_path / "no" / "such" / "folder" / "out.json"
    status, out, err = run(["train", spec_path, "-q", "-o", str(target)], capsys, tmp_path, monkeypatch)
    assert status == 2
    assert err.strip() == f"backprop-viz train: error: {target}: cannot write (No such file or directory)"
