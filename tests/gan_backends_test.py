"""`MixupGAN` on TensorFlow, JAX and PyTorch: it trains, reproduces its
seed, trains its discriminator on the right batches (plain, switched by a
`MixupSchedule`), saves and loads, and on JAX and PyTorch never imports
TensorFlow.

Each backend runs `gan_backend_scenarios.py` in the scenario chain's
in-turn process (see `conftest.CHAIN`: Keras picks its backend once, at
import), and the tests here check what it measured; the backends run in
turn, each loading the `.keras` file the previous one saved (TensorFlow to
JAX, JAX to PyTorch). `gan_test.py` tests the rest on TensorFlow.
"""

import itertools

import numpy as np
import pytest
from conftest import BACKENDS, scenario_result


@pytest.fixture(scope="module")
def results(request):
    """`{backend: what gan_training and gan_saving returned}`."""
    return {
        backend: {
            **scenario_result(request, backend, "gan_training"),
            **scenario_result(request, backend, "gan_saving"),
        }
        for backend in BACKENDS
    }


@pytest.fixture(params=BACKENDS)
def gan(request, results):
    return results[request.param]


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _step_kind(before, after):
    """What one step of the probe (see `gan_backend_scenarios._probe`)
    trained the discriminator on, read back from its update of `(w, b)`:
    `"plain"` (the batch `[real = 1, fake = 0]`, targets `[1, 0]`),
    `"mixed"` (one input x = lam in (0, 1), target lam) or `None`."""
    (w0, b0), (w1, b1) = before, after
    dw, db = w1 - w0, b1 - b0
    real_error, fake_error = _sigmoid(w0 + b0) - 1, _sigmoid(b0)
    if np.allclose(
        [dw, db], [-real_error / 2, -(real_error + fake_error) / 2], atol=1e-6
    ):
        return "plain"
    # Mixed, SGD with learning rate 1: db = t - sigmoid(w x + b) and
    # dw = db * x, so x = dw / db and t = db + sigmoid(w x + b).
    if db == 0:
        return None
    x = dw / db
    target = db + _sigmoid(w0 * x + b0)
    if 0 < x < 1 and abs(target - x) < 1e-5:
        return "mixed"
    return None


def _step_kinds(weights):
    return [_step_kind(*pair) for pair in itertools.pairwise(weights)]


def test_fit_trains_both_models_and_reports_finite_losses(gan):
    assert set(gan["history"]) == {"d_loss", "g_loss"}
    for values in gan["history"].values():
        assert len(values) == 2 and np.all(np.isfinite(values))
    assert gan["generator_changed"] and gan["discriminator_changed"]
    assert gan["statistics_changed"]  # batch normalisation's moving stats
    assert gan["iterations"] == [8, 8]  # 2 epochs of 4 steps, each model


def test_evaluate_reports_both_losses(gan):
    assert set(gan["evaluate"]) == {"d_loss", "g_loss"}
    assert np.all(np.isfinite(list(gan["evaluate"].values())))


def test_same_seed_same_training(gan):
    assert gan["same_seed_history"] == gan["history"]


def test_predict_runs_the_generator(gan):
    assert gan["predict_is_generator"]


def test_plain_gan_discriminator_sees_real_with_1_and_fake_with_0(gan):
    assert _step_kinds(gan["probes"]["plain"]) == ["plain"] * 3


def test_schedule_switches_mixing_off_and_on(gan):
    # Off in epochs 0-1 and 4-5: plain steps; on in 2-3: the target equals
    # the lam of the blend, a fresh Beta(1, 1) draw each step.
    weights = gan["probes"]["scheduled"]
    kinds = _step_kinds(weights)
    assert kinds == ["plain", "plain", "mixed", "mixed", "plain", "plain"]
    (w0, b0), (w1, b1), (w2, b2) = weights[2:5]
    first, second = (w1 - w0) / (b1 - b0), (w2 - w1) / (b2 - b1)
    assert abs(first - second) > 1e-4, (first, second)


def test_save_and_load_round_trip(gan):
    saving = gan["saving"]
    assert saving["type"] == "MixupGAN" and saving["same_config"]
    assert saving["same_generator"] and saving["same_discriminator"]
    assert saving["same_optimizers"]
    assert saving["iterations"] == 8
    assert np.all(np.isfinite(list(saving["loaded_history"].values())))


def test_training_on_jax_and_pytorch_never_imports_tensorflow(results):
    for backend in ("jax", "torch"):
        assert not results[backend]["tensorflow_imported"], backend


def test_a_file_saved_on_one_backend_loads_and_trains_on_the_next(results):
    for saved, loaded in itertools.pairwise(BACKENDS):
        loading = results[loaded]["loading"]
        assert loading["type"] == "MixupGAN"
        assert loading["config"] == results[saved]["config"]
        assert loading["same_generator"] and loading["iterations"] == 8
        assert np.all(np.isfinite(list(loading["history"].values())))
