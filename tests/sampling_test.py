"""Tests of lam draws: distribution, dtypes, seeds and bad input."""

import numpy as np
import pytest
import tensorflow as tf
from conftest import chi_square_p_value
from scipy import stats

import keras_mixup
from keras_mixup import state

ALPHAS = [0.01, 0.1, 0.2, 0.4, 1.0, 8.0, 32.0]


@pytest.mark.parametrize("alpha", ALPHAS)
def test_lam_follows_beta_alpha_alpha(alpha):
    lam = keras_mixup.sample_lambda([20000], alpha, seed=7).numpy()
    assert chi_square_p_value(lam, stats.beta(alpha, alpha)) > 1e-3


@pytest.mark.parametrize("alpha", [0.1, 0.4, 1.0, 8.0])
def test_inputs_only_lam_follows_beta_alpha_plus_one_alpha(alpha):
    lam = keras_mixup.sample_lambda(
        [20000], alpha, seed=11, inputs_only=True
    ).numpy()
    assert chi_square_p_value(lam, stats.beta(alpha + 1, alpha)) > 1e-3
    # And it is not Beta(alpha, alpha): its mean is (a + 1) / (2a + 1).
    assert lam.mean() == pytest.approx((alpha + 1) / (2 * alpha + 1), abs=0.01)


def test_chi_square_detects_the_wrong_distribution():
    """The statistical test above has power: Beta(1, 1) draws are rejected
    as Beta(0.4, 0.4) and Beta(2, 1) ones as Beta(1, 1)."""
    lam = keras_mixup.sample_lambda([20000], 1.0, seed=7).numpy()
    assert chi_square_p_value(lam, stats.beta(0.4, 0.4)) < 1e-6
    lam = keras_mixup.sample_lambda([20000], 1.0, 7, inputs_only=True).numpy()
    assert chi_square_p_value(lam, stats.beta(1, 1)) < 1e-6


@pytest.mark.parametrize("alpha", [0.01, 0.05, 64.0])
def test_extreme_alpha_has_no_nan_no_pile_up_and_stays_in_range(alpha):
    lam = keras_mixup.sample_lambda([200000], alpha, seed=3).numpy()
    assert not np.isnan(lam).any()
    assert lam.min() >= 0.0 and lam.max() <= 1.0
    # A float32 gamma ratio puts ~17% of draws at exactly 0.5 for
    # alpha = 0.01; the true probability of exactly 0.5 is zero.
    assert np.mean(lam == 0.5) < 1e-4


def test_small_alpha_draws_are_u_shaped_and_large_alpha_concentrated():
    small = keras_mixup.sample_lambda([20000], 0.01, seed=1).numpy()
    assert np.mean((small < 0.01) | (small > 0.99)) > 0.9
    assert abs(np.mean(small < 0.5) - 0.5) < 0.02  # symmetric
    large = keras_mixup.sample_lambda([20000], 64.0, seed=1).numpy()
    assert np.std(large) == pytest.approx(stats.beta(64, 64).std(), rel=0.05)


def test_shape_and_dtype():
    assert keras_mixup.sample_lambda([], 0.2, 0).shape == ()
    lam = keras_mixup.sample_lambda([3, 2], 0.2, 0, dtype="float64")
    assert lam.shape == (3, 2) and lam.dtype == tf.float64
    lam = keras_mixup.sample_lambda(tf.constant([5]), 0.2, 0)
    assert lam.shape == (5,) and lam.dtype == tf.float32


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "int32", "spam"])
def test_half_precision_and_non_float_dtypes_are_refused(dtype):
    with pytest.raises(ValueError, match="`dtype` must be one of"):
        keras_mixup.sample_lambda([3], 0.2, 0, dtype=dtype)


@pytest.mark.parametrize(
    "alpha", [0, -1.0, float("nan"), float("inf"), "0.2", None, True, [0.2]]
)
def test_invalid_alpha_is_refused(alpha):
    with pytest.raises(ValueError, match="`alpha` must be a finite number > 0"):
        keras_mixup.sample_lambda([3], alpha, 0)


def test_same_seed_same_draw_and_other_seed_other_draw():
    a = keras_mixup.sample_lambda([100], 0.4, seed=5)
    b = keras_mixup.sample_lambda([100], 0.4, seed=(0, 5))
    c = keras_mixup.sample_lambda([100], 0.4, seed=tf.constant([0, 6]))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("seed", [1.5, "1", (1, 2, 3), True])
def test_invalid_seed_is_refused(seed):
    with pytest.raises(ValueError, match="`seed` must be an int"):
        keras_mixup.sample_lambda([3], 0.2, seed)


def test_alpha_variable_changes_the_draw_without_retracing():
    alpha = tf.Variable(0.1)

    @tf.function
    def draw(seed):
        return keras_mixup.sample_lambda([20000], alpha, seed)

    low = draw(tf.constant([0, 1])).numpy()
    alpha.assign(8.0)
    high = draw(tf.constant([0, 2])).numpy()
    assert draw.experimental_get_tracing_count() == 1
    assert chi_square_p_value(low, stats.beta(0.1, 0.1)) > 1e-3
    assert chi_square_p_value(high, stats.beta(8, 8)) > 1e-3


def test_invalid_alpha_variable_raises_at_run_time_not_nan():
    alpha = tf.Variable(-1.0)
    with pytest.raises(tf.errors.InvalidArgumentError, match="alpha"):
        keras_mixup.sample_lambda([3], alpha, 0)
    alpha.assign(float("nan"))
    with pytest.raises(tf.errors.InvalidArgumentError, match="alpha"):
        keras_mixup.sample_lambda([3], alpha, 0)


def test_alpha_tensor_must_be_a_float_scalar():
    with pytest.raises(ValueError, match="must be a scalar"):
        keras_mixup.sample_lambda([3], tf.constant([0.2, 0.3]), 0)
    with pytest.raises(ValueError, match="floating-point"):
        keras_mixup.sample_lambda([3], tf.constant(1), 0)


def test_sampling_compiles_under_xla():
    alpha = tf.Variable(0.2)

    @tf.function(jit_compile=True)
    def draw(seed):
        return keras_mixup.sample_lambda([1000], alpha, seed)

    lam = draw(tf.constant([0, 1])).numpy()
    assert lam.shape == (1000,) and 0 <= lam.min() and lam.max() <= 1


def test_seed_source_is_fresh_per_call_and_reproducible():
    first = state.SeedSource(3)
    second = state.SeedSource(3)
    a = [first.next_seed().numpy().tolist() for _ in range(5)]
    b = [second.next_seed().numpy().tolist() for _ in range(5)]
    assert a == b
    assert len({tuple(s) for s in a}) == 5
    unseeded = [
        state.SeedSource().next_seed().numpy().tolist() for _ in range(2)
    ]
    assert unseeded[0] != unseeded[1]


def test_seed_source_refuses_non_int_seeds():
    with pytest.raises(ValueError, match="`seed` must be an int or None"):
        state.SeedSource(1.5)
