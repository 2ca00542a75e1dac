"""ResizeMix, in tf.data and through the engine (TensorFlow backend; the
contract test runs it on every backend, in the model and under `jax.jit`).

What a user relies on: the box's side fraction tau is uniform in `scale`;
the pasted region is exactly the partner resized to the (clipped) box, as
`keras.ops.image.resize` resizes it (bilinear; masks nearest neighbour);
outside it the example is untouched; its label weight is the exact
fraction of pixels it keeps; the partner's boxes land where its pixels
went; options are checked with messages; configs round-trip; XLA gives the
same paste.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import BACKENDS, shared_result
from scipy import stats

import keras_mixup
from keras_mixup.engine import MixingEngine


def _engine(**options):
    options.setdefault("seed", 3)
    return MixingEngine(variant="resizemix", num_classes=6, **options)


def _random_images(batch=6, height=20, width=24, channels=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((batch, height, width, channels)).astype("float32")


def _boxes(draw):
    lows = draw.params["lows"].numpy()
    highs = draw.params["highs"].numpy()
    if len(lows) == 1:  # one box for the batch
        lows, highs = (np.repeat(a, 6, axis=0) for a in (lows, highs))
    return lows, highs


def test_side_fractions_are_uniform_in_scale():
    engine = _engine(resizemix_scale=(0.2, 0.7))
    x = tf.zeros((4000, 40, 40, 1))
    draw = engine.draw(4000, x)
    tau = draw.params["tau"].numpy()
    assert stats.kstest(tau, stats.uniform(0.2, 0.5).cdf).pvalue > 0.01
    lows, highs = (draw.params[k].numpy() for k in ("lows", "highs"))
    sides = highs - lows
    # Clipping only shortens a side; unclipped sides are round(tau * 40).
    expected = np.round(tau * 40)[:, None]
    assert np.all(sides <= expected)
    inside = (lows > 0) & (highs < 40)
    np.testing.assert_array_equal(
        sides[inside], np.broadcast_to(expected, sides.shape)[inside]
    )
    assert inside.mean() > 0.3 and (~inside).any()


def _check_paste(x, mixed, labels, draw, *, masks=None):
    lows, highs = _boxes(draw)
    partner = draw.partner_index.numpy()
    height, width = x.shape[1:3]
    for i in range(len(x)):
        (y0, x0), (y1, x1) = lows[i], highs[i]
        own = np.ones((height, width), bool)
        own[y0:y1, x0:x1] = False
        np.testing.assert_array_equal(mixed[i][own], x[i][own])
        if y1 > y0 and x1 > x0:
            resized = keras.ops.image.resize(
                x[partner[i]],
                (y1 - y0, x1 - x0),
                interpolation="nearest" if masks else "bilinear",
                antialias=False,
            )
            np.testing.assert_allclose(
                mixed[i][y0:y1, x0:x1], np.asarray(resized), atol=1e-5
            )
        kept = 1 - (y1 - y0) * (x1 - x0) / (height * width)
        if partner[i] != i and labels is not None:
            np.testing.assert_allclose(labels[i, i], kept, atol=1e-6)
            np.testing.assert_allclose(
                labels[i, partner[i]], 1 - kept, atol=1e-6
            )


@pytest.mark.parametrize("mode", ["elem", "batch"])
def test_the_pasted_region_is_the_partner_resized(mode):
    engine = _engine(mode=mode)
    x = _random_images()
    draw = engine.draw(6, x)
    mixed, labels, _ = engine.apply(draw, x, np.arange(6))
    _check_paste(x, mixed.numpy(), labels.numpy(), draw)
    if mode == "batch":
        lows, highs = _boxes(draw)
        assert (
            len({tuple(h - lo) for lo, h in zip(lows, highs, strict=True)}) == 1
        )


def test_masks_are_resized_by_nearest_neighbour_and_stay_integer():
    engine = _engine()
    rng = np.random.default_rng(1)
    x = _random_images()
    masks = tf.constant(rng.integers(0, 6, (6, 20, 24, 1)), "int32")
    draw = engine.draw(6, x)
    _, _, _, mixed = engine.apply(draw, x, np.arange(6), masks=masks)
    assert mixed.dtype == tf.int32
    _check_paste(
        masks.numpy().astype("float32"),
        mixed.numpy().astype("float32"),
        None,
        draw,
        masks=True,
    )


def test_the_paste_under_xla_is_the_partner_resized():
    engine = _engine()
    x = _random_images()

    @tf.function(jit_compile=True)
    def step(images):
        draw = engine.draw(6, images)
        mixed, labels, _ = engine.apply(draw, images, tf.range(6))
        return draw, mixed, labels

    draw, mixed, labels = step(tf.constant(x))
    _check_paste(x, mixed.numpy(), labels.numpy(), draw)


def test_partner_boxes_land_on_the_resized_partner():
    # Each image is 0 but for a marked square, with a box around it; the
    # partner's box must frame the marked pixels pasted into the example.
    height, width = 32, 40
    x = np.zeros((6, height, width, 1), "float32")
    boxes = np.zeros((6, 1, 4), "float32")
    for i in range(6):
        y0, x0 = 2 + 3 * i, 4 + 4 * i
        x[i, y0 : y0 + 10, x0 : x0 + 12] = 1.0
        boxes[i, 0] = [x0, y0, x0 + 12, y0 + 10]
    mixer = keras_mixup.ResizeMix(
        scale=(0.6, 0.9),
        num_classes=6,
        seed=4,
        bounding_box_format="xyxy",
        min_box_visibility=0.0,
    )
    out = mixer(
        {
            "images": x,
            "labels": np.arange(6),
            "bounding_boxes": {"boxes": boxes, "labels": np.arange(6)[:, None]},
        }
    )
    images = out["images"].numpy()[..., 0]
    got = out["bounding_boxes"]
    for i in range(6):
        labels = got["labels"][i].numpy()
        if labels[1] < 0:  # not mixed with another example
            continue
        bx0, by0, bx1, by1 = got["boxes"][i, 1].numpy()
        assert got["weights"][i, 1] == 1.0
        # The pasted square (bilinear: values near 1 inside) lies within
        # the moved box, and the box is no more than a pixel larger.
        own = x[i, ..., 0] == 1
        pasted = (images[i] > 0.99) & ~own
        rows, cols = np.nonzero(pasted)
        assert rows.size, i
        assert by0 - 1 <= rows.min() and rows.max() + 1 <= by1 + 1
        assert bx0 - 1 <= cols.min() and cols.max() + 1 <= bx1 + 1
        assert rows.max() + 1 - rows.min() >= by1 - by0 - 2


def test_options_are_checked_and_named():
    with pytest.raises(
        ValueError, match=r"`scale` must be a pair.*\(0.9, 0.1\)"
    ):
        keras_mixup.ResizeMix(scale=(0.9, 0.1))
    with pytest.raises(ValueError, match="`resizemix_scale` must be"):
        keras_mixup.Mixup(variant="resizemix", resizemix_scale=0)
    with pytest.raises(ValueError, match="resizemix_scale.*only the resizemix"):
        keras_mixup.Mixup(variant="cutmix", resizemix_scale=(0.1, 0.5))
    with pytest.raises(ValueError, match="unknown option.*alpha"):
        keras_mixup.ResizeMix(alpha=1.0)
    with pytest.raises(ValueError, match="inputs-only form"):
        keras_mixup.Mixup(variant="resizemix", mix_labels=False)


def test_configs_round_trip():
    mixer = keras_mixup.ResizeMix(scale=(0.2, 0.4), num_classes=6, seed=1)
    config = mixer.get_config()
    assert config["scale"] == [0.2, 0.4] and "resizemix_scale" not in config
    again = keras_mixup.ResizeMix.from_config(config)
    assert again.get_config() == config and again.scale == (0.2, 0.4)
    assert "scale=(0.2, 0.4)" in repr(again)
    layer = keras_mixup.MixupLayer(
        variant="resizemix", resizemix_scale=(0.3, 0.5), seed=1
    )
    loaded = keras_mixup.MixupLayer.from_config(layer.get_config())
    assert loaded.engine.options["resizemix_scale"] == (0.3, 0.5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_backend_pastes_the_partner_resized_and_tiles_mosaics(
    request, backend
):
    # In the model's namespace of each backend (the engine MixupLayer and
    # MixupModel hold): keras.ops.image.resize's result, Mosaic's crops.
    result = shared_result(request, backend, "resize_and_tile")
    assert result["resize_error"] < 1e-5, result
    assert result["tile_error"] == 0.0, result


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_backend_pastes_cutmix_boxes_exactly(request, backend):
    # PyTorch pastes by a slice copy per batch (its box computed on the
    # host) and one torch.where per example, its boxes from torch ops: the
    # same pixels and boxes, and
    # every backend's boxes those of the rule written in NumPy.
    result = shared_result(request, backend, "resize_and_tile")
    for image_error, label_error in result["cut_errors"]:
        assert image_error == 0.0 and label_error < 1e-6, result
    bounds, kept, host_bounds, host_kept = result["bounds_error"]
    assert bounds == 0.0 and kept < 1e-6, result
    # PyTorch's one box per batch, on the host in float32 scalars: the
    # very values of the float32 rule.
    assert host_bounds == 0.0 and host_kept == 0.0, result
