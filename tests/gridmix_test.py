"""GridMix, in tf.data and through the engine (the contract test runs it
on every backend, in the model, under XLA and `jax.jit`).

What a user relies on: the holes are OpenMixup's (checked against a port
of its `rand_grid` loop), periodic (the partner's pixels are one cell's
pattern repeated up to the region's border), each of sides sqrt(1 - lam)
of its cell; the labels weigh exactly the pixels kept; per batch one grid;
layouts; XLA; configs; bad input named.
"""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

import keras_mixup
from keras_mixup import backend
from keras_mixup.variants import gridmix


def _index_images(batch, shape=(32, 32), channels=1):
    """Images filled with their own index (1-based, so no value is 0)."""
    index = np.arange(1, batch + 1, dtype="float32")
    index = index.reshape([batch] + [1] * (len(shape) + 1))
    return index * np.ones((batch, *shape, channels), "float32")


def _openmixup_mask(height, width, lam, n, hole_aspect, area, aspect, place):
    """OpenMixup's `rand_grid` (openmixup/models/augments/gridmix.py), its
    loop over holes as written, with rows for the height and columns for
    the width: 1 where the partner's pixels go."""
    cut_area = int(height * width * area)
    cut_w = int(np.sqrt(cut_area / aspect))
    cut_h = int(cut_w * aspect)
    x0 = int((width - cut_w) * place[1])
    y0 = int((height - cut_h) * place[0])
    patch_w = math.ceil(cut_w / n)
    patch_h = int(patch_w * hole_aspect)
    ny = math.ceil(cut_h / patch_h)
    ratio = np.sqrt(1 - lam)
    hole_w = min(max(int(patch_w * ratio), 1), patch_w - 1)
    hole_h = min(max(int(patch_h * ratio), 1), patch_h - 1)
    mask = np.zeros((height, width))
    for i in range(n + 1):
        for j in range(ny + 1):
            x1, y1 = min(patch_w * i, cut_w), min(patch_h * j, cut_h)
            x2, y2 = min(x1 + hole_w, cut_w), min(y1 + hole_h, cut_h)
            mask[y0 + y1 : y0 + y2, x0 + x1 : x0 + x2] = 1
    return mask


@pytest.mark.parametrize("sizes", [(32, 32), (24, 40)])
def test_the_holes_are_openmixups(sizes):
    rng = np.random.default_rng(0)
    count = 300
    drawn = {
        "n_holes": rng.integers(2, 7, count).astype("float32"),
        "hole_aspect_ratio": rng.uniform(0.5, 2.0, count).astype("float32"),
        "cut_area_ratio": rng.uniform(0.5, 1.0, count).astype("float32"),
        "cut_aspect_ratio": rng.uniform(0.5, 2.0, count).astype("float32"),
        "place": rng.uniform(0, 1, (count, 2)).astype("float32"),
    }
    lam = rng.uniform(0, 1, count).astype("float32")
    image = tf.zeros((count, *sizes, 1))
    with backend.using_tensorflow():
        grid, kept = gridmix.grids(
            sizes,
            tf.constant(lam),
            **{k: tf.constant(v) for k, v in drawn.items()},
        )
        holes = gridmix.in_grid(image, grid, 4, (1, 2))
    holes = np.broadcast_to(holes.numpy(), image.shape)[..., 0]
    compared = 0
    for i in range(count):
        args = [drawn[k][i] for k in drawn]
        cut_w = int(np.sqrt(int(sizes[0] * sizes[1] * args[2]) / args[3]))
        if cut_w > sizes[1] or int(cut_w * args[3]) > sizes[0]:
            continue  # past the border in OpenMixup, clipped here
        if int(math.ceil(cut_w / args[0]) * args[1]) < 1:
            continue  # OpenMixup divides by a cell height of 0
        expected = _openmixup_mask(*sizes, lam[i], int(args[0]), *args[1:])
        np.testing.assert_array_equal(holes[i], expected, err_msg=str(i))
        compared += 1
    assert compared > 50, compared
    np.testing.assert_allclose(
        kept.numpy(), 1 - holes.mean(axis=(1, 2)), atol=1e-6
    )


