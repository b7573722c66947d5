"""The course notes' formulas, each with numbers the engine computes now (the /notes page's content)."""

from functools import lru_cache

import numpy as np

from engine.activations import sigmoid
from engine.backprop import backprop
from engine.experiment import prepare, step_record, train_runs
from engine.gradcheck import check_experiment
from engine.presets import PRESETS_BY_ID
from engine.schedules import learning_rates
from engine.spec import experiment_from_dict

from .views.format import decimals, factor, tex, tex_matrix, tex_row, tex_vector


def spec_of(preset_id, **changes):
    return experiment_from_dict({**PRESETS_BY_ID[preset_id]["spec"], **changes})


def note_000():
    """MSE, the chain rule, gradient descent, and the y = 2x run (note 000)."""
    spec = spec_of("linear-y-2x")
    run = train_runs(spec, 1000, keep_path=True)[0]
    path, loss = run.history.path, run.history.loss
    x, y = np.array([1.0, 2, 3]), np.array([2.0, 4, 6])
    dw0, db0 = -2 * np.mean(y * x), -2 * np.mean(y)
    # The note prints, at epochs 0, 200, ..., the loss before the update and w, b after it.
    table = [{"epoch": e, "loss": loss[e], "w": path[e + 1][0], "b": path[e + 1][1]} for e in range(0, 1000, 200)]
    return {
        "table": table,
        "final_w": path[-1][0],
        "final_b": path[-1][1],
        "formulas": [
            (
                "MSE loss",
                r"L = \frac{1}{N}\sum_{i=1}^N \left(y^{(i)} - \hat y^{(i)}\right)^2",
                rf"L(w{{=}}0, b{{=}}0) = \tfrac13\left(2^2 + 4^2 + 6^2\right) = {tex(loss[0], 4)}",
            ),
            (
                "Chain rule",
                r"\frac{dz}{dx} = \frac{dz}{dy}\cdot\frac{dy}{dx}",
                rf"\frac{{\partial L}}{{\partial w}} = \frac{{\partial L}}{{\partial \hat y}}\cdot"
                rf"\frac{{\partial \hat y}}{{\partial w}} = -\tfrac{{2}}{{N}}\sum (y - \hat y)\,x"
                rf" = {tex(dw0, 4)},\quad "
                rf"\frac{{\partial L}}{{\partial b}} = {tex(db0, 4)}",
            ),
            (
                "Gradient descent",
                r"\theta \leftarrow \theta - \eta\,\frac{\partial L}{\partial \theta}",
                rf"w \leftarrow 0 - 0.01 \times ({tex(dw0, 4)}) = {tex(path[1][0], 4)},\quad "
                rf"b \leftarrow 0 - 0.01 \times ({tex(db0, 4)}) = {tex(path[1][1], 4)}",
            ),
        ],
    }


def worked_example():
    """Note 002's 2-2-1 example, every printed number against the exact one."""
    spec = spec_of("notes-2-2-1")
    prep = prepare(spec)
    bp = backprop(prep.net, prep.params0, prep.X, prep.Y)
    hidden, out = bp.layers
    z_h, a_h, z_o, a_o = hidden.z[0], hidden.a[0], out.z[0, 0], out.a[0, 0]
    w_o = prep.params0.W[1][0]
    rows = [
        ("z_h", "[0.1, 0.3]", z_h, None),
        ("a_h = σ(z_h)", "[0.525, 0.574]", a_h, None),
        ("z_o", "0.2", [z_o], None),
        ("a_o = σ(z_o)", "0.549", [a_o], "0.5498 is truncated, not rounded: to 3 decimals it is 0.550"),
        ("L = ½(1 − a_o)²", "0.102", [bp.loss], "computed from the truncated 0.549; the exact loss is 0.1013"),
        ("σ'(z_o)", "0.247", [a_o * (1 - a_o)], "σ'(0.2) = 0.2475, which rounds to 0.248"),
        ("δ_o = (a_o − y) σ'(z_o)", "−0.111", out.delta[0], None),
        (
            "w_oᵀ δ_o",
            "[−0.044, −0.067]",
            w_o * out.delta[0, 0],
            "0.4 × (−0.1114) = −0.0446 rounds to −0.045; the note multiplies the rounded −0.111",
        ),
        ("σ'(z_h)", "[0.247, 0.241]", a_h * (1 - a_h), "σ'(0.1) = 0.2494 and σ'(0.3) = 0.2445"),
        ("δ_h = w_oᵀ δ_o ⊙ σ'(z_h)", "[−0.011, −0.016]", hidden.delta[0], None),
        ("∂L/∂w_o = δ_o a_hᵀ", "[−0.058, −0.064]", out.dW[0], None),
        ("∂L/∂w_h = δ_h xᵀ", "[[−0.006, −0.009], [−0.008, −0.013]]", hidden.dW.ravel(), None),
    ]
    return [
        {
            "name": name,
            "printed": printed,
            "exact": ", ".join(decimals(v, 4) for v in np.ravel(exact)),
            "values": [float(v) for v in np.ravel(exact)],
            "slip": slip,
        }
        for name, printed, exact, slip in rows
    ]


