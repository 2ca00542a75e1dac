"""Tests of the mixing core with injected lam and partners: exact values."""

import engine_helpers
import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_mixup import blending, checks
from keras_mixup.labels import encode_labels

LAM = tf.constant([0.25, 0.5, 1.0, 0.0])
PARTNER = tf.constant([1, 0, 3, 2])


def expected_blend(x, lam=LAM, partner=PARTNER):
    x = np.asarray(x, np.float64)
    lam = np.asarray(lam, np.float64).reshape([-1] + [1] * (x.ndim - 1))
    return lam * x + (1 - lam) * x[np.asarray(partner)]


def test_identity_rows_make_lam_and_partner_readable():
    mixed = blending.blend(tf.eye(4), LAM, PARTNER).numpy()
    np.testing.assert_array_equal(
        mixed,
        [
            [0.25, 0.75, 0, 0],  # lam 0.25 of row 0, 0.75 of partner 1
            [0.5, 0.5, 0, 0],  # lam 0.5 with partner 0
            [0, 0, 1, 0],  # lam 1: row 2 unchanged
            [0, 0, 1, 0],  # lam 0: row 3 becomes its partner, row 2
        ],
    )


@pytest.mark.parametrize("rank", [1, 2, 3, 4, 5])
def test_every_rank_is_blended_per_example(rank):
    rng = np.random.default_rng(rank)
    x = rng.normal(size=[4] + [2] * (rank - 1)).astype("float32")
    np.testing.assert_allclose(
        blending.blend(tf.constant(x), LAM, PARTNER),
        expected_blend(x),
        rtol=1e-6,
        atol=1e-6,
    )


def test_nested_structures_share_lam_and_partner():
    x = {
        "image": np.eye(4, dtype="float32").reshape(4, 2, 2),
        "pair": (np.arange(4, dtype="float32"), np.eye(4, dtype="float64")),
    }
    mixed = blending.blend(tf.nest.map_structure(tf.constant, x), LAM, PARTNER)
    assert set(mixed) == {"image", "pair"} and isinstance(mixed["pair"], tuple)
    np.testing.assert_allclose(mixed["image"], expected_blend(x["image"]))
    np.testing.assert_allclose(mixed["pair"][0], [0.75, 0.5, 2.0, 2.0])
    np.testing.assert_allclose(mixed["pair"][1], expected_blend(np.eye(4)))
    assert mixed["pair"][1].dtype == tf.float64


def test_scalar_lam_is_one_lam_for_the_batch():
    mixed = blending.blend(tf.eye(4), tf.constant(0.75), PARTNER).numpy()
    np.testing.assert_allclose(
        mixed, expected_blend(np.eye(4), lam=[0.75] * 4), rtol=1e-6
    )


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_float_inputs_keep_their_dtype(dtype):
    x = tf.cast(tf.eye(4), dtype)
    mixed = blending.blend(x, LAM, PARTNER)
    assert mixed.dtype == tf.as_dtype(dtype)
    np.testing.assert_allclose(
        tf.cast(mixed, "float32"), expected_blend(np.eye(4)), atol=1e-2
    )


@pytest.mark.parametrize("dtype", ["uint8", "int32", "int64"])
def test_integer_inputs_are_blended_in_the_keras_compute_dtype(dtype):
    x = tf.constant([[0, 255], [255, 0], [10, 20], [30, 40]], dtype)
    mixed = blending.blend(x, LAM, PARTNER)
    assert mixed.dtype == tf.float32
    np.testing.assert_allclose(mixed, expected_blend(x.numpy()), rtol=1e-6)
    keras.config.set_dtype_policy("mixed_bfloat16")
    assert blending.blend(x, LAM, PARTNER).dtype == tf.bfloat16


def test_an_example_paired_with_itself_is_returned_bit_exactly():
    x = tf.constant([[0.1, 1e30, -3.7e-20], [1 / 3, 2 / 3, 7.0]])
    mixed = blending.blend(x, tf.constant([0.3, 0.9]), tf.constant([0, 1]))
    np.testing.assert_array_equal(mixed, x)


def test_nan_in_the_inputs_is_passed_through_never_created():
    x = tf.constant([[np.nan, 1.0], [2.0, 3.0], [4.0, 5.0]])
    mixed = blending.blend(
        x, tf.constant([0.5, 0.5, 0.5]), tf.constant([0, 2, 1])
    ).numpy()
    assert np.isnan(mixed[0, 0]) and not np.isnan(mixed[1:]).any()


def test_integer_labels_are_one_hot_encoded():
    for labels in ([2, 0, 1, 1], [[2], [0], [1], [1]]):
        encoded = encode_labels(tf.constant(labels), 3)
        assert encoded.dtype == tf.float32
        np.testing.assert_array_equal(
            encoded, [[0, 0, 1], [1, 0, 0], [0, 1, 0], [0, 1, 0]]
        )


def test_float_labels_are_kept_as_they_are():
    soft = tf.constant([[0.2, 0.8], [1.0, 0.0]])
    np.testing.assert_array_equal(encode_labels(soft), soft)
    regression = tf.constant([1.5, -2.0], tf.float64)
    encoded = encode_labels(regression)
    assert encoded.dtype == tf.float64
    np.testing.assert_array_equal(encoded, regression)


