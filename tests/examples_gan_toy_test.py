"""Runs examples/gan_toy.py in `--quick` mode and checks its measures."""

import importlib.util
import os
import pathlib
import sys

import numpy as np
import pytest
from example_runs import (
    check_and_remove_quick_figures,
    quick_results,
    quick_value,
)

EXAMPLE = pathlib.Path(__file__).parents[1] / "examples" / "gan_toy.py"
# The example imports its neighbours (command_line, tables, ...).
sys.path.insert(0, str(EXAMPLE.parent))


def _load():
    spec = importlib.util.spec_from_file_location("gan_toy", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def gan_toy():
    return _load()


#: The quick runs, in a background process (`example_runs.GROUPS`).
quick = quick_results("examples:others")


def test_quick_run_prints_the_table_and_saves_the_figure(gan_toy, quick):
    run = quick_value(quick, "gan_toy")
    result = run["result"]
    summary = result["summary"]
    assert set(summary) == {
        (d, m) for d in ("ring", "spirals") for m in ("plain", "mixup")
    }
    for stats in summary.values():
        assert set(stats) == {"modes", "quality", "swd"}
        assert all(np.isfinite(v).all() for v in stats.values())
    out = run["out"]
    assert "mixup GAN" in out and "real vs real" in out and "SWD" in out
    # The generated points are saved next to the figure; `--replot`
    # redraws it from them without training.
    (figure,) = result["figures"]
    samples = gan_toy.load_samples(figure)
    assert set(samples) == {
        (d, m, i)
        for d in ("ring", "spirals")
        for m in ("plain", "mixup")
        for i in (1, 3)
    }
    os.remove(figure)
    figures = os.path.dirname(figure)
    replot = gan_toy.main(["--quick", "--replot", "--figures", figures])
    assert replot["figures"] == [figure]
    check_and_remove_quick_figures([figure], ["gan_toy.png"])


@pytest.mark.parametrize("dataset", ["ring", "spirals"])
def test_measures_on_real_and_collapsed_samples(gan_toy, dataset):
    rng = np.random.default_rng(1)
    real, labels = gan_toy.DATASETS[dataset][0](2000, rng)
    num_modes = gan_toy.DATASETS[dataset][1]
    assert set(labels) == set(range(num_modes))
    fit = gan_toy.measure_fit(real, dataset)
    assert fit["modes"] == num_modes and fit["quality"] > 0.99
    assert fit["swd"] < 0.1
    # All samples on one mode: one mode covered, a large distance.
    collapsed = real[labels == labels[0]]
    collapsed = collapsed[rng.integers(len(collapsed), size=2000)]
    fit = gan_toy.measure_fit(collapsed, dataset)
    assert fit["modes"] == 1 and fit["quality"] > 0.99
    assert fit["swd"] > 0.3


def test_sliced_wasserstein_of_a_shift(gan_toy):
    # Every 1-D projection of a shift by d moves by |d . u|: the mean over
    # random unit directions u in 2-D is 2 |d| / pi.
    rng = np.random.default_rng(0)
    a = rng.standard_normal((500, 2))
    swd = gan_toy.sliced_wasserstein(a, a + [1.0, 0.0], num_projections=4096)
    np.testing.assert_allclose(swd, 2 / np.pi, rtol=0.03)
