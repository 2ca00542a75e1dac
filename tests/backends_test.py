"""Every Keras backend: lam is drawn correctly on TensorFlow, JAX and PyTorch.

Each backend runs `backend_scenarios.py` in its own process (Keras picks its
backend once, at import; the other scenarios of `conftest.CHAIN` run in
the same process), and the tests here check what it measured.
"""

import math

import pytest
from conftest import BACKENDS, shared_result
from scipy import stats

ALPHAS = (0.01, 0.2, 1.0, 8.0, 64.0)
DRAWS = 100_000
END = 1e-3


@pytest.fixture(params=BACKENDS)
def beta(request):
    return shared_result(request, request.param, "beta")


def _rows(beta):
    for alpha in ALPHAS:
        for inputs_only in (False, True):
            a = alpha + 1 if inputs_only else alpha
            yield alpha, a, beta[f"{alpha}/{inputs_only}"]


def test_no_nan_no_value_outside_0_1_and_no_pile_up_at_one_half(beta):
    for alpha, _, row in _rows(beta):
        assert row["dtype"] == "float32", (alpha, row)
        assert row["nan"] == 0 and 0 <= row["min"] and row["max"] <= 1
        # A float32 gamma ratio puts 17.6% of draws at exactly 0.5 for
        # alpha = 0.01; the exact Beta puts no mass there.
        assert row["half"] <= 0.001, (alpha, row["half"])


def test_moments_match_the_exact_beta(beta):
    for alpha, a, row in _rows(beta):
        exact = stats.beta(a, alpha)
        mean_error = exact.std() / math.sqrt(DRAWS)
        assert abs(row["mean"] - exact.mean()) < 5 * mean_error, (alpha, a)
        mean = exact.mean()
        fourth = exact.expect(lambda x: (x - mean) ** 4)  # noqa: B023
        var_error = math.sqrt((fourth - exact.var() ** 2) / DRAWS)
        assert abs(row["var"] - exact.var()) < 5 * var_error, (alpha, a)


def test_mass_near_the_ends_matches_the_exact_beta(beta):
    for alpha, a, row in _rows(beta):
        exact = stats.beta(a, alpha)
        p = exact.cdf(END) + exact.sf(1 - END)
        spread = math.sqrt(DRAWS * p * (1 - p))
        assert abs(row["ends"] - DRAWS * p) <= 5 * spread + 2, (alpha, a, p)


def test_interior_follows_the_exact_beta(beta):
    for alpha, a, row in _rows(beta):
        assert row["ks"] > 1e-3, (alpha, a, row["ks"])


def test_inputs_only_mean_is_that_of_beta_alpha_plus_one_alpha(beta):
    for alpha in ALPHAS:
        row = beta[f"{alpha}/True"]
        expected = (alpha + 1) / (2 * alpha + 1)
        assert row["mean"] == pytest.approx(expected, abs=0.005), alpha


def test_seeds_are_reproducible(beta):
    assert beta["same_seed_same_draw"] and beta["other_seed_other_draw"]


def test_invalid_alpha_is_refused(beta):
    for message in beta["bad_alpha_errors"]:
        assert message and "`alpha` must be a finite number > 0" in message


def test_invalid_seed_is_refused(beta):
    assert "`seed` must be an int" in (beta["bad_seed_error"] or "")