def test_label_smoothing_categorical_and_binary():
    np.testing.assert_allclose(
        encode_labels(tf.constant([1, 0]), 4, label_smoothing=0.2),
        [[0.05, 0.85, 0.05, 0.05], [0.85, 0.05, 0.05, 0.05]],
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        encode_labels(tf.constant([[1.0], [0.0]]), label_smoothing=0.2),
        [[0.9], [0.1]],
        rtol=1e-6,
    )


def test_mix_batch_blends_labels_and_weights_with_the_same_lam_and_partner():
    x = tf.eye(4)
    y = tf.constant([0, 1, 2, 0])
    weight = tf.constant([1.0, 2.0, 3.0, 4.0])
    mixed_x, mixed_y, mixed_w = engine_helpers.mix_batch(
        x, y, weight, LAM, PARTNER, num_classes=3
    )
    np.testing.assert_allclose(mixed_x, expected_blend(np.eye(4)))
    np.testing.assert_allclose(
        mixed_y, expected_blend(np.eye(3)[[0, 1, 2, 0]]), rtol=1e-6
    )
    np.testing.assert_allclose(mixed_w, [1.75, 1.5, 3.0, 3.0])
    np.testing.assert_allclose(tf.reduce_sum(mixed_y, -1), 1.0, atol=1e-6)


def test_mix_batch_with_labels_kept():
    y = tf.constant([0, 1, 2, 0])
    _, kept, weight = engine_helpers.mix_batch(
        tf.eye(4), y, None, LAM, PARTNER, mix_labels=False
    )
    assert kept is y and weight is None


def test_integer_sample_weights_are_blended_as_floats():
    _, _, weight = engine_helpers.mix_batch(
        tf.eye(4), None, tf.constant([1, 2, 3, 4]), LAM, PARTNER
    )
    assert weight.dtype == tf.float32
    np.testing.assert_allclose(weight, [1.75, 1.5, 3.0, 3.0])


def test_integer_labels_need_num_classes():
    with pytest.raises(ValueError, match="need `num_classes`"):
        encode_labels(tf.constant([0, 1]))


def test_integer_labels_must_be_class_ids():
    with pytest.raises(ValueError, match=r"shape \[batch\] or \[batch, 1\]"):
        encode_labels(tf.constant([[0, 1], [1, 0]]), 2)


def test_labels_out_of_range_raise_at_run_time():
    # Eagerly a ValueError (as on every backend); in a graph, when it runs.
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        encode_labels(tf.constant([0, 3]), 3)
    traced = tf.function(lambda ids: encode_labels(ids, 3))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"\[0, 3\)"):
        traced(tf.constant([-1, 0]))


@pytest.mark.parametrize(
    "value, match",
    [
        (tf.constant(1.0), "rank >= 1"),
        (tf.constant(["a", "b"]), "must hold numbers"),
        (tf.constant([True, False]), "must hold numbers"),
        (tf.ragged.constant([[1.0], [2.0, 3.0]]), "RaggedTensor"),
        (tf.sparse.from_dense(tf.eye(2)), "SparseTensor"),
    ],
)
def test_unsupported_inputs_are_refused_by_name(value, match):
    with pytest.raises(ValueError, match=match):
        checks.check_structure({"pixels": value}, "x")
    with pytest.raises(ValueError, match=r"x\['pixels'\]"):
        checks.check_structure({"pixels": value}, "x")


def test_static_batch_sizes_must_match():
    with pytest.raises(ValueError, match=r"same batch size.*\[3, 4\]"):
        checks.batch_size(tf.zeros([4, 2]), (tf.zeros([3]),))


def test_dynamic_batch_sizes_must_match_at_run_time():
    @tf.function(
        input_signature=[
            tf.TensorSpec([None, 2]),
            tf.TensorSpec([None], tf.int32),
        ]
    )
    def size(x, y):
        return checks.batch_size(x, y)

    assert size(tf.zeros([3, 2]), tf.zeros([3], tf.int32)).numpy() == 3
    with pytest.raises(tf.errors.InvalidArgumentError, match="same batch"):
        size(tf.zeros([3, 2]), tf.zeros([4], tf.int32))


@pytest.mark.parametrize("value", [1, 0, -3, 2.0, True, "10"])
def test_invalid_num_classes(value):
    with pytest.raises(ValueError, match="`num_classes` must be an int >= 2"):
        checks.check_num_classes(value)


@pytest.mark.parametrize("value", [-0.1, 1.0, 1.5, "0.1", None])
def test_invalid_label_smoothing(value):
    with pytest.raises(
        ValueError, match=r"`label_smoothing` must be .*\[0, 1\)"
    ):
        checks.check_label_smoothing(value)


