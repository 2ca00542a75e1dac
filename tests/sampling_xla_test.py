"""`sample_lambda` under XLA: the package's Marsaglia-Tsang Beta sampler.

Each compiled draw takes its concentrations from variables, so one XLA
compile serves every alpha. The logit log(lam / (1 - lam)) is tested against
the exact Beta CDF (float32 lam rounds to 0 or 1 within 6e-8 of the ends,
which a KS test on lam would see at small alpha).
"""

import numpy as np
import pytest
import tensorflow as tf
from scipy import special, stats

from keras_mixup import draws

SIZE = 20000


def logit_cdf(x, a, b):
    """P(logit(lam) <= x) for lam ~ Beta(a, b), accurate in both tails."""
    x = np.asarray(x, "float64")
    lower = stats.beta(a, b).cdf(special.expit(x))
    upper = stats.beta(b, a).sf(special.expit(-x))
    return np.where(x <= 0, lower, upper)


class Logits:
    """`_beta_logit_xla` compiled once per candidates and dtype."""

    def __init__(self, candidates=None, dtype=tf.float32):
        self.c1 = tf.Variable(1.0, dtype=dtype)
        self.c0 = tf.Variable(1.0, dtype=dtype)
        self.draw = tf.function(
            lambda seed: draws._beta_logit_xla(
                SIZE, self.c1, self.c0, seed, candidates
            ),
            jit_compile=True,
        )

    def __call__(self, a, b, seed=(3, 4)):
        self.c1.assign(a)
        self.c0.assign(b)
        logit, rounds = self.draw(tf.constant(seed))
        return logit.numpy().astype("float64"), int(rounds)


@pytest.fixture(scope="module")
def logits():
    return Logits()


def ks_p_value(logit, a, b):
    return stats.kstest(logit, lambda x: logit_cdf(x, a, b)).pvalue


@pytest.mark.parametrize(
    "a, b",
    [
        (0.01, 0.01),
        (0.1, 0.1),
        (0.4, 0.4),
        (1.0, 1.0),
        (8.0, 8.0),
        (64.0, 64.0),
        (1.01, 0.01),
        (1.2, 0.2),
        (2.0, 1.0),
        (9.0, 8.0),
    ],
)
def test_the_logit_follows_the_exact_beta(logits, a, b):
    logit, rounds = logits(a, b)
    assert np.isfinite(logit).all()
    assert ks_p_value(logit, a, b) > 1e-3
    assert rounds <= 4  # 2 * SIZE values, each refused 4 times w.p. < 1e-5


def test_the_ks_test_has_power(logits):
    """Beta(0.4, 0.4) is told from Beta(0.5, 0.5), Beta(1.2, 0.2) from
    Beta(0.2, 0.2), Beta(64, 64) from Beta(48, 48)."""
    assert ks_p_value(logits(0.4, 0.4)[0], 0.5, 0.5) < 1e-6
    assert ks_p_value(logits(1.2, 0.2)[0], 0.2, 0.2) < 1e-6
    assert ks_p_value(logits(64.0, 64.0)[0], 48.0, 48.0) < 1e-6


def test_one_candidate_runs_the_loop_and_stays_exact():
    """With one candidate a round, about 5% of the values at shape 1.01
    (Marsaglia-Tsang's lowest acceptance) need later rounds of the loop."""
    one = Logits(candidates=1)
    for a, b in [(0.01, 0.01), (1.0, 1.0), (1.2, 0.2)]:
        logit, rounds = one(a, b)
        assert rounds >= 3
        assert ks_p_value(logit, a, b) > 1e-3


def test_float64_logit_and_lam():
    wide = Logits(dtype=tf.float64)
    logit, _ = wide(0.05, 0.05)
    assert ks_p_value(logit, 0.05, 0.05) > 1e-3
    lam = tf.function(
        lambda seed: draws.sample_lambda_tf([SIZE], 0.4, seed, dtype="float64"),
        jit_compile=True,
    )(tf.constant([1, 2])).numpy()
    assert lam.dtype == np.float64
    assert stats.kstest(lam, stats.beta(0.4, 0.4).cdf).pvalue > 1e-3


def test_seeds_and_variable_alpha_through_sample_lambda():
    alpha = tf.Variable(0.01)

    @tf.function(jit_compile=True)
    def draw(seed, inputs_only=False):
        return draws.sample_lambda_tf(
            [SIZE], alpha, seed, inputs_only=inputs_only
        )

    first = draw(tf.constant([0, 1])).numpy()
    np.testing.assert_array_equal(draw(tf.constant([0, 1])), first)
    # At alpha 0.01 most draws round to 0 or 1 and so agree between seeds.
    other = draw(tf.constant([0, 2])).numpy()
    assert not np.array_equal(first, other)
    # Tiny alpha: U-shaped, symmetric, in [0, 1], no NaN, no pile-up at 0.5.
    assert not np.isnan(first).any()
    assert first.min() >= 0.0 and first.max() <= 1.0
    assert np.mean((first < 0.01) | (first > 0.99)) > 0.9
    assert abs(np.mean(first < 0.5) - 0.5) < 0.02
    assert np.mean(first == 0.5) < 1e-4
    alpha.assign(8.0)
    lam = draw(tf.constant([0, 3])).numpy()
    np.testing.assert_array_equal(draw(tf.constant([0, 3])), lam)
    assert np.mean(lam == draw(tf.constant([0, 4])).numpy()) < 0.01
    assert stats.kstest(lam, stats.beta(8, 8).cdf).pvalue > 1e-3
    lam = draw(tf.constant([0, 3]), inputs_only=True).numpy()
    assert stats.kstest(lam, stats.beta(9, 8).cdf).pvalue > 1e-3
    assert draw.experimental_get_tracing_count() == 2  # one per form
