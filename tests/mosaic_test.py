"""Mosaic, in tf.data and through the engine (TensorFlow backend; the
contract test runs it on every backend, in the model and under `jax.jit`).

What a user relies on: the four tiles meet at the drawn centre, each the
corner of its source that meets the centre, pixel for pixel; the label
weights are the tiles' exact areas; a box around a marked square lands on
that square; the partners follow `pairing`; `mode="batch"` draws one
centre; `mix_with` draws the partners from the partner batch; options are
checked with messages; configs round-trip; XLA gives the same mosaic.
"""

import numpy as np
import pytest
import tensorflow as tf

import keras_mixup
from keras_mixup.engine import MixingEngine

H, W = 12, 16


def _engine(**options):
    options.setdefault("seed", 3)
    return MixingEngine(variant="mosaic", num_classes=8, **options)


def _random_images(batch=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((batch, H, W, 2)).astype("float32")


def _expected(x, sources, cy, cx):
    """The mosaic written out tile by tile: each tile is the corner of its
    source that meets the centre."""
    out = np.empty_like(x[0])
    s0, s1, s2, s3 = sources
    out[:cy, :cx] = x[s0][H - cy :, W - cx :]
    out[:cy, cx:] = x[s1][H - cy :, : W - cx]
    out[cy:, :cx] = x[s2][: H - cy, W - cx :]
    out[cy:, cx:] = x[s3][: H - cy, : W - cx]
    return out


@pytest.mark.parametrize("mode", ["elem", "batch"])
def test_tiles_meet_at_the_drawn_centre(mode):
    engine = _engine(mode=mode, mosaic_center=(0.3, 0.7))
    x = _random_images()
    draw = engine.draw(8, x)
    mixed, labels, _ = engine.apply(draw, x, np.arange(8))
    mixed, labels = mixed.numpy(), labels.numpy()
    centre = draw.params["centre"].numpy()
    if mode == "batch":
        assert centre.shape == (2,)
        centre = np.tile(centre, (8, 1))
    partners = draw.partner_index.numpy()
    assert partners.shape == (8, 3)
    for i in range(8):
        cy, cx = centre[i]
        assert round(0.3 * H) <= cy <= round(0.7 * H)
        assert round(0.3 * W) <= cx <= round(0.7 * W)
        sources = [i, *partners[i]]
        np.testing.assert_array_equal(mixed[i], _expected(x, sources, cy, cx))
        areas = np.array(
            [cy * cx, cy * (W - cx), (H - cy) * cx, (H - cy) * (W - cx)]
        ) / (H * W)
        expected = np.zeros(8)
        np.add.at(expected, sources, areas)
        np.testing.assert_allclose(labels[i], expected, atol=1e-6)


def test_centres_spread_over_the_range_and_partners_are_permutations():
    engine = _engine()
    x = tf.zeros((2000, 40, 40, 1))
    draw = engine.draw(2000, x)
    centre = draw.params["centre"].numpy() / 40
    assert centre.min() >= 0.25 and centre.max() <= 0.75
    np.testing.assert_allclose(centre.mean(0), 0.5, atol=0.01)
    np.testing.assert_allclose(centre.std(0), 0.5 / np.sqrt(12), atol=0.01)
    partners = draw.partner_index.numpy()
    for column in partners.T:  # three random permutations
        np.testing.assert_array_equal(np.sort(column), np.arange(2000))
    assert np.mean(partners[:, 0] == partners[:, 1]) < 0.01


def test_same_class_pairing_tiles_one_class():
    engine = _engine(pairing="same_class")
    x = _random_images()
    y = np.array([0, 1, 0, 1, 2, 2, 0, 1])
    draw = engine.draw(8, x, y)
    _, labels, _ = engine.apply(draw, x, y)
    np.testing.assert_allclose(labels.numpy(), np.eye(8)[y], atol=1e-6)
    partners = draw.partner_index.numpy()
    np.testing.assert_array_equal(y[partners], np.repeat(y[:, None], 3, 1))


def test_a_box_around_a_marked_square_lands_on_that_square():
    # Image i is 0 but for a square of value i + 1 with a box around it:
    # in the mosaic, the pixels of value i + 1 must be exactly those of
    # the boxes labelled i.
    rng = np.random.default_rng(5)
    x = np.zeros((8, H, W, 1), "float32")
    boxes = np.zeros((8, 1, 4), "float32")
    for i in range(8):
        y0, x0 = rng.integers(0, H - 4), rng.integers(0, W - 5)
        y1, x1 = y0 + rng.integers(2, 5), x0 + rng.integers(2, 6)
        x[i, y0:y1, x0:x1] = i + 1
        boxes[i, 0] = [x0, y0, x1, y1]
    mixer = keras_mixup.Mosaic(
        num_classes=8, seed=6, bounding_box_format="xyxy", min_box_visibility=0
    )
    out = mixer(
        {
            "images": x,
            "labels": np.arange(8),
            "bounding_boxes": {"boxes": boxes, "labels": np.arange(8)[:, None]},
        }
    )
    images = out["images"].numpy()[..., 0]
    got = {k: v.numpy() for k, v in out["bounding_boxes"].items()}
    assert got["boxes"].shape == (8, 4, 4)
    for i in range(8):
        for label in range(8):
            framed = np.zeros((H, W), bool)
            for box, kept in zip(
                got["boxes"][i], got["labels"][i], strict=True
            ):
                if kept == label:
                    bx0, by0, bx1, by1 = box.astype(int)
                    framed[by0:by1, bx0:bx1] = True
            np.testing.assert_array_equal(images[i] == label + 1, framed)
    assert np.all(got["weights"][got["labels"] >= 0] == 1)


def test_boxes_under_min_box_visibility_are_dropped():
    x = np.zeros((8, H, W, 1), "float32")
    boxes = np.tile([[[0.0, 0.0, W, H]]], (8, 1, 1)).astype("float32")
    mixer = keras_mixup.Mosaic(
        num_classes=8,
        seed=1,
        bounding_box_format="xyxy",
        min_box_visibility=0.3,
    )
    engine = mixer.engine
    draw = engine.draw(8, tf.constant(x))
    element = {"boxes": boxes, "labels": np.arange(8)[:, None]}
    got = engine.apply_boxes(draw, element, tf.constant(x))
    weights = draw.params["weights"].numpy()
    kept = got["labels"].numpy() >= 0
    np.testing.assert_array_equal(kept, weights >= 0.3)


def test_mix_with_draws_partners_from_the_partner_batch():
    x = np.full((4, H, W, 1), 1.0, "float32")
    partner_x = np.full((4, H, W, 1), 2.0, "float32")
    ds = tf.data.Dataset.from_tensor_slices((x, np.zeros(4, "int32"))).batch(4)
    other = tf.data.Dataset.from_tensor_slices(
        (partner_x, np.ones(4, "int32"))
    ).batch(4)
    mixed = keras_mixup.mix_with(
        ds, other, variant="mosaic", num_classes=2, seed=1, mix_labels=True
    )
    images, labels = next(iter(mixed))
    own = np.mean(images.numpy() == 1.0, axis=(1, 2, 3))
    np.testing.assert_allclose(labels.numpy()[:, 0], own, atol=1e-6)
    assert np.all(own < 1)


def test_the_mosaic_under_xla_tiles_at_the_centre():
    engine = _engine()
    x = _random_images()

    @tf.function(jit_compile=True)
    def step(images):
        draw = engine.draw(8, images)
        mixed, _, _ = engine.apply(draw, images, tf.range(8))
        return draw, mixed

    draw, mixed = step(tf.constant(x))
    centre = draw.params["centre"].numpy()
    partners = draw.partner_index.numpy()
    for i in range(8):
        expected = _expected(x, [i, *partners[i]], *centre[i])
        np.testing.assert_array_equal(mixed.numpy()[i], expected)


def test_options_are_checked_and_named():
    with pytest.raises(ValueError, match=r"`center` must be a pair.*\(0.8"):
        keras_mixup.Mosaic(center=(0.8, 0.2))
    with pytest.raises(ValueError, match="mosaic_center.*only the mosaic"):
        keras_mixup.Mixup(variant="mixup", mosaic_center=(0.4, 0.6))
    with pytest.raises(ValueError, match="inputs-only form"):
        keras_mixup.Mixup(variant="mosaic", mix_labels=False)
    with pytest.raises(ValueError, match="two axes"):
        keras_mixup.Mixup(variant="mosaic", axes=(1,), num_classes=8)(
            np.zeros((8, 10, 3), "float32"), np.arange(8)
        )


def test_configs_round_trip():
    mixer = keras_mixup.Mosaic(center=(0.4, 0.6), num_classes=8, seed=1)
    config = mixer.get_config()
    assert config["center"] == [0.4, 0.6] and "mosaic_center" not in config
    again = keras_mixup.Mosaic.from_config(config)
    assert again.get_config() == config and again.center == (0.4, 0.6)
    layer = keras_mixup.MixupLayer(
        variant={"mixup": 0.5, "mosaic": 0.5}, mosaic_center=(0.3, 0.5)
    )
    loaded = keras_mixup.MixupLayer.from_config(layer.get_config())
    assert loaded.engine.options["mosaic_center"] == (0.3, 0.5)
