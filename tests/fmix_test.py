"""FMix, in tf.data and through the engine (the contract test runs it on
every backend, in the model, under XLA and `jax.jit`).

What a user relies on: an FMix'd image holds its own pixels where its
low-frequency field is largest and its partner's elsewhere; exactly
round(lam * H * W) pixels are its own and the labels weigh exactly those;
the kept fraction follows Beta(alpha, alpha) (Beta(alpha + 1, alpha) for
the inputs-only form); the masks are low-frequency; per batch one mask;
videos, channels first, one and three cut axes; XLA; configs; bad input
named.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import BACKENDS, shared_result
from scipy import stats

import keras_mixup
from keras_mixup import backend, blending
from keras_mixup.variants import fmix


def _index_images(batch, shape=(32, 32), channels=1):
    """Images filled with their own index (1-based, so no value is 0)."""
    index = np.arange(1, batch + 1, dtype="float32")
    index = index.reshape([batch] + [1] * (len(shape) + 1))
    return index * np.ones((batch, *shape, channels), "float32")


def _own(images, x):
    """Whether each pixel holds its own example's value, over channels."""
    return np.all(images == x, axis=-1)


def test_exactly_round_lam_hw_positions_are_kept_where_the_field_is_largest():
    with backend.using_tensorflow():
        fields = fmix.low_frequency_fields(
            64, [12, 20], 3.0, tf.constant([3, 4])
        )
        lam = tf.random.stateless_uniform([64], [5, 6])
        own, kept = fmix.top_mask(fields, lam)
    fields, lam, own = fields.numpy(), lam.numpy(), own.numpy()
    count = np.round(lam * 240).astype(int)
    np.testing.assert_array_equal(own.sum(axis=(1, 2)), count)
    np.testing.assert_allclose(kept.numpy(), count / 240, atol=1e-7)
    for field, mask, k in zip(fields, own, count, strict=True):
        largest = np.sort(field.ravel())[::-1][:k]
        np.testing.assert_array_equal(np.sort(field[mask])[::-1], largest)


def test_lam_zero_and_one_keep_nothing_and_everything():
    with backend.using_tensorflow():
        fields = fmix.low_frequency_fields(2, [8, 8], 3.0, tf.constant([1, 1]))
        own, kept = fmix.top_mask(fields, tf.constant([0.0, 1.0]))
    np.testing.assert_array_equal(own.numpy().sum(axis=(1, 2)), [0, 64])
    np.testing.assert_array_equal(kept.numpy(), [0.0, 1.0])


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0])
def test_kept_fractions_follow_beta_and_labels_weigh_them(alpha):
    x = _index_images(1000)
    y = np.arange(1000)
    mixer = keras_mixup.FMix(alpha=alpha, num_classes=1000, seed=7)
    images, labels = mixer(x, y)
    own = _own(images.numpy(), x).mean(axis=(1, 2))
    np.testing.assert_allclose(np.diag(labels.numpy()), own, atol=1e-6)
    counts = own * 1024
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-3)
    # Each kept count is round(lam * 1024): a grid of 1/1024 on Beta.
    assert stats.kstest(own, stats.beta(alpha, alpha).cdf).pvalue > 0.01


def test_the_inputs_only_form_draws_lam_from_beta_alpha_plus_one():
    x = _index_images(1000)
    mixer = keras_mixup.FMix(alpha=1.0, mix_labels=False, seed=3)
    images, labels = mixer(x, np.arange(1000))
    np.testing.assert_array_equal(labels.numpy(), np.arange(1000))
    own = _own(images.numpy(), x).mean(axis=(1, 2))
    assert stats.kstest(own, stats.beta(2.0, 1.0).cdf).pvalue > 0.01
    assert stats.kstest(own, stats.beta(1.0, 1.0).cdf).pvalue < 1e-6


