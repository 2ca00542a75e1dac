"""The C-Mixup, RegMixup and calibration examples, end to end in `--quick`
mode (their command line is checked with the others' in examples_test)."""

import math
import os
import sys

import numpy as np
import pytest
from example_runs import (
    check_and_remove_quick_figures,
    quick_results,
    quick_value,
)

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "examples")
sys.path.insert(0, EXAMPLES)

import calibration  # noqa: E402
import plots  # noqa: E402
import regression  # noqa: E402

#: The quick runs, in a background process (`example_runs.GROUPS`).
quick = quick_results("examples:others")


def numbers(cell):
    return [float(part) for part in str(cell).split(" ± ")]


@pytest.mark.slow
def test_calibration_quick(quick):
    result = quick_value(quick, "calibration")["result"]
    assert [row[0] for row in result["rows"]] == [
        "ERM",
        "label smoothing 0.1",
        "mixup α=0.2",
        "RegMixup α=10, w=1",
    ]
    for name, (run,) in result["results"].items():
        assert 0 <= run["error"] <= 100 and 0 <= run["ece"] <= 100, name
        assert 10 <= run["confidence"] <= 100 and run["nll"] > 0, name
        counts = np.asarray(run["bins"]["bin_counts"])
        assert counts.shape == (15,) and counts.sum() == 360  # the test set
        accuracy = np.sum(run["bins"]["bin_correct"]) / counts.sum()
        assert math.isclose(100 * (1 - accuracy), run["error"], abs_tol=1e-3)
    saved = plots.load_results(result["figures"][0])
    assert list(saved) == [row[0] for row in result["rows"]]
    check_and_remove_quick_figures(result["figures"], ["calibration.png"])


def test_calibration_measures_a_known_case():
    # Two examples, both predicted with confidence 0.8; one is right.
    logits = np.log(np.array([[0.8, 0.2], [0.2, 0.8]]))
    result = calibration.calibration(logits, np.array([0, 0]), num_bins=10)
    assert math.isclose(result["error"], 50.0)
    assert math.isclose(result["ece"], 30.0, abs_tol=1e-4)  # |0.5 - 0.8|
    assert math.isclose(result["confidence"], 80.0, abs_tol=1e-4)
    nll = -(np.log(0.8) + np.log(0.2)) / 2
    assert math.isclose(result["nll"], nll, rel_tol=1e-6)


@pytest.mark.slow
def test_regression_quick(quick):
    result = quick_value(quick, "regression")["result"]
    names = [row[0] for row in result["rows"]]
    assert names == ["ERM", "mixup α=2", "C-Mixup α=2, σ=0.2"]
    assert result["headers"][1:] == ["diabetes: test RMSE", "sine: test RMSE"]
    for row in result["rows"]:
        for cell in row[1:]:
            (value,) = numbers(cell)
            assert math.isfinite(value) and value > 0


def test_regression_tasks_are_standard_arrays():
    x_train, y_train, x_test, y_test = regression.load_task("diabetes", 0)
    assert x_train.shape == (353, 10) and y_train.shape == (353, 1)
    assert x_test.shape == (89, 10) and y_test.shape == (89, 1)
    np.testing.assert_allclose(x_train.mean(0), 0, atol=1e-5)
    x_train, y_train, x_test, y_test = regression.load_task("sine", 1)
    assert x_train.shape == (64, 1) and x_test.shape == (1000, 1)
    np.testing.assert_allclose(y_test, np.sin(2 * x_test) + x_test / 2, 1e-5)
    assert np.abs(y_train - (np.sin(2 * x_train) + x_train / 2)).max() < 0.5
