"""Property-based tests of the mixing core (`mixing`, `pairing`).

For random shapes, dtypes and nested structures: every output row is
lam * x_i + (1 - lam) * x_partner within the dtype's rounding; an example
paired with itself comes back bit for bit; random partners form a
permutation; mixed labels are convex combinations (non-negative, summing to
1) and sample weights stay between the two weights they blend.
"""

import engine_helpers
import numpy as np
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from keras_mixup import blending, pairing
from keras_mixup.labels import encode_labels

SETTINGS = settings(max_examples=30, deadline=None, derandomize=True)
FLOAT_DTYPES = ["float16", "bfloat16", "float32", "float64"]
INT_DTYPES = ["uint8", "int32"]
# Relative rounding of one blend: a few ulps of the result's dtype.
EPS = {
    "float16": 2.0**-10,
    "bfloat16": 2.0**-7,
    "float32": 2.0**-22,
    "float64": 2.0**-50,
}
# Absolute rounding near zero. TensorFlow's CPU kernels flush denormals to
# zero (bfloat16 and float16 are blended in float32), so a result below the
# smallest normal number may come back as 0.
TINY = {
    "float16": 2.0**-24,
    "bfloat16": 2.0**-126,
    "float32": 2.0**-126,
    "float64": 2.0**-1022,
}


@st.composite
def batches(draw, min_size=1, max_size=8):
    """A batch size, a nested structure of batch-first tensors of random
    dtypes and shapes (numpy values exactly representable in their dtype),
    a float32 lam per example or a scalar lam, and a partner index."""
    size = draw(st.integers(min_size, max_size))

    def leaf():
        dtype = draw(st.sampled_from(FLOAT_DTYPES + INT_DTYPES))
        inner = draw(hnp.array_shapes(min_dims=0, max_dims=3, max_side=4))
        if dtype in INT_DTYPES:
            high = 255 if dtype == "uint8" else 10**6
            values = draw(
                hnp.arrays(
                    "int64", (size, *inner), elements=st.integers(0, high)
                )
            )
        else:
            values = draw(
                hnp.arrays(
                    "float64",
                    (size, *inner),
                    elements=st.floats(-1e4, 1e4, allow_nan=False),
                )
            )
        return tf.cast(tf.constant(values), dtype)

    structure = draw(
        st.recursive(
            st.just(None),
            lambda children: st.one_of(
                st.lists(children, min_size=1, max_size=3).map(tuple),
                st.dictionaries(
                    st.sampled_from("abc"), children, min_size=1, max_size=3
                ),
            ),
            max_leaves=4,
        )
    )
    x = tf.nest.map_structure(lambda _: leaf(), structure)
    if draw(st.booleans()):
        lam = draw(
            hnp.arrays("float32", (size,), elements=st.floats(0, 1, width=32))
        )
    else:
        lam = np.float32(draw(st.floats(0, 1, width=32)))
    if draw(st.booleans()):
        partner = np.array(draw(st.permutations(range(size))), "int32")
    else:
        partner = draw(
            hnp.arrays("int32", (size,), elements=st.integers(0, size - 1))
        )
    return size, x, lam, partner


def as_float64(tensor):
    return tf.cast(tensor, tf.float64).numpy()


@SETTINGS
@given(batches())
def test_blend_is_lam_x_plus_one_minus_lam_x_partner(batch):
    size, x, lam, partner = batch
    mixed = blending.blend(x, tf.constant(lam), tf.constant(partner))
    tf.nest.assert_same_structure(mixed, x)
    for leaf, out in zip(
        tf.nest.flatten(x), tf.nest.flatten(mixed), strict=True
    ):
        dtype = leaf.dtype.name if leaf.dtype.is_floating else "float32"
        assert out.dtype.name == dtype and out.shape == leaf.shape
        values = as_float64(leaf)
        lam_rows = np.reshape(lam, [-1] + [1] * (values.ndim - 1)).astype(
            "float64"
        )
        expected = lam_rows * values + (1 - lam_rows) * values[partner]
        scale = np.maximum(np.abs(values), np.abs(values[partner]))
        error = np.abs(as_float64(out) - expected)
        bound = 4 * EPS[dtype] * scale + 4 * TINY[dtype]
        assert (error <= bound).all(), (dtype, error.max())
        # An example paired with itself comes back bit for bit.
        own = partner == np.arange(size)
        if leaf.dtype.is_floating and own.any():
            np.testing.assert_array_equal(as_float64(out)[own], values[own])


@SETTINGS
@given(st.integers(0, 64), st.integers(0, 2**31 - 2), st.integers(0, 2**31 - 2))
def test_random_partners_form_a_permutation(size, seed_a, seed_b):
    index = pairing.partner_index("random", size, tf.constant([seed_a, seed_b]))
    assert index.dtype == tf.int32 and index.shape == (size,)
    assert sorted(index.numpy().tolist()) == list(range(size))


@st.composite
def labelled_batches(draw):
    size = draw(st.integers(1, 12))
    num_classes = draw(st.integers(2, 6))
    lam = draw(
        hnp.arrays("float32", (size,), elements=st.floats(0, 1, width=32))
    )
    partner = np.array(draw(st.permutations(range(size))), "int32")
    smoothing = draw(st.sampled_from([0.0, 0.1, 0.3]))
    if draw(st.booleans()):
        labels = draw(
            hnp.arrays(
                "int32", (size,), elements=st.integers(0, num_classes - 1)
            )
        )
    else:
        weights = draw(
            hnp.arrays(
                "float64",
                (size, num_classes),
                elements=st.floats(0.01, 1.0),
            )
        )
        labels = (weights / weights.sum(1, keepdims=True)).astype("float32")
    sample_weight = draw(
        hnp.arrays("float32", (size,), elements=st.floats(0, 10, width=32))
    )
    return num_classes, labels, sample_weight, lam, partner, smoothing


@SETTINGS
@given(labelled_batches())
def test_mixed_labels_are_convex_combinations(batch):
    num_classes, labels, sample_weight, lam, partner, smoothing = batch
    x = tf.eye(len(lam))
    _, y, weight = engine_helpers.mix_batch(
        x,
        tf.constant(labels),
        tf.constant(sample_weight),
        tf.constant(lam),
        tf.constant(partner),
        num_classes=num_classes,
        label_smoothing=smoothing,
    )
    y = y.numpy().astype("float64")
    assert y.shape == (len(lam), num_classes)
    assert y.min() >= 0
    np.testing.assert_allclose(y.sum(1), 1.0, atol=1e-6)
    encoded = encode_labels(tf.constant(labels), num_classes, smoothing).numpy()
    lam64 = lam.astype("float64")[:, None]
    expected = lam64 * encoded + (1 - lam64) * encoded[partner]
    np.testing.assert_allclose(y, expected, atol=1e-6)
    # Sample weights blend the same way and stay between the two weights.
    weight = weight.numpy().astype("float64")
    low = np.minimum(sample_weight, sample_weight[partner]) - 1e-5
    high = np.maximum(sample_weight, sample_weight[partner]) + 1e-5
    assert ((weight >= low) & (weight <= high)).all()
