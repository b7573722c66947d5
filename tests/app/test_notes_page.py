"""/notes: every formula of the course notes, with the engine's numbers and the notes' slips pointed out."""

import asyncio
import html
import re

import httpx
import pytest

from app import notes
from app.main import app


def get(path):
    async def run():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            return await client.get(path)

    return asyncio.run(run())


@pytest.fixture(scope="module")
def notes_html():
    response = get("/notes")
    assert response.status_code == 200
    return html.unescape(response.text)


def test_worked_example_rows_agree_with_the_notes_or_name_the_slip():
    rows = {r["name"]: r for r in notes.content()["worked"]}
    # Where the note is right, its printed digits are the exact value rounded to 3 decimals.
    for name in (
        "a_h = σ(z_h)",
        "δ_o = (a_o − y) σ'(z_o)",
        "δ_h = w_oᵀ δ_o ⊙ σ'(z_h)",
        "∂L/∂w_o = δ_o a_hᵀ",
        "∂L/∂w_h = δ_h xᵀ",
    ):
        printed = [float(v.replace("−", "-")) for v in re.findall(r"[−-]?\d+\.\d+", rows[name]["printed"])]
        exact = rows[name]["values"]
        assert [round(v, 3) for v in exact] == pytest.approx(printed, abs=1e-12), name
        assert rows[name]["slip"] is None
    for name in ("a_o = σ(z_o)", "L = ½(1 − a_o)²", "σ'(z_h)", "σ'(z_o)"):
        assert rows[name]["slip"], name
    assert rows["σ'(z_h)"]["exact"] == "0.2494, 0.2445"
    assert rows["L = ½(1 − a_o)²"]["exact"] == "0.1013"


def test_y_equals_2x_run_prints_the_trained_weights(notes_html):
    assert "w = 1.9708" in notes_html and "b = 0.0664" in notes_html
    first = notes.content()["note_000"]["table"][0]
    assert first["loss"] == pytest.approx(56 / 3) and first["w"] == pytest.approx(0.01 * 56 / 3)


@pytest.mark.parametrize(
    "formula",
    [
        r"\frac{1}{N}\sum_{i=1}^N",
        r"\frac{dz}{dx} = \frac{dz}{dy}",
        r"\theta \leftarrow \theta - \eta",
        r"\delta^L = \nabla_a \mathcal L \odot \sigma'(z^L)",
        r"\left((w^{l+1})^T \delta^{l+1}\right) \odot \sigma'(z^l)",
        r"\delta^l (a^{l-1})^T",
        r"-\frac{y}{\hat y} + \frac{1-y}{1-\hat y}",
        r"= \hat y - y",
        r"L(\theta+\epsilon) - L(\theta-\epsilon)",
        r"v_t = \beta v_{t-1} + (1-\beta)\nabla L",
        r"\sqrt{s_t}+\epsilon",
        r"\hat m_t = \frac{m_t}{1-\beta_1^t}",
        r"\gamma^{\lfloor t/k\rfloor}",
        r"e^{-\lambda t}",
        r"\cos\frac{t\pi}{T}",
        r"\frac{\lambda}{2m}\sum_l",
        r"\text{Bernoulli}(1-p)",
        r"L = (w_1 x_1 + w_2 x_2 + b)^2",
    ],
)
def test_every_formula_of_the_notes_is_on_the_page(notes_html, formula):
    assert formula in notes_html


def test_gradient_check_on_the_page_passes():
    entry = next(e for e in notes.content()["note_003"] if e[0] == "Gradient check")
    assert r"\checkmark" in entry[2]