def note_001_002():
    """The 4-step loop: forward, loss, delta^L, the recurrence, gradients, update (notes 001 and 002)."""
    spec = spec_of("notes-2-2-1")
    record = step_record(spec, 0)
    hidden, out = record.backprop.layers
    prep = prepare(spec)
    W1, W2 = prep.params0.W
    eta = record.learning_rate
    x = prep.X[0]
    return [
        (
            "Weighted sum and activation",
            r"z^l = w^l a^{l-1} + b^l,\qquad a^l = \sigma(z^l)",
            rf"z^1 = {tex_matrix(W1)}{tex_vector(x)} + {tex_vector(prep.params0.b[0])}"
            rf" = {tex_vector(hidden.z[0])},\quad "
            rf"a^1 = \sigma(z^1) = {tex_vector(hidden.a[0])}",
        ),
        (
            "Loss (MSE, note 001)",
            r"\mathcal L = \tfrac12 (a^L - y)^2 = \tfrac12\lVert y - a^L\rVert^2",
            rf"\mathcal L = \tfrac12 ({tex(out.a[0, 0])} - 1)^2 = {tex(record.backprop.loss, 4)}",
        ),
        (
            "Error at the output layer",
            r"\delta^L = \nabla_a \mathcal L \odot \sigma'(z^L) = (a^L - y)\odot\sigma'(z^L)",
            rf"\delta^L = ({tex(out.a[0, 0])} - 1.000) \times {tex(out.sigma_prime[0, 0])} = {tex(out.delta[0, 0])}",
        ),
        (
            "Backpropagate the error",
            r"\delta^l = \left((w^{l+1})^T \delta^{l+1}\right) \odot \sigma'(z^l)",
            rf"\delta^1 = {tex_vector(W2[0])}({tex(out.delta[0, 0])}) \odot {tex_vector(hidden.sigma_prime[0])} "
            rf"= {tex_vector(hidden.delta[0])}",
        ),
        (
            "Gradients",
            r"\frac{\partial\mathcal L}{\partial w^l} = \delta^l (a^{l-1})^T,\qquad "
            r"\frac{\partial\mathcal L}{\partial b^l} = \delta^l",
            rf"\frac{{\partial\mathcal L}}{{\partial w^1}}"
            rf" = {tex_vector(hidden.delta[0])}{tex_row(x)} = {tex_matrix(hidden.dW)},\quad "
            rf"\frac{{\partial\mathcal L}}{{\partial b^1}} = {tex_vector(hidden.db)}",
        ),
        (
            "Gradient descent update (note 002: w_new = w_old − η ∂L/∂w)",
            r"w^l := w^l - \eta\,\frac{\partial\mathcal L}{\partial w^l},\qquad "
            r"b^l := b^l - \eta\,\frac{\partial\mathcal L}{\partial b^l}",
            rf"w^2 := {tex_row(W2[0])} - {tex(eta, 2)}\,{tex_row(out.dW[0])}"
            rf" = {tex_row(record.params_after.W[1][0], 4)}",
        ),
    ]