def _low_power(masks, cutoff):
    """The fraction of each mask's power (its mean removed) at spatial
    frequencies of at most `cutoff` cycles per pixel, for the masks that
    keep between 10% and 90% of the pixels."""
    kept = masks.mean(axis=(1, 2))
    masks = masks[(kept > 0.1) & (kept < 0.9)]
    masks = masks - masks.mean(axis=(1, 2), keepdims=True)
    power = np.abs(np.fft.fft2(masks)) ** 2
    fy = np.fft.fftfreq(masks.shape[1])[:, None]
    fx = np.fft.fftfreq(masks.shape[2])[None]
    low = np.hypot(fy, fx) <= cutoff
    return (power * low).sum(axis=(1, 2)) / power.sum(axis=(1, 2))


def test_the_masks_power_sits_at_low_frequencies():
    # Measured (200 masks of 32x32 at lam 0.5): 87% of the power below
    # 1/8 cycle per pixel on average (at least 78%); the same pixels
    # shuffled, 5% (at most 8%). The hard edges hold the rest.
    x = _index_images(200)
    mixer = keras_mixup.FMix(alpha=1.0, num_classes=200, seed=11)
    images, _ = mixer(x, np.arange(200))
    masks = _own(images.numpy(), x).astype("float64")
    kept = masks.mean(axis=(1, 2))
    masks = masks[(kept > 0.1) & (kept < 0.9)]
    rng = np.random.default_rng(0)
    shuffled = np.stack([rng.permutation(m.ravel()) for m in masks])
    shuffled = shuffled.reshape(masks.shape)
    fmix_low, random_low = _low_power(masks, 1 / 8), _low_power(shuffled, 1 / 8)
    assert fmix_low.mean() > 0.8 and fmix_low.min() > 0.6, fmix_low.min()
    assert random_low.mean() < 0.1 and random_low.max() < 0.2
    # A larger decay power gives smoother masks.
    smooth = keras_mixup.FMix(decay_power=5.0, num_classes=200, seed=11)
    rough = keras_mixup.FMix(decay_power=1.0, num_classes=200, seed=11)
    got = [
        _low_power(_own(m(x, np.arange(200))[0].numpy(), x) * 1.0, 1 / 8)
        for m in (smooth, rough)
    ]
    assert got[0].mean() > got[1].mean() + 0.1


def test_batch_mode_draws_one_mask_for_the_batch():
    x = _index_images(8)
    mixer = keras_mixup.FMix(mode="batch", num_classes=8, seed=2)
    images, labels = mixer(x, np.arange(8))
    own = _own(images.numpy(), x)
    mixed = own[~own.all(axis=(1, 2))]  # not paired with itself
    assert len(mixed) >= 2 and np.all(mixed == mixed[:1])
    np.testing.assert_allclose(
        np.diag(labels.numpy()), own.mean(axis=(1, 2)), atol=1e-6
    )


@pytest.mark.parametrize(
    "shape, options, axes",
    [
        ((6, 3, 16, 12), {"data_format": "channels_first"}, (2, 3)),
        ((6, 4, 16, 12, 2), {}, (2, 3)),  # a video: one mask every frame
        ((6, 40, 3), {"axes": (1,)}, (1,)),  # a sequence, one axis
        ((6, 4, 8, 10, 2), {"axes": (1, 2, 3)}, (1, 2, 3)),
        ((6, 8, 10), {"axes": (2, 1)}, (2, 1)),  # axes in any order
    ],
)
def test_layouts_keep_the_exact_label_weights(shape, options, axes):
    x = np.arange(1, 7, dtype="float32").reshape(
        [6] + [1] * (len(shape) - 1)
    ) * np.ones(shape, "float32")
    mixer = keras_mixup.FMix(num_classes=6, seed=4, **options)
    images, labels = mixer(x, np.arange(6))
    own = images.numpy() == x
    others = tuple(a for a in range(1, len(shape)) if a not in axes)
    if others:
        # Every position along the cut axes is wholly own or partner's.
        assert np.all(own.all(axis=others) == own.any(axis=others))
        own = own.all(axis=others)
    fractions = own.reshape(6, -1).mean(axis=1)
    np.testing.assert_allclose(np.diag(labels.numpy()), fractions, atol=1e-6)
    assert 0 < fractions.mean() < 1


