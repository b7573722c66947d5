"""/step's server-rendered fragments: the optimizer fields macro, every phase of a step with exact numbers."""

import re

import pytest

from app.views.forms import optimizer_form, optimizer_from_form
from engine.optimizers import HYPER_BOUNDS, OPTIMIZERS, check_hyper
from engine.spec import optimizer_from_dict

pytestmark = pytest.mark.anyio


# ---------------------------------------------------------------- the optimizer fields (shared with /race)


def test_hyper_bounds_are_the_bounds_check_hyper_enforces():
    for key, (low, high, low_in, high_in) in HYPER_BOUNDS.items():
        for value, ok in ((low, low_in), (high, high_in), ((low + high) / 2, True)):
            if ok:
                check_hyper(key, value)
            else:
                with pytest.raises(ValueError, match=key):
                    check_hyper(key, value)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_form_round_trips_through_the_engine(name):
    opt = {"name": name, "lr": 0.25, "batch_size": 4, "schedule": {"name": "step", "gamma": 0.5, "step_size": 10}}
    form = optimizer_form(opt)
    assert [h["key"] for h in form["hyper"]] == list(OPTIMIZERS[name].defaults)
    values = {"c0-optimizer": name, "c0-batch_size": "4", "c0-schedule": "step"}
    values |= {f"c0-h_{h['key']}": h["value"] for h in form["hyper"]}
    values |= {f"c0-s_{p['key']}": p["value"] for p in form["schedule"]["params"]}
    back = optimizer_from_dict(optimizer_from_form(values, "c0-"))
    assert back == optimizer_from_dict(opt)


def test_form_reports_bad_numbers_by_field():
    with pytest.raises(ValueError, match=r"^optimizer\.lr: 'abc' is not a number"):
        optimizer_from_form({"optimizer": "sgd", "h_lr": "abc"})
    with pytest.raises(ValueError, match=r"^optimizer\.batch_size"):
        optimizer_from_form({"optimizer": "sgd", "batch_size": "2.5"})


async def test_fields_fragment_switches_to_the_new_optimizers_defaults(client):
    r = await client.get(
        "/components/optimizer-fields",
        params={
            "prefix": "c1-",
            "c1-optimizer": "adam",
            "c1-previous": "sgd",
            "c1-h_lr": "0.5",
            "c1-batch_size": "8",
            "c1-schedule": "constant",
            "c1-previous_schedule": "constant",
        },
    )
    assert r.status_code == 200
    html = r.text
    assert html.lstrip().startswith('<fieldset class="opt-fields" id="c1-opt-fields"')
    assert '<option value="adam" selected>' in html
    assert re.search(r'name="c1-h_lr"[^>]*value="0.01"', html, re.S)  # adam's default, not sgd's 0.5
    assert re.search(r'name="c1-h_beta2"[^>]*max="1"[^>]*value="0.999"', html, re.S)
    assert re.search(r'name="c1-batch_size"[^>]*value="8"', html, re.S)  # kept


async def test_fields_fragment_keeps_values_when_only_the_schedule_changes(client):
    r = await client.get(
        "/components/optimizer-fields",
        params={
            "optimizer": "momentum",
            "previous": "momentum",
            "h_lr": "0.3",
            "h_beta": "0.8",
            "schedule": "cosine",
            "previous_schedule": "constant",
        },
    )
    assert r.status_code == 200
    assert re.search(r'name="h_lr"[^>]*value="0.3"', r.text, re.S)
    assert re.search(r'name="s_T"[^>]*value="100"', r.text, re.S)
    r = await client.get("/components/optimizer-fields", params={"optimizer": "lbfgs"})
    assert r.status_code == 422 and "optimizer.name" in r.text
