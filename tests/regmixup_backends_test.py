"""RegMixup on TensorFlow, JAX and PyTorch: one step with an injected draw
trains on `mixed loss + w * clean loss` (checked against the formula by
hand, with the SGD update), logs both parts, and evaluate reports only the
loss. Each backend runs `regmixup_backend_scenarios.py` in the scenario
chain's process (see `conftest.CHAIN`).
"""

import numpy as np
import pytest
from conftest import BACKENDS, scenario_result
from regmixup_backend_scenarios import LAM, PARTNER, X, Y


@pytest.fixture(scope="module", params=BACKENDS)
def results(request):
    return scenario_result(request, request.param, "step")


def _cross_entropy(logits, labels):
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return -(labels * log_p).sum(axis=1)


def _expected(kernel, bias, weight):
    x, one_hot = np.array(X), np.eye(2)[Y]
    lam = np.array(LAM)[:, None]
    mixed_x = lam * x + (1 - lam) * x[PARTNER]
    mixed_y = lam * one_hot + (1 - lam) * one_hot[PARTNER]

    def losses(kernel, bias):
        mixed = _cross_entropy(mixed_x @ kernel + bias, mixed_y).mean()
        clean = _cross_entropy(x @ kernel + bias, one_hot).mean()
        return mixed, clean

    mixed, clean = losses(kernel, bias)
    # The SGD step, by central differences of the total loss.
    step = []
    for value in (kernel, bias):
        grad = np.zeros_like(value)
        for index in np.ndindex(value.shape):
            bumped = [kernel.copy(), bias.copy()]
            which = 0 if value is kernel else 1
            totals = []
            for sign in (1, -1):
                bumped[which][index] = value[index] + sign * 1e-4
                m, c = losses(*bumped)
                totals.append(m + weight * c)
            grad[index] = (totals[0] - totals[1]) / 2e-4
        step.append(value - 0.1 * grad)
    return {"mixed_loss": mixed, "clean_loss": clean}, step


@pytest.mark.parametrize("mix_at", ["input", "latent"])
@pytest.mark.parametrize("weight", [0.5, 2.0])
def test_one_step_is_the_regmixup_formula(results, mix_at, weight):
    found = results[f"{mix_at}_{weight}"]
    kernel, bias = (np.array(w, "float64") for w in found["before"])
    parts, after = _expected(kernel, bias, weight)
    history = found["history"]
    for name, value in parts.items():
        np.testing.assert_allclose(history[name], value, rtol=1e-5)
    np.testing.assert_allclose(
        history["loss"],
        parts["mixed_loss"] + weight * parts["clean_loss"],
        rtol=1e-5,
    )
    for got, want in zip(found["after"], after, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    assert found["evaluated"] == ["loss"]
