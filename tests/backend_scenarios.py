"""Scenarios run under one Keras backend, in a subprocess of backends_test.py.

    KERAS_BACKEND=jax python tests/backend_scenarios.py beta

prints one JSON object: what the scenario measured, for the parent test to
check. The backend is chosen by the environment before Keras is imported,
which is why these run in their own process.
"""

import json
import sys

import numpy as np
from scipy import stats

ALPHAS = (0.01, 0.2, 1.0, 8.0, 64.0)
DRAWS = 100_000
END = 1e-3  # "near the ends": within this distance of 0 or 1


def _interior_ks(lam, distribution):
    """KS p-value of the draws inside (END, 1 - END) against the exact Beta
    truncated there: float32 rounds the ends, the interior it resolves."""
    inside = lam[(lam > END) & (lam < 1 - END)]
    low, high = distribution.cdf(END), distribution.cdf(1 - END)
    return float(
        stats.kstest(
            inside, lambda x: (distribution.cdf(x) - low) / (high - low)
        ).pvalue
    )


def _summary(lam, a, b):
    distribution = stats.beta(a, b)
    return {
        "dtype": str(lam.dtype),
        "nan": int(np.isnan(lam).sum()),
        "min": float(np.nanmin(lam)),
        "max": float(np.nanmax(lam)),
        "half": float(np.mean(lam == 0.5)),
        "mean": float(lam.mean()),
        "var": float(lam.var()),
        "ends": int(np.sum((lam < END) | (lam > 1 - END))),
        "ks": _interior_ks(lam.astype("float64"), distribution),
    }


def beta():
    """`sample_lambda` on this backend: the table the parent checks."""
    import keras

    import keras_mixup

    out = {"backend": keras.backend.backend()}
    for alpha in ALPHAS:
        for inputs_only in (False, True):
            lam = keras_mixup.sample_lambda(
                [DRAWS], alpha, seed=7, inputs_only=inputs_only
            )
            lam = keras.ops.convert_to_numpy(lam)
            a = alpha + 1 if inputs_only else alpha
            out[f"{alpha}/{inputs_only}"] = _summary(lam, a, alpha)
    first = keras.ops.convert_to_numpy(keras_mixup.sample_lambda([8], 0.4, 3))
    again = keras.ops.convert_to_numpy(keras_mixup.sample_lambda([8], 0.4, 3))
    other = keras.ops.convert_to_numpy(keras_mixup.sample_lambda([8], 0.4, 4))
    out["bad_alpha_errors"] = []
    for bad in (0, -1.0, float("nan"), "0.2", None, True, [0.2]):
        try:
            keras_mixup.sample_lambda([3], bad, 0)
            out["bad_alpha_errors"].append(None)
        except ValueError as error:
            out["bad_alpha_errors"].append(str(error))
    try:
        keras_mixup.sample_lambda([3], 0.2, seed="seven")
        out["bad_seed_error"] = None
    except ValueError as error:
        out["bad_seed_error"] = str(error)
    out["same_seed_same_draw"] = bool(np.array_equal(first, again))
    out["other_seed_other_draw"] = not np.array_equal(first, other)
    return out


if __name__ == "__main__":
    print(json.dumps(globals()[sys.argv[1]]()))