def _runs(line):
    """`(start, length)` of each run of True in a 1-D bool array."""
    padded = np.r_[False, line, False].astype(int)
    starts = np.flatnonzero(np.diff(padded) == 1)
    ends = np.flatnonzero(np.diff(padded) == -1)
    return starts, ends - starts


@pytest.mark.parametrize("mode", ["elem", "batch"])
def test_the_holes_are_periodic_and_labels_weigh_the_pixels_kept(mode):
    x = _index_images(64, (32, 40), channels=2)
    mixer = keras_mixup.GridMix(num_classes=64, mode=mode, seed=3)
    images, labels = mixer(x, np.arange(64))
    own = np.all(images.numpy() == x, axis=-1)
    np.testing.assert_allclose(
        np.diag(labels.numpy()), own.mean(axis=(1, 2)), atol=1e-6
    )
    moved = ~own
    checked = 0
    for mask in moved[moved.any(axis=(1, 2))]:
        rows, cols = mask.any(axis=1), mask.any(axis=0)
        # One condition per axis: the mask is the product of the two.
        np.testing.assert_array_equal(mask, np.outer(rows, cols))
        for line in (rows, cols):
            starts, lengths = _runs(line)
            # Holes of one size (the last may be cut by the region's
            # border), one period apart.
            assert np.all(lengths[:-1] == lengths[0]), lengths
            assert lengths[-1] <= lengths[0]
            assert len(set(np.diff(starts))) <= 1, starts
        checked += 1
    assert checked > 10
    if mode == "batch":
        moved = moved[moved.any(axis=(1, 2))]
        assert np.all(moved == moved[:1])


def test_hole_sides_are_sqrt_one_minus_lam_of_the_cell():
    lam = tf.constant([0.0, 0.19, 0.75, 0.96, 1.0])
    drawn = {
        "n_holes": tf.fill([5], 4.0),
        "hole_aspect_ratio": tf.ones([5]),
        "cut_area_ratio": tf.ones([5]),
        "cut_aspect_ratio": tf.ones([5]),
        "place": tf.zeros([5, 2]),
    }
    with backend.using_tensorflow():
        grid, kept = gridmix.grids((40, 40), lam, **drawn)
    np.testing.assert_array_equal(grid["period"].numpy(), np.full((5, 2), 10))
    # floor(10 * sqrt(1 - lam)), at least 1 and at most 9 pixels.
    np.testing.assert_array_equal(grid["hole"].numpy()[:, 0], [9, 9, 5, 2, 1])
    np.testing.assert_allclose(
        kept.numpy(), 1 - (4 * np.array([9, 9, 5, 2, 1])) ** 2 / 1600
    )


