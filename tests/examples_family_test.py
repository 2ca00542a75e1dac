"""examples/family.py: its `--quick` run (every variant named, unknown
names skipped with a note), and its figure's panels, exact on digits."""

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

import family  # noqa: E402
import plots  # noqa: E402
import tabular  # noqa: E402

#: The quick runs, in a background process (`example_runs.GROUPS`).
quick = quick_results("examples:paper")


@pytest.mark.slow
def test_family_quick(quick):
    run = quick_value(quick, "family")
    result, out = run["result"], run["out"]
    assert "note: skipping 'nosuch': not a variant of this keras_mixup" in out
    names = ["ERM", "mixup", "cutmix", "choice of 2"]
    assert [row[0] for row in result["rows"]] == names
    assert result["variants"] == ["mixup", "cutmix"]
    for row in result["rows"]:
        for cell in row[1:]:
            assert 0.0 <= float(cell.split(" ± ")[0]) <= 100.0, row
    saved = run["saved"]  # read before the replot
    assert list(saved["errors"]) == names and saved["variants"] == names[1:3]
    assert len(saved["errors"]["ERM"][0]) == 1  # 1 seed of 1 epoch
    # `--quick --replot`, run after, redrew it from the saved run, without
    # training.
    assert run["replot"] == {"figures": result["figures"]}
    assert plots.load_results(result["figures"][0]) == saved
    check_and_remove_quick_figures(result["figures"], ["family.png"])
    assert "| choice of 2" in out


def _distinct_digits():
    x, y, num_classes = tabular.load_digits_images()
    first = [int(np.flatnonzero(y == c)[0]) for c in range(6)]
    return x[first], y[first], num_classes


def test_cut_panels_weigh_labels_by_the_pixels_of_each_source():
    x, y, num_classes = _distinct_digits()
    images, labels, sources, boxes = family.mixed_panels(
        "cutmix", x, y, num_classes, seed=3
    )
    assert labels.shape == (6, num_classes) and sources.shape == (6, 8, 8)
    for i in range(6):
        partners = set(np.unique(sources[i]).astype(int))
        for j in partners:
            # Pixel j of the source map is example j's: its label weight
            # is the fraction of those pixels, and so are the pixels.
            own = sources[i] == j
            np.testing.assert_allclose(labels[i, y[j]], own.mean(), atol=1e-6)
            np.testing.assert_array_equal(images[i][own], x[j][own])
    # CutMix takes boxes: each digit's box, trimmed or carried over.
    assert boxes["boxes"].shape[-1] == 4
    assert (boxes["labels"] >= 0).any(axis=1).all()


def test_digit_boxes_enclose_the_ink_and_blends_have_mixed_sources():
    x, y, num_classes = _distinct_digits()
    boxes = family.digit_boxes(x, y)
    for (x0, y0, x1, y1), image in zip(boxes["boxes"][:, 0], x, strict=True):
        ink = image[..., 0] > 0.25
        assert ink[int(y0) : int(y1), int(x0) : int(x1)].sum() == ink.sum()
    np.testing.assert_array_equal(boxes["labels"][:, 0], y)
    _, labels, sources, _ = family.mixed_panels(
        "mixup", x, y, num_classes, seed=3
    )
    # A blend: each pixel lam * i + (1 - lam) * j, and digit j is of
    # class j here, so the source map is the labels' mean class.
    mean_class = labels @ np.arange(num_classes)
    np.testing.assert_allclose(
        sources, np.broadcast_to(mean_class[:, None, None], (6, 8, 8)), 1e-5
    )
    assert len(set(np.round(mean_class, 4)) - set(range(6))) > 0


def test_mosaic_labels_weigh_each_tiles_class_on_the_examples_pipeline():
    # The example's own path (`tabular.train_dataset` with its Mixup map
    # on 16x16 digits, three batches): images
    # that hold their example's index, so each output's pixels name their
    # sources; each class's label weight must be the area of its tiles.
    import keras_mixup

    _, y, num_classes = family.load_images(16)
    count = len(y)
    index = np.arange(count, dtype="float32").reshape(count, 1, 1, 1)
    x = index * np.ones((count, 16, 16, 1), "float32")
    mixer = keras_mixup.Mixup(
        alpha=1.0, variant="mosaic", num_classes=num_classes, seed=0
    )
    ds = tabular.train_dataset(
        x, y, batch_size=64, num_classes=num_classes, mixup=mixer, seed=0
    )
    for images, labels in ds.take(3):
        sources = images.numpy()[..., 0].astype(int).reshape(len(images), -1)
        areas = np.zeros_like(labels.numpy())
        for row, pixels in enumerate(sources):
            np.add.at(areas[row], y[pixels], 1.0 / pixels.size)
        np.testing.assert_allclose(labels.numpy(), areas, atol=1e-6)
        assert (areas.max(axis=1) < 1.0).mean() > 0.9  # most are mixed
