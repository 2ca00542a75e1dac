"""A choice among every registered variant (issue 22, item 5): members with
different numbers of sources (two for mixup, CutMix and ResizeMix, four
for Mosaic) chosen per example or per batch, with their probabilities; the
labels and boxes of each example are those of the member chosen for it;
the DeiT recipe (a choice of two-source members) keeps its path."""

import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

import keras_mixup
from keras_mixup import variants
from keras_mixup.engine import MixingEngine


def _all_names():
    names = sorted(variants.REGISTRY)
    weights = np.arange(1, len(names) + 1, dtype="float64")
    weights /= weights.sum()
    return dict(zip(names, weights.tolist(), strict=True))


@pytest.mark.parametrize("mode", ["elem", "batch"])
def test_the_choice_frequencies_follow_the_probabilities(mode):
    spec = _all_names()
    engine = MixingEngine(variant=spec, num_classes=4, mode=mode, seed=7)
    x = tf.zeros((2000 if mode == "elem" else 2, 8, 8, 1))
    draws = 1 if mode == "elem" else 200
    step = tf.function(lambda a: engine.draw(x.shape[0], a).params["choice"])
    counts = np.zeros(len(spec))
    for _ in range(draws):
        np.add.at(counts, np.reshape(step(x).numpy(), [-1]), 1)
    expected = np.array(list(spec.values())) * counts.sum()
    assert stats.chisquare(counts, expected).pvalue > 1e-3, counts


def _index_images(batch, size=8):
    x = np.zeros((batch, size, size, batch), "float32")
    for i in range(batch):
        x[i, ..., i] = 1
    return x


def test_each_example_takes_its_members_labels_and_boxes():
    spec = {"mixup": 0.25, "cutmix": 0.25, "resizemix": 0.25, "mosaic": 0.25}
    engine = MixingEngine(
        variant=spec, num_classes=8, seed=2, bounding_box_format="xyxy"
    )
    x = _index_images(8)
    draw = engine.draw(8, x)
    assert draw.partner_index.shape == (8, 3)  # as many as Mosaic needs
    images, labels, _ = engine.apply(draw, x, np.arange(8))
    np.testing.assert_allclose(
        images.numpy().mean(axis=(1, 2)), labels.numpy(), atol=1e-5
    )
    boxes = {
        "boxes": np.tile([[[0.0, 0.0, 8.0, 8.0]]], (8, 1, 1)),
        "labels": np.arange(8)[:, None],
    }
    got = engine.apply_boxes(draw, boxes, x)
    assert got["labels"].shape == (8, 4)  # padded to Mosaic's 4 sources
    choice = draw.params["choice"].numpy()
    for i in range(8):
        present = got["labels"][i].numpy()
        present = present[present >= 0]
        assert np.all(labels.numpy()[i, present] > 0), (i, choice[i])
        if choice[i] != 3:  # a two-source member: its two boxes at most
            assert np.all(got["labels"][i, 2:].numpy() == -1)


def test_the_deit_recipe_keeps_its_two_source_path():
    mixer = keras_mixup.Mixup(
        alpha=0.8,
        cutmix_alpha=1.0,
        switch_prob=0.5,
        label_smoothing=0.1,
        mode="batch",
        num_classes=8,
        seed=1,
    )
    assert mixer.engine.variant.sources == 2
    draw = mixer.engine.draw(8, _index_images(8))
    assert draw.partner_index.shape == (8,)
    images, labels = mixer(_index_images(8), np.arange(8))
    np.testing.assert_allclose(labels.numpy().sum(1), 1.0, atol=1e-6)
    assert labels.numpy().min() >= 0.1 / 8 - 1e-6