def test_the_mask_builds_under_xla_and_the_fused_paste_agrees():
    # The whole step under XLA (the Beta sampler included) is the
    # contract test's; here the mask's build alone, and the paste.
    @tf.function(jit_compile=True)
    def build(seed, lam):
        with backend.using_tensorflow():
            fields = fmix.low_frequency_fields(8, [24, 16], 3.0, seed)
            return fmix.top_mask(fields, lam)

    lam = tf.linspace(0.0, 1.0, 8)
    own, kept = build(tf.constant([1, 2]), lam)
    counts = np.round(lam.numpy() * 384)
    np.testing.assert_array_equal(own.numpy().sum(axis=(1, 2)), counts)
    np.testing.assert_allclose(kept.numpy(), counts / 384, atol=1e-7)
    x = _index_images(8, (24, 16), channels=3)
    fused, plain = (
        keras_mixup.FMix(num_classes=8, seed=5, fused=flag)
        for flag in (True, False)
    )
    ds = tf.data.Dataset.from_tensor_slices((x, np.arange(8))).batch(8)
    for a, b in zip(
        *(next(iter(ds.map(m))) for m in (fused, plain)), strict=True
    ):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_segmentation_masks_follow_the_pixels():
    # Boxes refused: variants_protocol_test.py, for every variant without
    # a box rule.
    x = _index_images(6, (16, 16))
    masks = tf.constant(np.arange(6).reshape(6, 1, 1, 1) * np.ones(x.shape))
    mixer = keras_mixup.FMix(num_classes=6, seed=1)
    out = mixer(
        {
            "images": x,
            "labels": np.arange(6),
            "segmentation_masks": tf.cast(masks, "int32"),
        }
    )
    assert out["segmentation_masks"].dtype == tf.int32
    np.testing.assert_array_equal(
        out["segmentation_masks"].numpy() + 1, out["images"].numpy()
    )


def test_mix_with_a_partner_batch_pads_the_draw():
    x = _index_images(4)
    partner = _index_images(4) + 10
    mixer = keras_mixup.Mixup(variant="fmix", alpha=1.0, num_classes=20)
    images, labels, _ = mixer.mix(
        x, np.arange(4), partner_x=partner, partner_y=np.arange(10, 14)
    )
    own = _own(images.numpy(), x).mean(axis=(1, 2))
    np.testing.assert_allclose(np.diag(labels.numpy()[:, :4]), own, atol=1e-6)
    assert np.all(np.isin(images.numpy(), np.r_[x.ravel(), partner.ravel()]))


