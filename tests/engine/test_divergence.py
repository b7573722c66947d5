"""THE divergence rule (engine.divergence): non-finite or above 100x the starting loss, on the issue's two cases,
never on a sound run, the same in one run and in chunks, and overridable."""

import json
import math

import numpy as np
import pytest

from engine import divergence
from engine import experiment as ex
from engine.presets import PRESETS_BY_ID
from engine.spec import experiment_from_dict


def preset_with(preset_id: str, *optimizers: dict) -> dict:
    spec = json.loads(json.dumps(PRESETS_BY_ID[preset_id]["spec"]))
    spec.pop("optimizer", None)
    spec["optimizers"] = list(optimizers)
    return spec


def test_the_rule_on_a_series():
    assert divergence.diverged_at([1.0, 50.0, 99.9, 100.0]) is None  # exactly 100x is not above it
    assert divergence.diverged_at([1.0, 50.0, 100.5, 3.0]) == 2
    assert divergence.diverged_at([1.0, 0.5, math.nan]) == 2
    assert divergence.diverged_at([1.0, math.inf]) == 1
    assert divergence.diverged_at([2.0, 150.0], factor=50) == 1 and divergence.diverged_at([2.0, 150.0]) is None
    assert divergence.diverged_at([2.0, 1e300], factor=math.inf) is None
    assert divergence.diverged_at([0.0, 1e9]) is None  # no ratio to a zero start: only non-finite counts
    assert divergence.diverged_at([0.0, math.nan]) == 1
    assert divergence.diverged_at([500.0, 50.0], start_loss=1.0) == 0  # a chunk judged against the run's start


def test_first_divergence_keeps_the_earlier_step():
    loss = np.array([[1.0, 1.0, 1.0], [2.0, 200.0, 1.0], [500.0, 1.0, 1.0]])
    np.testing.assert_array_equal(divergence.first_divergence(loss, loss[0]), [2, 1, -1])
    np.testing.assert_array_equal(divergence.first_divergence(loss, loss[0], np.array([1, 2, 0])), [1, 1, 0])


def test_y_equals_2x_with_sgd_lr_1_diverges_after_one_step():
    """Note 000's problem: the loss is 100x its start after the first step, so the run diverged at step 1 (the old
    NaN-only test flagged it at step 153)."""
    spec = experiment_from_dict(preset_with("linear-y-2x", {"name": "sgd", "lr": 1.0}))
    (h,) = ex.train(spec, 300)
    assert h.diverged_at == 1
    assert h.loss[1] > 100 * h.loss[0] and np.isfinite(h.loss[1])
    assert np.isnan(h.loss[2:]).all() and np.isnan(h.learning_rate[1:]).all()


def test_spiral_with_sgd_lr_100_is_flagged_and_adam_is_not():
    spec = experiment_from_dict(preset_with("spiral-2-8-8-1", {"name": "sgd", "lr": 100}, {"name": "adam", "lr": 0.01}))
    sgd, adam = ex.train(spec, 1000)
    d = sgd.diverged_at
    assert d is not None and 0 < d < 20
    assert sgd.loss[d] > 100 * sgd.loss[0] and (sgd.loss[:d] <= 100 * sgd.loss[0]).all()
    assert adam.diverged_at is None and np.isfinite(adam.loss).all() and adam.loss[-1] < adam.loss[0] / 10


@pytest.mark.parametrize("chunk", [1, 7, 50])
def test_a_run_in_chunks_reports_the_same_step(chunk):
    """The race stream and the playground run in chunks from checkpoints: the rule still compares with L(theta_0)."""
    spec = experiment_from_dict(preset_with("linear-y-2x", {"name": "sgd", "lr": 0.2}, {"name": "sgd", "lr": 0.01}))
    whole = [h.diverged_at for h in ex.train(spec, 60)]
    assert whole[0] == 12 and whole[1] is None
    prep = ex.prepare(spec)
    checkpoint = ex.start(prep, 2)
    found = [None, None]
    done = 0
    while done < 60:
        trainer = ex.trainer_for(prep, [0, 1], None, 60, checkpoint)
        n = min(chunk, 60 - done)
        for k, h in enumerate(trainer.run(n)):
            if h.diverged_at is not None and found[k] is None:
                found[k] = done + h.diverged_at
        checkpoint = trainer.checkpoint()
        done += n
    assert found == whole


def test_the_factor_is_overridable_on_a_trainer():
    spec = experiment_from_dict(preset_with("linear-y-2x", {"name": "sgd", "lr": 1.0}))
    prep = ex.prepare(spec)
    trainer = ex.trainer_for(prep, [0], None, 300, ex.start(prep, 1))
    trainer.divergence_factor = math.inf
    (h,) = trainer.run(300)
    assert h.diverged_at is not None and h.diverged_at > 100  # only the overflow to inf/NaN is left
    assert not np.isfinite(h.loss[h.diverged_at])
