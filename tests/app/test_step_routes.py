"""The /step page's server side: the page for a token, a preset or the default, links that teachers shared,
and the settings panel's fragments."""

import re

import pytest

from app.routes.step_page import NOTE_002
from engine.presets import PRESETS_BY_ID
from engine.spec import experiment_from_dict

pytestmark = pytest.mark.anyio


def token_of(preset_id: str) -> str:
    return experiment_from_dict(PRESETS_BY_ID[preset_id]["spec"]).to_token()


def spec_field(html: str) -> str:
    m = re.search(r'<input type="hidden" name="spec" value="([^"]+)">', html)
    assert m, "no spec field"
    return m.group(1)


async def test_default_is_the_notes_example(client):
    r = await client.get("/step")
    assert r.status_code == 200
    assert spec_field(r.text) == token_of("notes-2-2-1")
    assert 'data-testid="phase" data-phase="z1"' in r.text
    assert 'aria-current="page"' in r.text  # the nav marks this page
    assert '<div id="stage" hx-boost="true"' in r.text and 'id="chart-loss"' in r.text


async def test_token_and_preset_select_the_experiment(client):
    token = token_of("spiral-2-8-8-1")
    r = await client.get("/step", params={"spec": token})
    assert spec_field(r.text) == token and 'value="2, 8, 8, 1"' in r.text
    r = await client.get("/step", params={"preset": "xor-2-4-1"})
    assert spec_field(r.text) == token_of("xor-2-4-1")


async def test_shared_links_keep_working(client):
    """/step?spec=&t=&phase=&sample= as teachers shared them: the same phase of the same step."""
    token = token_of("xor-2-4-1")
    r = await client.get("/step", params={"spec": token, "t": 3, "phase": "delta1", "sample": 2})
    assert r.status_code == 200
    assert 'data-phase="delta1"' in r.text and "Step t = 3" in r.text and "Sample 2 of the batch of 4" in r.text
    # out-of-range values are brought into range, not refused
    r = await client.get("/step", params={"spec": token, "t": 99999, "phase": "nope", "sample": 50})
    assert r.status_code == 200 and 'data-phase="z1"' in r.text and "Sample 4 of the batch of 4" in r.text


async def test_a_bad_token_falls_back_with_a_message(client):
    r = await client.get("/step", params={"spec": "not-a-real-token"})
    assert r.status_code == 422  # a 4xx naming the problem, and the page still opens
    assert "not valid" in r.text
    assert spec_field(r.text) == token_of("notes-2-2-1")


async def test_present_flag_sets_presentation_mode(client):
    r = await client.get("/step", params={"present": 1})
    assert '<html lang="en" class="present"' in r.text
    assert "present=1" in r.text  # links keep the mode


async def test_the_stage_is_a_fragment_for_htmx(client):
    r = await client.get("/step", params={"phase": "a1"}, headers={"HX-Request": "true", "HX-Target": "stage"})
    assert r.status_code == 200 and "<html" not in r.text
    assert r.text.lstrip().startswith('<div class="step-toolbar"')
    assert "HX-Target" in r.headers["vary"] and "max-age" in r.headers["cache-control"]
    assert 'data-chart="chart-loss"' in r.text


async def test_panel_fragment_for_a_token(client):
    r = await client.get("/step/panel", params={"spec": token_of("spiral-2-8-8-1")})
    assert r.status_code == 200
    assert r.text.lstrip().startswith('<aside id="panel"')
    assert 'value="2, 8, 8, 1"' in r.text
    assert r.text.count('name="act"') == 3
    assert '<option value="adam" selected>' in r.text  # the optimizer_fields macro
    assert "<html" not in r.text


async def test_activation_fragment_follows_the_sizes(client):
    r = await client.get("/step/panel/activations", params=[("layers", "2, 4, 4, 1"), ("act", "tanh")])
    assert r.text.count('name="act"') == 3
    assert r.text.count('<option value="tanh" selected>') == 3


def test_note_002_checks_point_at_real_phases():
    slugs = {"z1", "a1", "z2", "a2", "loss", "delta2", "delta1", "grad2", "grad1", "update"}
    assert {c["phase"] for c in NOTE_002} <= slugs
    # The README's known slip is among them: sigma'(0.1), sigma'(0.3) printed as 0.247, 0.241.
    assert any(c["printed"] == [0.247, 0.241] for c in NOTE_002)


async def test_server_limits_apply_to_a_links_token(client):
    wide = experiment_from_dict(
        {
            "network": {"layers": [2, 300, 1], "activations": ["relu", "sigmoid"], "loss": "bce"},
            "data": {"dataset": "xor"},
            "optimizer": {"name": "sgd", "lr": 0.1},
        }
    ).to_token()
    r = await client.get("/step", params={"spec": wide})
    assert r.status_code == 422 and "at most 256 units per layer" in r.text
    assert spec_field(r.text) == token_of("notes-2-2-1")
    r = await client.get("/step/export.csv", params={"spec": wide, "t": 0})
    assert r.status_code == 422