def test_infinities_of_an_example_paired_with_itself_come_back_unchanged():
    """inf - inf is NaN: the formula alone would turn the infinities of an
    unmixed example into NaN. Equal values are returned as they are, in
    every float dtype and under XLA; a blend of distinct values is still
    the formula (NaN where it mixes inf with -inf, as the maths says)."""
    rows = [[np.inf, -np.inf, 1.0, np.nan], [np.inf, np.inf, 2.0, 0.0]]
    for dtype in ("float16", "bfloat16", "float32", "float64"):
        x = tf.constant(rows, dtype)
        for jit in (False, True) if dtype == "float32" else (False,):
            blend = tf.function(blending.blend, jit_compile=jit)
            mixed = blend(x, tf.constant([1.0, 0.3]), tf.constant([0, 1]))
            assert mixed.dtype == x.dtype
            np.testing.assert_array_equal(
                tf.cast(mixed, tf.float64), tf.cast(x, tf.float64)
            )
            mixed = blend(x, tf.constant([0.5, 0.5]), tf.constant([1, 0]))
            mixed = tf.cast(mixed, tf.float64).numpy()
            assert mixed[0, 0] == mixed[1, 0] == np.inf
            assert np.isnan(mixed[:, 1]).all() and np.isnan(mixed[:, 3]).all()
            np.testing.assert_allclose(mixed[:, 2], 1.5)


# --------------------------------------------------------------------------
# Gradients: row j of the input receives lam[j] * g[j] from its own output
# and (1 - lam[i]) * g[i] from every output i it is the partner of.


def expected_input_grad(upstream, lam, partner):
    upstream = np.asarray(upstream, np.float64)
    lam = np.asarray(lam, np.float64).reshape([-1] + [1] * (upstream.ndim - 1))
    grad = lam * upstream
    for i, j in enumerate(np.asarray(partner)):
        grad[j] += ((1 - lam) * upstream)[i]
    return grad


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize(
    "partner",
    [
        [1, 0, 3, 2],  # a permutation: the inverse-permutation gather
        [1, 1, 1, 2],  # row 1 is the partner of three: the segment sum
    ],
)
def test_gradient_with_respect_to_the_inputs_and_lam(partner, fused):
    x = tf.constant(np.arange(24.0).reshape(4, 3, 2) ** 1.5, tf.float32)
    upstream = tf.constant(np.linspace(-1, 2, 24).reshape(4, 3, 2), "float32")
    partner = tf.constant(partner)

    @tf.function
    def grads(x, lam):
        with tf.GradientTape() as tape:
            tape.watch([x, lam])
            mixed = blending.blend(x, lam, partner, fused=fused)
        return tape.gradient(mixed, [x, lam], output_gradients=upstream)

    grad_x, grad_lam = grads(x, LAM)
    np.testing.assert_allclose(
        grad_x, expected_input_grad(upstream, LAM, partner), rtol=1e-6
    )
    difference = x.numpy() - x.numpy()[partner.numpy()]
    np.testing.assert_allclose(
        grad_lam,
        (upstream.numpy() * difference).reshape(4, -1).sum(axis=1),
        rtol=1e-5,
    )


def test_gradient_is_lam_and_one_minus_lam_even_where_values_are_equal():
    # The forward pass returns equal values as they are (inf-safe); the
    # gradient is still the blend's: lam to the example, 1 - lam to the
    # partner, for every pairing, so hidden states that happen to agree
    # (saturated units) are not credited to one side only.
    x = tf.constant([[2.0, 5.0], [2.0, 7.0]])
    lam = tf.constant([0.25, 0.75])
    partner = tf.constant([1, 0])
    with tf.GradientTape() as tape:
        tape.watch(x)
        mixed = blending.blend(x, lam, partner, fused=False)
    grad = tape.gradient(mixed, x)
    # Row 0 gets 0.25 from itself and 1 - 0.75 from row 1's output.
    np.testing.assert_allclose(grad, [[0.5, 0.5], [1.5, 1.5]])


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float64"])
def test_gradient_keeps_the_dtype_of_each_input(dtype):
    x = tf.cast(tf.reshape(tf.range(8.0), [4, 2]), dtype)
    labels = tf.cast(tf.one_hot([0, 1, 2, 0], 3), "float32")
    ids = tf.constant([3, 1, 2, 0])
    with tf.GradientTape() as tape:
        tape.watch([x, labels])
        mixed_x, mixed_labels, mixed_ids = blending.blend(
            [x, labels, ids], LAM, PARTNER
        )
        loss = tf.reduce_sum(tf.cast(mixed_x, "float32")) + tf.reduce_sum(
            mixed_labels * 2.0
        )
    grad_x, grad_labels = tape.gradient(loss, [x, labels])
    assert grad_x.dtype == dtype and grad_labels.dtype == tf.float32
    # Every output row sums to one unit of each input row in total: lam +
    # (1 - lam) over the permutation's pairs.
    np.testing.assert_allclose(
        tf.cast(grad_x, "float32"),
        expected_input_grad(np.ones([4, 2]), LAM, PARTNER),
    )
    np.testing.assert_allclose(
        grad_labels, expected_input_grad(2 * np.ones([4, 3]), LAM, PARTNER)
    )
    assert mixed_ids.dtype == tf.float32