def note_003():
    """BCE with sigmoid, gradient checking, the optimizers, schedules, L2 and dropout (note 003)."""
    xor = spec_of("xor-2-4-1")
    prep = prepare(xor)
    bp = backprop(prep.net, prep.params0, prep.X, prep.Y)
    out = bp.layers[-1]
    i = 1  # the sample x = [0, 1], y = 1
    y_hat, y = out.a[i, 0], prep.Y[i, 0]
    dL_dyhat = -y / y_hat + (1 - y) / (1 - y_hat)
    check = check_experiment(xor)
    # The computational-graph example L = (w1 x1 + w2 x2 + b)^2 is a linear unit with MSE against y = 0.
    graph = experiment_from_dict(
        {
            "network": {
                "layers": [2, 1],
                "activations": ["linear"],
                "loss": "mse",
                "weights": [[[0.5, 0.25]]],
                "biases": [[0.1]],
            },
            "data": {"X": [[1.0, 2.0]], "Y": [[0.0]]},
        }
    )
    gp = prepare(graph)
    gb = backprop(gp.net, gp.params0, gp.X, gp.Y)
    s_ = gb.layers[0].z[0, 0]
    entries = [
        ("Chain rule", r"\frac{df}{dx} = \frac{df}{dg}\cdot\frac{dg}{dx}\qquad (tex(g(x)))' = f'(g(x))\,g'(x)", None),
        (
            "Computational graph",
            r"L = (w_1 x_1 + w_2 x_2 + b)^2,\quad \frac{\partial L}{\partial w_1} = "
            r"2(w_1x_1 + w_2x_2 + b)\,x_1",
            rf"x = (1, 2),\ w = (0.5, 0.25),\ b = 0.1:\ L = {tex(s_)}^2 = {tex(gb.loss)},\ "
            rf"\frac{{\partial L}}{{\partial w}} = {tex_row(gb.layers[0].dW[0])},\ \frac{{\partial L}}{{\partial b}} = "
            rf"{tex(gb.layers[0].db[0])}",
        ),
        (
            "Multi-layer network",
            r"z^{[1]} = W^{[1]}x + b^{[1]},\ a^{[1]} = \sigma(z^{[1]}),\ "
            r"z^{[2]} = W^{[2]}a^{[1]} + b^{[2]},\ \hat y = \sigma(z^{[2]})",
            rf"\hat y = {tex_vector(out.a[:, 0])}\ \text{{for the four XOR inputs}}",
        ),
        (
            "Binary cross-entropy",
            r"L = -\left[y\log\hat y + (1-y)\log(1-\hat y)\right]",
            rf"L = -\log {tex(y_hat, 4)} = {tex(bp.per_sample_loss[i], 4)}\quad (x = [0, 1],\ y = 1)",
        ),
        (
            "Its derivative",
            r"\frac{\partial L}{\partial \hat y} = -\frac{y}{\hat y} + \frac{1-y}{1-\hat y}",
            rf"-\frac{{1}}{{{tex(y_hat, 4)}}} = {tex(dL_dyhat, 4)}",
        ),
        (
            "Sigmoid and BCE cancel",
            r"\frac{\partial L}{\partial z^{[2]}} = \frac{\partial L}{\partial \hat y}"
            r"\cdot\frac{\partial \hat y}{\partial z^{[2]}} = \hat y - y",
            rf"{tex(dL_dyhat, 4)} \times {tex(y_hat * (1 - y_hat), 4)} = {tex(dL_dyhat * y_hat * (1 - y_hat), 4)} "
            rf"= {tex(y_hat, 4)} - 1 = {tex(out.delta[i, 0], 4)}",
        ),
        (
            "Backward through the hidden layer",
            r"\frac{\partial L}{\partial a^{[1]}} = (W^{[2]})^T \frac{\partial L}{\partial z^{[2]}},\quad "
            r"\frac{\partial L}{\partial z^{[1]}} = \frac{\partial L}{\partial a^{[1]}}\odot\sigma'(z^{[1]}),\quad "
            r"\frac{\partial L}{\partial W^{[1]}} = \frac{\partial L}{\partial z^{[1]}} x^T",
            rf"\frac{{\partial L}}{{\partial z^{{[1]}}}} = {tex_vector(bp.layers[0].delta[i])}",
        ),
        (
            "Vectorised ReLU layer",
            r"Z = W A_{prev} + b,\quad A = \max(0, Z),\quad dZ = dA \odot [Z > 0],\quad "
            r"dW = \tfrac1m\, dZ\, A_{prev}^T,\quad db = \tfrac1m \textstyle\sum dZ",
            None,
        ),
        (
            "Gradient check",
            r"\frac{\partial L}{\partial\theta} \approx \frac{L(\theta+\epsilon) - L(\theta-\epsilon)}"
            r"{2\epsilon},\qquad \frac{\lVert g_{num} - g\rVert}{\lVert g_{num}\rVert + \lVert g\rVert}"
            r" < 10^{-7}",
            rf"\text{{XOR 2-4-1 at }}\theta_0:\ {tex(check.difference)} < 10^{{-7}}\ "
            + (r"\checkmark" if check.passed else r"\times"),
        ),
    ]
    # One step of each of the note's optimizers on XOR, for weight W1[0,0].
    for name, lr in (("momentum", 0.5), ("rmsprop", 0.01), ("adam", 0.01)):
        spec = experiment_from_dict({**PRESETS_BY_ID["xor-2-4-1"]["spec"], "optimizer": {"name": name, "lr": lr}})
        r = step_record(spec, 1)
        n0, n1 = prep.net.layers[0], prep.net.layers[1]
        block = np.abs(r.grad[: n1 * (n0 + 1)].reshape(n1, n0 + 1)[:, :n0])  # |dW^1|, bias column left out
        row_, col_ = np.unravel_index(int(np.argmax(block)), block.shape)  # the W^1 entry that moves most
        j = int(row_ * (n0 + 1) + col_)
        g = r.grad[j]
        before = {k: v[j] for k, v in r.state_before.items()}
        after = {k: v[j] for k, v in r.state_after.items()}
        dw = (r.params_after.flat() - r.params_before.flat())[j]
        if name == "momentum":
            entries.append(
                (
                    "Momentum",
                    r"v_t = \beta v_{t-1} + (1-\beta)\nabla L,\quad \theta_t = \theta_{t-1} - \alpha v_t",
                    rf"v = 0.9 \times {factor(before['velocity'])} + 0.1 \times {factor(g)} = "
                    rf"{tex(after['velocity'])},\ \Delta w = -{lr} \times {factor(after['velocity'])} = "
                    rf"{tex(dw)}",
                )
            )
        elif name == "rmsprop":
            entries.append(
                (
                    "RMSprop",
                    r"s_t = \beta s_{t-1} + (1-\beta)(\nabla L)^2,\quad "
                    r"\theta_t = \theta_{t-1} - \frac{\alpha}{\sqrt{s_t}+\epsilon}\nabla L",
                    rf"s = 0.99 \times {factor(before['s'])} + 0.01 \times {factor(g)}^2 = {tex(after['s'])},"
                    rf"\ \Delta w = -\frac{{{lr}}}{{\sqrt{{{tex(after['s'])}}}}}{factor(g)} = {tex(dw)}",
                )
            )
        else:
            entries.append(
                (
                    "Adam",
                    r"m_t = \beta_1 m_{t-1} + (1-\beta_1)\nabla L,\ v_t = \beta_2 v_{t-1} + "
                    r"(1-\beta_2)(\nabla L)^2,\ \hat m_t = \frac{m_t}{1-\beta_1^t},\ \hat v_t = "
                    r"\frac{v_t}{1-\beta_2^t},\ \theta_t = \theta_{t-1} - \frac{\alpha}{\sqrt{\hat v_t}"
                    r"+\epsilon}\hat m_t",
                    rf"t = 2:\ \hat m = {tex(after['m_hat'])},\ \hat v = {tex(after['v_hat'])},\ "
                    rf"\Delta w = -0.01\,\frac{{{factor(after['m_hat'])}}}{{\sqrt{{{tex(after['v_hat'])}}}}} = "
                    rf"{tex(dw)}",
                )
            )
    step_lr = learning_rates("step", {"gamma": 0.5, "step_size": 100}, 0.1, 301)
    exp_lr = learning_rates("exponential", {"decay": 0.01}, 0.1, 301)
    cos_lr = learning_rates("cosine", {"lr_min": 0.001, "T": 300}, 0.1, 301)
    entries += [
        (
            "Step decay",
            r"\alpha_t = \alpha_0\,\gamma^{\lfloor t/k\rfloor}",
            rf"\alpha_0 = 0.1,\ \gamma = 0.5,\ k = 100:\ \alpha_{{250}} = {tex(step_lr[250], 4)}",
        ),
        (
            "Exponential decay",
            r"\alpha_t = \alpha_0 e^{-\lambda t}",
            rf"\lambda = 0.01:\ \alpha_{{100}} = 0.1\,e^{{-1}} = {tex(exp_lr[100], 4)}",
        ),
        (
            "Cosine annealing",
            r"\alpha_t = \alpha_{min} + \tfrac12(\alpha_{max}-\alpha_{min})\left(1+\cos\frac{t\pi}{T}\right)",
            rf"T = 300:\ \alpha_{{150}} = 0.001 + \tfrac12(0.099)(1 + \cos\tfrac{{\pi}}{{2}}) = {tex(cos_lr[150], 4)}",
        ),
    ]
    l2 = 0.01
    l2_spec = experiment_from_dict({**PRESETS_BY_ID["xor-2-4-1"]["spec"], "l2": l2})
    r = step_record(l2_spec, 0)
    W = r.params_before.W[0]
    entries += [
        (
            "L2 regularisation",
            r"L_{total} = L_{data} + \frac{\lambda}{2m}\sum_l \lVert W^{[l]}\rVert_F^2,\quad "
            r"\frac{\partial L_{total}}{\partial W} = \frac{\partial L_{data}}{\partial W} + \frac{\lambda}{m}W",
            rf"\text{{our loss is a mean, so our }}\lambda = \tfrac{{\lambda_{{notes}}}}{{m}}:\ \lambda = {l2}:\ "
            rf"{tex(r.backprop.data_loss, 4)} + {tex(r.backprop.penalty, 5)} = {tex(r.backprop.loss, 4)};\ "
            rf"\partial_{{W_{{11}}}} = {tex(r.backprop.layers[0].dW[0, 0], 5)} + {l2}\times{tex(W[0, 0], 4)} = "
            rf"{tex(r.backprop.grad_W[0][0, 0], 5)}",
        ),
    ]
    drop_spec = experiment_from_dict({**PRESETS_BY_ID["spiral-2-8-8-1"]["spec"], "dropout": 0.5})
    d = step_record(drop_spec, 0).backprop.layers[0]
    i = int(np.argmax(np.abs(d.z).sum(axis=1)))  # a sample whose units are visibly non-zero
    clean = np.tanh(d.z[i, :4])
    entries.append(
        (
            "Inverted dropout",
            r"a^{[l]} = \frac{a^{[l]} \odot mask}{keep\_prob},\quad mask \sim "
            r"\text{Bernoulli}(1-p)",
            rf"p = 0.5:\ {tex_row(clean)} \odot {tex_row(d.mask[i, :4])} / 0.5 = {tex_row(d.a[i, :4])}",
        )
    )
    return entries


@lru_cache(maxsize=1)
def content() -> dict:
    """Everything the /notes page shows (computed once per worker: it depends on nothing but the engine)."""
    with np.errstate(all="ignore"):
        n0 = note_000()
        return {
            "note_000": n0,
            "worked": worked_example(),
            "note_001_002": note_001_002(),
            "note_003": note_003(),
            "sigmoid_check": float(sigmoid(0.2)),
        }
