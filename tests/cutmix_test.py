"""CutMix and the mixup/CutMix switch, in tf.data.

What a user relies on: a cut image holds its own pixels outside one box and
its partner's inside; its labels weigh exactly the pixels it keeps
(`correct_lam=True`) or the drawn lam; the boxes follow the paper's rule
(checked against a direct simulation) or `minmax`; the switch picks CutMix
with `switch_prob`; every element form, data format, video, nested inputs
and batch size; fused and unfused pastes agree; XLA; saved configs; bad
input named.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import (
    CUTMIX_OPTION_NAMES,
    decode_cuts,
    decode_identity_rows,
    index_images,
    shared_result,
)
from scipy import stats

import keras_mixup
from keras_mixup import options, variants
from keras_mixup.engine import MixingEngine


def _map(mixer, *arrays, batch):
    ds = tf.data.Dataset.from_tensor_slices(arrays).batch(batch)
    return list(ds.map(mixer))


def _check_labels(images, labels, *, axes=(1, 2), own=None):
    """Each label row puts the kept fraction on the image's own class and
    the rest on its partner's (`own`: each image's index, by default its
    position)."""
    own = np.arange(len(images)) if own is None else np.asarray(own)
    kept, partner, _ = decode_cuts(images, axes, own)
    labels = np.asarray(labels)
    rows = np.arange(len(labels))
    expected = np.zeros_like(labels)
    expected[rows, partner] += 1 - kept
    expected[rows, own] += kept
    np.testing.assert_allclose(labels, expected, atol=1e-6)
    return kept, partner


@pytest.mark.parametrize("mode", ["elem", "batch"])
@pytest.mark.parametrize("fused", [True, False])
def test_cut_images_hold_one_box_and_labels_weigh_the_pixels_kept(mode, fused):
    x = index_images(16, 12, 20, 3)
    cutmix_fn = keras_mixup.CutMix(
        alpha=1.0, num_classes=16, mode=mode, fused=fused, seed=3
    )
    kept_all = []
    for images, labels in _map(cutmix_fn, x, np.arange(16), batch=16)[:1]:
        kept, _ = _check_labels(images, labels)
        kept_all.append(kept)
        _, _, boxes = decode_cuts(images)
        shown = [b for b in boxes if b is not None]
        if mode == "batch":
            assert all(b == shown[0] for b in shown), boxes
        else:
            assert len({str(b) for b in shown}) > 1
    assert 0 < np.mean(kept_all) < 1


def test_uint8_images_stay_uint8_and_the_switch_returns_floats():
    x = index_images(8, dtype="uint8")
    images, labels = keras_mixup.CutMix(num_classes=8, seed=1)(x, np.arange(8))
    assert images.dtype == tf.uint8
    _check_labels(images, labels)
    switch = keras_mixup.Mixup(alpha=1.0, num_classes=8, cutmix_alpha=1.0)
    assert switch(x, np.arange(8))[0].dtype == tf.float32


def _kept_fractions(mixer, size=16, batches=8, batch=250):
    x = index_images(batch, size, size)
    fractions = []
    for _ in range(batches):
        images, _ = mixer(x, np.arange(batch, dtype="float32")[:, None])
        fractions.append(decode_cuts(images)[0])
    return np.concatenate(fractions)


def _simulated_kept(alpha, size, count, rng):
    """The box rule written out: side sqrt(1 - lam) rounded, centre
    uniform over the pixels, clipped at the border."""
    lam = rng.beta(alpha, alpha, count)
    length = np.round(np.sqrt(1 - lam)[:, None] * size)
    start = rng.integers(0, size, (count, 2)) - np.floor(length / 2)
    lows = np.clip(start, 0, size)
    highs = np.clip(start + length, 0, size)
    return 1 - np.prod(highs - lows, axis=1) / size**2


@pytest.mark.parametrize("alpha", [1.0, 0.4])
def test_kept_fractions_follow_the_box_rule(alpha):
    mixer = keras_mixup.CutMix(alpha=alpha, seed=11)
    observed = _kept_fractions(mixer)
    # A row paired with itself shows no box: simulate only moved rows'
    # rule, and compare the draws of rows that show one.
    simulated = _simulated_kept(alpha, 16, 20000, np.random.default_rng(0))
    pvalue = stats.ks_2samp(observed[observed < 1], simulated[simulated < 1])
    assert pvalue.pvalue > 1e-3, pvalue


def test_minmax_draws_side_fractions_in_range_inside_the_image():
    mixer = keras_mixup.CutMix(minmax=(0.25, 0.5), seed=2)
    x = index_images(64, 16, 16)
    images, labels = mixer(x, np.eye(64, dtype="float32"))
    kept, partner, boxes = decode_cuts(images)
    sides = np.array([np.subtract(b[1], b[0]) for b in boxes if b is not None])
    assert sides.min() >= 4 and sides.max() <= 8, sides
    assert len(np.unique(sides)) > 2
    _check_labels(images, labels)


def test_correct_lam_false_weighs_labels_by_the_drawn_lam():
    x = index_images(64, 16, 16)
    y = np.eye(64, dtype="float32")
    exact = keras_mixup.CutMix(seed=5)(x, y)
    drawn = keras_mixup.CutMix(seed=5, correct_lam=False)(x, y)
    np.testing.assert_array_equal(exact[0], drawn[0])  # the same boxes
    kept, partner, _ = decode_cuts(drawn[0])
    moved = partner != np.arange(64)
    lam = np.diag(drawn[1])[moved]
    # Unclipped, the box's side is sqrt(1 - lam) * 16 rounded: area within
    # rounding of 1 - lam; clipped, the drawn lam keeps less than kept.
    assert np.all(lam <= kept[moved] + 17 / 256), (lam, kept[moved])
    assert np.mean(np.abs(lam - kept[moved]) > 1e-6) > 0.2
    # The exact form puts the kept fraction there.
    np.testing.assert_allclose(np.diag(exact[1])[moved], kept[moved], 1e-6)


def test_the_switch_picks_cutmix_with_switch_prob_per_example():
    switch = keras_mixup.Mixup(
        alpha=1.0, cutmix_alpha=1.0, switch_prob=0.3, num_classes=4, seed=4
    )
    x = index_images(400, 8, 8)
    images = switch(x, np.zeros(400, "int32"))[0].numpy()
    distinct = np.array([len(np.unique(image)) for image in images])
    integral = np.all(images == np.round(images), axis=(1, 2, 3))
    cut = distinct == 2
    blended = (distinct == 1) & ~integral
    share = cut.sum() / (cut.sum() + blended.sum())
    assert abs(share - 0.3) < 4 * np.sqrt(0.3 * 0.7 / 360), share


def test_the_switch_is_one_choice_per_batch_in_batch_mode():
    switch = keras_mixup.Mixup(
        alpha=1.0,
        cutmix_alpha=1.0,
        switch_prob=0.5,
        mode="batch",
        num_classes=8,
        seed=6,
    )
    x = index_images(8, 8, 8)
    # One trace for the 60 draws (the seeds advance in a variable, so the
    # draws are the eager calls' own, at a fraction of their CPU).
    mix = tf.function(lambda: switch(x, np.arange(8)))
    kinds = []
    for _ in range(60):
        images, labels = mix()
        images = images.numpy()
        if np.all(images == np.round(images)):
            _check_labels(images, labels)  # CutMix, the same box for all
            kinds.append("cut")
        else:
            lam, partner = decode_identity_rows(labels, range(8), 1e-5)
            lam = lam[partner != np.arange(8)]
            np.testing.assert_allclose(lam, lam[0], atol=1e-6)
            kinds.append("mixup")
    assert 15 <= kinds.count("cut") <= 45, kinds.count("cut")


def test_prob_leaves_batches_unmixed_with_the_switch():
    switch = keras_mixup.Mixup(
        alpha=1.0, cutmix_alpha=1.0, prob=0.5, num_classes=8, seed=8
    )
    x = index_images(8, 4, 4)
    mix = tf.function(lambda: switch(x, np.arange(8))[0])  # one trace
    untouched = sum(np.array_equal(mix(), x) for _ in range(60))
    assert 15 <= untouched <= 45, untouched


def test_element_forms_weights_and_nested_inputs_share_the_label_weight():
    x = {"image": index_images(8), "meta": np.eye(8, dtype="float32")}
    weights = np.arange(1, 9, dtype="float32")
    mixed, labels, mixed_weights = keras_mixup.CutMix(num_classes=8, seed=1)(
        x, np.arange(8), weights
    )
    kept, partner = _check_labels(mixed["image"], labels)
    lam, meta_partner = decode_identity_rows(mixed["meta"], np.arange(8))
    np.testing.assert_allclose(lam, kept, atol=1e-6)
    moved = partner != np.arange(8)
    np.testing.assert_array_equal(meta_partner[moved], partner[moved])
    np.testing.assert_allclose(
        mixed_weights, kept * weights + (1 - kept) * weights[partner], 1e-6
    )
    element = {"images": index_images(8), "labels": np.arange(8)}
    out = _map(keras_mixup.CutMix(num_classes=8, seed=1), element, batch=8)
    _check_labels(out[0]["images"], out[0]["labels"])


@pytest.mark.parametrize(
    "shape, options, axes",
    [
        ((6, 3, 10, 12), {"data_format": "channels_first"}, (2, 3)),
        ((6, 4, 10, 12, 2), {}, (2, 3)),  # video: one box for every frame
        ((6, 10, 12), {"axes": (1, 2)}, (1, 2)),
        ((6, 40), {"axes": (1,)}, (1,)),
        ((6, 10, 12, 2), {"axes": (2, 1)}, (1, 2)),  # any order
        ((6, 4, 10, 12, 2), {"axes": (1, 2, 3)}, (1, 2, 3)),  # space-time
    ],
)
def test_data_formats_videos_and_axes(shape, options, axes):
    x = (np.arange(6).reshape((-1,) + (1,) * (len(shape) - 1))) * np.ones(
        shape, "float32"
    )
    images, labels = keras_mixup.CutMix(num_classes=6, seed=2, **options)(
        x, np.arange(6)
    )
    _check_labels(images, labels, axes=axes)


@pytest.mark.parametrize("shape", [(4, 8, 8), (4, 2, 2, 2, 2, 2)])
def test_ranks_without_image_axes_need_axes(shape):
    with pytest.raises(ValueError, match="pass `axes`"):
        keras_mixup.CutMix(num_classes=4)(np.ones(shape), np.arange(4))


@pytest.mark.parametrize("size", [1, 3, 4, 7])
def test_any_batch_size_in_tf_data(size):
    # 13 examples: a smaller last batch (13 = 3 * 4 + 1 for size 4).
    batches = _map(
        keras_mixup.CutMix(num_classes=13, seed=1),
        index_images(13),
        np.arange(13),
        batch=size,
    )
    start = 0
    for images, labels in batches:
        own = range(start, start + len(images))
        _check_labels(images, labels, own=own)
        start += len(images)
    assert start == 13
    single = keras_mixup.CutMix(num_classes=13, seed=1)
    images, labels = single(index_images(1), np.zeros(1, "int32"))
    np.testing.assert_array_equal(images, index_images(1))
    np.testing.assert_array_equal(labels, np.eye(13)[:1])
    images, labels = single(index_images(0), np.zeros(0, "int32"))
    assert images.shape == (0, 16, 16, 1) and labels.shape == (0, 13)


def test_the_fused_and_plain_pastes_agree_on_one_draw():
    # The switch on a hand-built draw: examples 0, 2 and 3 are CutMix
    # (choice 1), example 1 is mixup with lam 0.7.
    x = index_images(4, 6, 8, 2) + np.linspace(0, 0.5, 2).astype("float32")
    lam = tf.constant([0.5, 0.7, 0.2, 0.9])
    boxes = {
        "lows": tf.constant([[0, 0], [1, 1], [2, 5], [0, 0]]),
        "highs": tf.constant([[3, 4], [2, 2], [6, 8], [0, 0]]),
    }
    draw = variants.Draw(
        lam,
        tf.constant([1, 0, 3, 2]),
        {
            "choice": tf.constant([1, 0, 1, 1]),
            "lams": [lam, lam],
            "members": [{}, boxes],
        },
    )
    mixed = {}
    for fused in (True, False):
        engine = MixingEngine(cutmix_alpha=1.0, fused=fused)

        @tf.function
        def run(x, engine=engine):
            return engine.apply(draw, x)[0]

        mixed[fused] = run(tf.constant(x)).numpy()
    np.testing.assert_array_equal(mixed[True], mixed[False])
    expected = x.copy()
    expected[0, 0:3, 0:4] = x[1, 0:3, 0:4]
    expected[1] = 0.7 * x[1] + 0.3 * x[0]
    expected[2, 2:6, 5:8] = x[3, 2:6, 5:8]
    np.testing.assert_allclose(mixed[False], expected, atol=1e-6)


def test_under_xla_in_a_tf_function():
    mixer = keras_mixup.CutMix(num_classes=8, seed=1)
    step = tf.function(lambda x, y: mixer(x, y), jit_compile=True)
    images, labels = step(index_images(8), tf.range(8))
    _check_labels(images, labels)


def test_mixed_precision_in_the_layer_dict_form():
    keras.config.set_dtype_policy("mixed_float16")
    layer = keras_mixup.MixupLayer(cutmix_alpha=1.0, switch_prob=1.0, seed=1)
    out = layer({"images": index_images(8), "labels": np.eye(8, dtype="f4")})
    assert out["images"].dtype == tf.float16
    assert out["labels"].dtype == tf.float32
    _check_labels(out["images"], out["labels"])


def test_configs_round_trip():
    cut = keras_mixup.CutMix(
        alpha=0.5, num_classes=3, minmax=(0.2, 0.6), axes=(1, 2), seed=1
    )
    config = keras.saving.serialize_keras_object(cut)
    again = keras.saving.deserialize_keras_object(config)
    assert isinstance(again, keras_mixup.CutMix)
    assert again.get_config() == cut.get_config()
    assert again.minmax == (0.2, 0.6) and again.axes == (1, 2)
    switch = keras_mixup.Mixup(cutmix_alpha=1.0, switch_prob=0.3)
    again = keras_mixup.Mixup.from_config(switch.get_config())
    assert again.cutmix_alpha == 1.0 and again.switch_prob == 0.3
    assert "minmax=(0.2, 0.6)" in repr(cut)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: keras_mixup.CutMix(alpha=0.0), "`alpha` must be a finite"),
        (lambda: keras_mixup.CutMix(minmax=(0.0, 0.5)), "`minmax` must be"),
        (lambda: keras_mixup.CutMix(minmax=(0.5, 1.2)), "`minmax` must be"),
        (lambda: keras_mixup.CutMix(minmax=(0.6, 0.5)), "`minmax` must be"),
        (lambda: keras_mixup.CutMix(axes=(0, 1)), "`axes` must be"),
        (lambda: keras_mixup.CutMix(mix_labels=False), "unknown option"),
        (
            lambda: keras_mixup.CutMix(bounding_box_format="ltrb"),
            "`bounding_box_format` must be one of",
        ),
        (
            lambda: keras_mixup.Mixup(cutmix_alpha=-1.0),
            "`cutmix_alpha` must be a finite",
        ),
        (
            lambda: keras_mixup.Mixup(cutmix_alpha=1.0, switch_prob=1.5),
            r"`switch_prob` must be a number in \[0, 1\] \(the probability "
            "of CutMix",
        ),
        (
            lambda: keras_mixup.Mixup(cutmix_alpha=1.0, mix_labels=False),
            "a CutMix box's complement is not a box",
        ),
        (
            lambda: keras_mixup.mix_with(
                tf.data.Dataset.from_tensors((index_images(2), [0, 1])),
                tf.data.Dataset.from_tensors(index_images(2)),
                cutmix_alpha=1.0,
            ),
            r"\['cutmix'\] need\(s\) the labels \(`mix_labels=True`",
        ),
        (
            lambda: keras_mixup.MixupModel(
                keras.Sequential([keras.Input((4,)), keras_mixup.MixupLayer()]),
                cutmix_alpha=1.0,
                mix_at="latent",
            ),
            'mix_at="input"',
        ),
    ],
)
def test_bad_options_are_named(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_the_layer_refuses_cutmix_without_labels_and_says_why():
    layer = keras_mixup.MixupLayer(cutmix_alpha=1.0)
    with pytest.raises(ValueError, match="symmetric under swapping"):
        layer(index_images(4), training=True)


def test_mix_with_cutmixes_with_a_partner_dataset():
    x = index_images(8)
    ds = tf.data.Dataset.from_tensor_slices((x[:4], np.eye(8)[:4])).batch(4)
    partners = tf.data.Dataset.from_tensor_slices((x[4:], np.eye(8)[4:]))
    mixed = keras_mixup.mix_with(
        ds,
        partners.batch(4),
        alpha=1.0,
        cutmix_alpha=1.0,
        switch_prob=1.0,
        mix_labels=True,
        seed=1,
    )
    images, labels = next(iter(mixed))
    kept, partner, _ = decode_cuts(images, own=range(4))
    assert np.all(partner >= 4) and np.all(kept < 1)
    np.testing.assert_allclose(np.diag(labels.numpy()[:, :4]), kept, 1e-6)
    np.testing.assert_allclose(labels.numpy()[range(4), partner], 1 - kept)


def test_cutmix_options_are_declared_by_the_cutmix_variant():
    declared = tuple(o.name for o in variants.REGISTRY["cutmix"].options)
    assert declared == tuple(
        n for n in CUTMIX_OPTION_NAMES if n in options.OPTIONS and n in declared
    )
    assert set(CUTMIX_OPTION_NAMES) <= set(options.OPTIONS)


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_cutmix_in_tf_data_under_another_keras_backend(request, backend):
    # A tf.data map is TensorFlow whatever the backend: CutMix, the switch
    # and keras's dict with masks and boxes feed a JAX or PyTorch model
    # (tf_data_backend_scenarios.py, in that backend's scenario chain).
    found = shared_result(request, backend, "cutmix_in_tf_data")
    np.testing.assert_allclose(
        found["own_label"], found["own_fraction"], atol=1e-6
    )
    assert min(found["own_fraction"]) < 1  # something was cut
    assert found["masks_follow_images"]
    assert found["boxes_shape"] == [8, 2, 4]
    assert found["switch_images_dtype"] == "float32"
    assert found["switch_labels_shape"] == [8, 8]