def test_n_holes_are_drawn_uniformly_in_the_range():
    mixer = keras_mixup.Mixup(
        variant="gridmix",
        gridmix_n_holes=(2, 4),
        gridmix_cut_area_ratio=1.0,
        gridmix_cut_aspect_ratio=1.0,
        seed=1,
    )
    with backend.using_tensorflow():
        grid, _ = gridmix.draw_grids(
            (64, 64),
            tf.fill([3000], 0.5),
            tf.constant([1, 2]),
            mixer.engine.options,
        )
    np.testing.assert_array_equal(grid["extent"].numpy(), 64)
    # Cells of ceil(64 / n): 32, 22 and 16 pixels for n = 2, 3, 4.
    cells, counts = np.unique(grid["period"].numpy(), return_counts=True)
    np.testing.assert_array_equal(cells, [16, 22, 32])
    assert stats.chisquare(counts // 2).pvalue > 0.01


@pytest.mark.parametrize(
    "shape, options",
    [
        ((6, 3, 16, 12), {"data_format": "channels_first"}),
        ((6, 4, 16, 12, 2), {}),  # a video: one grid on every frame
        ((6, 16, 12), {"axes": (1, 2)}),
    ],
)
def test_layouts_keep_the_exact_label_weights(shape, options):
    x = np.arange(1, 7, dtype="float32").reshape(
        [6] + [1] * (len(shape) - 1)
    ) * np.ones(shape, "float32")
    mixer = keras_mixup.GridMix(num_classes=6, seed=4, **options)
    images, labels = mixer(x, np.arange(6))
    own = images.numpy() == x
    fractions = own.reshape(6, -1).mean(axis=1)
    np.testing.assert_allclose(np.diag(labels.numpy()), fractions, atol=1e-6)
    assert fractions.min() < 1


def test_the_fused_and_plain_pastes_agree():
    x = _index_images(8, (24, 16), channels=3)
    ds = tf.data.Dataset.from_tensor_slices((x, np.arange(8))).batch(8)
    fused, plain = (
        next(iter(ds.map(keras_mixup.GridMix(num_classes=8, seed=5, fused=f))))
        for f in (True, False)
    )
    for a, b in zip(fused, plain, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_masks_follow_and_labels_are_needed():
    # Boxes refused: variants_protocol_test.py, for every variant without
    # a box rule.
    x = _index_images(6, (16, 16))
    masks = np.arange(6).reshape(6, 1, 1, 1) * np.ones(x.shape, "int32")
    mixer = keras_mixup.GridMix(num_classes=6, seed=1)
    out = mixer(
        {"images": x, "labels": np.arange(6), "segmentation_masks": masks}
    )
    np.testing.assert_array_equal(
        out["segmentation_masks"].numpy() + 1, out["images"].numpy()
    )
    layer = keras_mixup.MixupLayer(variant="gridmix")
    with pytest.raises(ValueError, match="grid's complement is not a grid"):
        layer(x, training=True)  # no labels: the inputs-only form


def test_configs_round_trip():
    mixer = keras_mixup.GridMix(
        alpha=0.5, n_holes=3, cut_area_ratio=(0.6, 0.9), num_classes=3
    )
    config = mixer.get_config()
    assert config["n_holes"] == [3, 3]
    assert config["cut_area_ratio"] == [0.6, 0.9]
    assert config["hole_aspect_ratio"] == [1.0, 1.0]
    again = keras_mixup.GridMix.from_config(config)
    assert again.get_config() == config and again.n_holes == (3, 3)
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(mixer)
    )
    assert isinstance(restored, keras_mixup.GridMix)
    assert restored.get_config() == config


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: keras_mixup.GridMix(n_holes=0), "`n_holes` must be an int"),
        (lambda: keras_mixup.GridMix(n_holes=(4, 2)), "lo <= hi"),
        (lambda: keras_mixup.GridMix(n_holes=2.5), "received 2.5"),
        (
            lambda: keras_mixup.GridMix(cut_area_ratio=1.5),
            r"`cut_area_ratio` must be a finite number > 0 and <= 1",
        ),
        (
            lambda: keras_mixup.GridMix(hole_aspect_ratio=(-1, 1)),
            "`hole_aspect_ratio` must be",
        ),
        (
            lambda: keras_mixup.GridMix(cut_aspect_ratio=(1, 2, 3)),
            "`cut_aspect_ratio` must be",
        ),
        (
            lambda: keras_mixup.Mixup(variant="cutmix", gridmix_n_holes=3),
            "`gridmix_n_holes`, which only the gridmix variant",
        ),
        (lambda: keras_mixup.GridMix(mix_labels=False), "unknown option"),
    ],
)
def test_bad_options_are_named(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_other_than_two_cut_axes_are_refused():
    mixer = keras_mixup.GridMix(num_classes=4, axes=(1,))
    with pytest.raises(ValueError, match="variant=.gridmix. cuts two"):
        mixer(np.ones((4, 16, 3), "float32"), np.arange(4))