def test_configs_round_trip_and_the_repr_names_the_options():
    mixer = keras_mixup.FMix(alpha=0.5, decay_power=2.0, num_classes=3)
    config = mixer.get_config()
    assert config["decay_power"] == 2.0 and config["alpha"] == 0.5
    assert "variant" not in config and "fmix_alpha" not in config
    again = keras_mixup.FMix.from_config(config)
    assert again.get_config() == config
    assert "decay_power=2.0" in repr(again)
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(mixer)
    )
    assert isinstance(restored, keras_mixup.FMix)
    both = keras_mixup.Mixup(
        variant={"mixup": 0.5, "fmix": 0.5}, fmix_alpha=1.0, fmix_decay_power=4
    )
    assert keras_mixup.Mixup.from_config(both.get_config()).get_config() == (
        both.get_config()
    )


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: keras_mixup.FMix(decay_power=0.0), "`decay_power` must be"),
        (lambda: keras_mixup.FMix(decay_power="3"), "`decay_power` must be"),
        (lambda: keras_mixup.FMix(alpha=-1.0), "`alpha` must be"),
        (lambda: keras_mixup.FMix(fmix_alpha=1.0), "unknown option"),
        (
            lambda: keras_mixup.Mixup(fmix_decay_power=2.0),
            "`fmix_decay_power`, which only the fmix variant",
        ),
        (
            lambda: keras_mixup.Mixup(variant="cutmix", fmix_alpha=1.0),
            "`fmix_alpha`, which only the fmix variant",
        ),
        (
            lambda: keras_mixup.Mixup(variant="fmix", fmix_alpha=0.0),
            "`fmix_alpha` must be",
        ),
    ],
)
def test_bad_options_are_named(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_fmix_alpha_is_its_own_in_a_choice():
    x = _index_images(1000)
    mixer = keras_mixup.Mixup(
        variant={"mixup": 0.0, "fmix": 1.0},
        alpha=0.1,
        fmix_alpha=2.0,
        num_classes=10,
    )
    images, _ = mixer(x, np.arange(1000) % 10)
    own = _own(images.numpy(), x).mean(axis=(1, 2))
    assert stats.kstest(own, stats.beta(2.0, 2.0).cdf).pvalue > 0.01


@pytest.mark.parametrize("select", ["_radix_threshold", "_bisection_threshold"])
def test_the_radix_select_finds_each_rows_exact_kth_largest_value(select):
    # Rows that a sampled bracket or a float histogram gets wrong: values
    # of both signs, ties (integers), a tiny spread (1e-30), -0.0 and 0.0,
    # and every count from none to all; the radix select and the
    # bisection of short rows alike.
    rng = np.random.default_rng(0)
    flat = rng.normal(size=(8, 999)).astype("float32")
    flat[1] = np.round(flat[1] * 2)
    flat[2] *= 1e-30
    flat[3] = np.abs(flat[3]) + 1e6
    flat[4, :500] = -0.0
    flat[4, 500:] = 0.0
    count = np.array([1, 300, 500, 999, 0, 7, 998, 2], "int32")
    with backend.using_tensorflow():
        found = getattr(fmix, select)(tf.constant(flat), tf.constant(count))
    for row, k, value in zip(flat, count, found.numpy()[:, 0], strict=True):
        if k:
            assert value == np.sort(row)[::-1][k - 1], (k, value)
    # A field of 136 x 136 positions (the size of the tf.data batches the
    # benchmarks use): exact counts, the largest values kept.
    with backend.using_tensorflow():
        fields = fmix.low_frequency_fields(
            6, [136, 136], 3.0, tf.constant([8, 9])
        )
        lam = tf.constant([0.0, 0.05, 0.3, 0.5, 0.9, 1.0])
        own, _ = fmix.top_mask(fields, lam)
    flat, own = fields.numpy().reshape(6, -1), own.numpy().reshape(6, -1)
    count = np.round(lam.numpy() * flat.shape[1]).astype(int)
    np.testing.assert_array_equal(own.sum(axis=1), count)
    for row, mask, k in zip(flat, own, count, strict=True):
        np.testing.assert_array_equal(
            np.sort(row[mask]), np.sort(row)[len(row) - k :]
        )


def test_the_band_keeps_the_low_frequencies_where_they_hold_the_field():
    # K = 21: the coefficients of index above 21 hold under 1e-3 of the
    # field's RMS at decay 3 (the sum left out falls as K ** -4).
    assert fmix.band((224, 224), 3.0) == (43, 43)
    assert fmix.band((8, 224, 224), 3.0) == (8, 47, 47)  # frames whole
    assert fmix.band((224, 224), 5.0) == (9, 9)
    # Small images, slow decays: no gain, the whole field.
    assert fmix.band((64, 64), 3.0) is None
    assert fmix.band((224, 224), 2.0) is None
    assert fmix.band((224, 224), 1.0) is None


def test_band_masks_follow_beta_and_the_labels_count_their_pixels():
    # 128x128 at decay 3: the field made on a 43x43 band, upsampled, its
    # top round(lam * n) pixels kept exactly (from a bracket of the grid's
    # values); the power of the masks as the whole field's (see the guide).
    x = _index_images(600, (128, 128))
    mixer = keras_mixup.FMix(alpha=1.0, num_classes=600, seed=8)
    images, labels = mixer(x, np.arange(600))
    masks = _own(images.numpy(), x)
    own = masks.mean(axis=(1, 2))
    np.testing.assert_allclose(np.diag(labels.numpy()), own, atol=1e-6)
    assert stats.kstest(own, stats.beta(1.0, 1.0).cdf).pvalue > 0.01
    low = _low_power(masks.astype("float64"), 1 / 8)
    assert low.mean() > 0.9 and low.min() > 0.8, low.min()


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_backend_upsamples_the_band_exactly(request, backend):
    # tests/variant_backend_scenarios.py: on 128x128 from a 43x43 band.
    result = shared_result(request, backend, "fmix_band")
    assert result["field_error"] < 1e-5, result
    assert result["count_error"] == 0.0, result
    assert result["lam_error"] == 0.0, result
    assert result["numbers"][0] == result["numbers"][1], result
    assert result["top_rows_off"] == 0, result
    assert result["ends"] == [0.0, 1.0], result


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_backend_pastes_fmix_bit_for_bit_with_where_gradients(
    request, backend
):
    # spatial.select (FMix's paste: on TensorFlow and JAX the values'
    # bits) against keras.ops.where, NaN, infinities and -0.0 included.
    same, gradients = shared_result(request, backend, "fmix_band")["select"]
    assert same == ["float16", "float32", "bfloat16", "uint8", "int32"]
    assert gradients


def test_the_bracket_select_is_exact_with_ties_and_a_grid_far_off():
    # Fields whose grid is their own first 1849 values (the bracket near
    # the threshold), then rows the bracket gets wrong: integer values
    # (ties at the threshold: the first in position order are kept), and
    # a grid far from its field (the radix select takes over).
    rng = np.random.default_rng(3)
    flat = rng.normal(size=(6, 5000)).astype("float32")
    coarse = flat[:, :1849].copy()
    flat[4] = np.round(flat[4] * 3)
    coarse[5] += 40.0
    lam = np.array([0.0, 1.0, 0.37, 0.0003, 0.5, 0.81], "float32")
    count = np.round(lam * 5000).astype(int)
    # One XLA compile for both batches (same shapes): the batch as it is,
    # then its easy rows only (rows 0 and 1 again in place of the hard).
    exact_top = blending.xla_compiled(fmix._tile_top)
    for rows in (np.arange(6), np.array([0, 1, 2, 3, 0, 1])):
        with backend.using_tensorflow():
            own, number = exact_top(
                tf.constant(flat[rows]),
                tf.constant(coarse[rows]),
                tf.constant(lam[rows]),
            )
        np.testing.assert_array_equal(number.numpy(), count[rows])
        for row, mask, k in zip(
            flat[rows], own.numpy(), count[rows], strict=True
        ):
            top = np.zeros(len(row), bool)
            top[np.argsort(-row, kind="stable")[:k]] = True
            np.testing.assert_array_equal(mask, top)


def test_the_tile_select_pads_rows_and_keeps_its_sizes_across_shapes():
    # Rows of 5000, then 3001 values (not a multiple of the runs of 8:
    # padded with -inf), through the same XLA function: its relaxed
    # retracing hides the row length, which the static sizes give.
    select = blending.xla_compiled(fmix._tile_top)
    for trial, total in enumerate((5000, 3001, 5000)):
        rng = np.random.default_rng(10 + trial)
        flat = rng.normal(size=(5, total)).astype("float32")
        coarse = flat[:, :1849].copy()
        lam = np.array([0.0, 1.0, 0.37, 0.5, 0.999], "float32")
        count = np.round(lam * total).astype(int)
        with backend.using_tensorflow():
            own, number = select(
                tf.constant(flat),
                tf.constant(coarse),
                tf.constant(lam),
                (total, 1849),
            )
        np.testing.assert_array_equal(number.numpy(), count)
        for row, mask, k in zip(flat, own.numpy(), count, strict=True):
            top = np.zeros(total, bool)
            top[np.argsort(-row, kind="stable")[:k]] = True
            np.testing.assert_array_equal(mask, top)
