"""Tests for the cheap `knn_features` (`MeanPool`, `CountSketch`) and the
precision of the exact nearest-neighbour distances."""

import inspect
import re

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import nearest_sets
from sklearn.datasets import load_digits

import keras_mixup
from keras_mixup import pairing

FEATURES = (pairing.MeanPool, pairing.CountSketch)


# ------------------------------------------------------------ exact values


def test_mean_pool_averages_contiguous_blocks_zero_padded():
    # 5 features, zero-padded to 2 blocks of 3: [0 1 2 | 3 4 0].
    x = np.arange(10, dtype="float32").reshape(2, 5)
    np.testing.assert_allclose(
        pairing.MeanPool(dim=2)(x), [[1.0, 7.0 / 3], [6.0, 17.0 / 3]]
    )
    # Nested inputs are flattened and concatenated first.
    nested = {"a": x[:, :2], "b": x[:, 2:]}
    np.testing.assert_allclose(
        pairing.MeanPool(dim=2)(nested), pairing.MeanPool(dim=2)(x)
    )


def test_count_sketch_sends_feature_i_to_i_mod_dim_with_its_sign():
    sketch = pairing.CountSketch(dim=3, seed=5)
    signs = sketch.signs(7)
    assert set(np.unique(signs)) <= {-1.0, 1.0}
    np.testing.assert_array_equal(signs, sketch.signs(7))  # deterministic
    # One-hot rows: feature i lands in bucket i mod 3 with its sign.
    expected = np.zeros((7, 3), "float32")
    expected[np.arange(7), np.arange(7) % 3] = signs
    np.testing.assert_array_equal(sketch(np.eye(7, dtype="float32")), expected)
    assert not np.array_equal(
        pairing.CountSketch(dim=3, seed=6).signs(64), sketch.signs(64)
    )


@pytest.mark.parametrize("make", FEATURES)
def test_features_at_least_as_wide_as_the_input_give_the_exact_partners(
    make,
):
    # Integer-valued inputs: every distance is exact in float32, so the
    # padded (pool) or signed (sketch) copy ranks neighbours identically.
    rng = np.random.default_rng(0)
    x = rng.integers(0, 50, (24, 6)).astype("float32")
    for seed in range(5):
        exact = pairing.partner_index(
            "knn", 24, tf.constant([seed, 1]), inputs=x, knn_k=3
        )
        cheap = pairing.partner_index(
            "knn",
            24,
            tf.constant([seed, 1]),
            inputs=x,
            knn_k=3,
            knn_features=make(dim=8),
        )
        np.testing.assert_array_equal(cheap, exact)


def test_float64_in_float64_out_and_no_gradient():
    x = tf.constant(np.ones((2, 4)), tf.float64)
    for make in FEATURES:
        assert make(dim=2)(x).dtype == tf.float64
        variable = tf.Variable(tf.ones((2, 4)))
        with tf.GradientTape() as tape:
            out = tf.reduce_sum(make(dim=2)(variable))
        assert tape.gradient(out, variable) is None


# ------------------------------------------------------- neighbour quality


def test_cheap_features_find_mostly_the_exact_neighbours_on_digits():
    digits = load_digits().data[:256].astype("float32")  # 64 features
    exact = nearest_sets(digits, 5)
    chance = 5 / 255
    # Measured with these seeds: MeanPool(16) 0.66, CountSketch(16) 0.60,
    # CountSketch(32) 0.76 of the 5 exact nearest found, against 0.02 for
    # random partners.
    for make, floor in (
        (lambda: pairing.MeanPool(dim=16), 0.6),
        (lambda: pairing.CountSketch(dim=16, seed=0), 0.55),
        (lambda: pairing.CountSketch(dim=32, seed=0), 0.7),
    ):
        found = nearest_sets(make()(digits).numpy(), 5)
        pairs = zip(exact, found, strict=True)
        overlap = np.mean([len(a & b) / 5 for a, b in pairs])
        assert overlap >= floor > 20 * chance, (make(), overlap)


def test_knn_pairing_draws_among_the_k_nearest_in_feature_space():
    digits = load_digits().data[:64].astype("float32")
    sketch = pairing.CountSketch(dim=16, seed=0)
    allowed = nearest_sets(sketch(digits).numpy(), 3)
    seen = [set() for _ in allowed]
    for seed in range(12):
        index = pairing.partner_index(
            "knn",
            64,
            tf.constant([seed, 0]),
            inputs=digits,
            knn_k=3,
            knn_features=sketch,
        ).numpy()
        for i, j in enumerate(index):
            assert j in allowed[i]
            seen[i].add(j)
    assert np.mean([len(s) for s in seen]) > 2.5  # uniform among the 3


# ------------------------------------------------ graphs, data, serialising


@pytest.mark.parametrize("make", FEATURES)
def test_static_shapes_xla_and_tf_data(make):
    features = make(dim=4)

    @tf.function(input_signature=[tf.TensorSpec([None, 3, 2])])
    def dynamic_batch(x):
        out = features(x)
        assert out.shape.as_list() == [None, 4]
        return out

    x = tf.reshape(tf.range(30, dtype=tf.float32), [5, 3, 2])
    np.testing.assert_allclose(dynamic_batch(x), features(x), rtol=1e-6)

    @tf.function(jit_compile=True)
    def compiled(x, seed):
        return pairing.partner_index(
            "knn", 5, seed, inputs=x, knn_k=2, knn_features=features
        )

    index = compiled(x, tf.constant([1, 2])).numpy()
    assert index.shape == (5,) and np.all(index != np.arange(5))

    mixup = keras_mixup.Mixup(
        alpha=1.0,
        num_classes=2,
        pairing="knn",
        knn_k=2,
        knn_features=features,
        seed=0,
    )
    dataset = tf.data.Dataset.from_tensor_slices((x, tf.range(5) % 2)).batch(5)
    mixed, labels = next(iter(dataset.map(lambda a, b: mixup(a, b))))
    assert mixed.shape == (5, 3, 2) and labels.shape == (5, 2)


def test_config_round_trips_through_mixup():
    for features in (
        pairing.MeanPool(dim=12),
        pairing.CountSketch(dim=24, seed=3),
    ):
        mixup = keras_mixup.Mixup(
            alpha=0.2, num_classes=3, pairing="knn", knn_features=features
        )
        config = mixup.get_config()
        restored = keras_mixup.Mixup.from_config(config)
        assert restored.knn_features == features
        assert restored.knn_features is not features
        assert restored.get_config() == config
        again = keras.saving.deserialize_keras_object(
            keras.saving.serialize_keras_object(mixup)
        )
        assert again.knn_features == features
        assert repr(features) in repr(mixup)
    assert pairing.CountSketch(8, 1) != pairing.CountSketch(8, 2)
    assert pairing.MeanPool(8) != pairing.CountSketch(8)


# ------------------------------------------------------------------- errors


@pytest.mark.parametrize("dim", [0, -2, 2.5, True, "8", None])
@pytest.mark.parametrize("make", FEATURES)
def test_bad_dim(make, dim):
    with pytest.raises(
        ValueError, match=f"`dim` must be an int >= 1.*received {dim!r}"
    ):
        make(dim=dim)


@pytest.mark.parametrize("seed", [-1, 1.5, True, "0", None])
def test_bad_sketch_seed(seed):
    with pytest.raises(
        ValueError, match=f"`seed` must be an int >= 0; received {seed!r}"
    ):
        pairing.CountSketch(dim=8, seed=seed)


@pytest.mark.parametrize("make", FEATURES)
def test_unknown_feature_size_is_refused_at_trace_time(make):
    features = make(dim=4)
    traced = tf.function(
        features, input_signature=[tf.TensorSpec([None, None])]
    )
    with pytest.raises(
        ValueError,
        match=f"`{make.__name__}` needs inputs with a static feature size",
    ):
        traced.get_concrete_function()


# -------------------------------------------------- exact-path precision


def test_exact_knn_is_exact_far_from_the_origin():
    # 1e5 + small gaps: |x|^2 ~ 1e10 would swamp the gaps in float32
    # without centring; the distances are centred on one example.
    positions = np.array([0, 1, 3, 7, 15, 31, 63, 127], "float32")
    x = np.stack([positions + 1e5, np.full(8, -3e5, "float32")], 1)
    nearest = nearest_sets(positions[:, None], 1)
    index = pairing.partner_index(
        "knn", 8, tf.constant([0, 1]), inputs=x, knn_k=1
    ).numpy()
    assert [{j} for j in index] == nearest
    partners = x[[6, 2]]  # 63 and 3, far from the origin too
    index = pairing.partner_index(
        "knn",
        8,
        tf.constant([0, 1]),
        inputs=x,
        partner_inputs=partners,
        knn_k=1,
    ).numpy()
    np.testing.assert_array_equal(index, [9, 9, 9, 9, 9, 9, 8, 8])


# ---------------------------------------------------------- docstrings

_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)
EXAMPLES = [
    pytest.param(block, id=f"{name}[{i}]")
    for cls in FEATURES
    for name, obj in [(cls.__name__, cls)]
    + [
        (f"{cls.__name__}.{attr}", member)
        for attr, member in vars(cls).items()
        if not attr.startswith("_") and inspect.isfunction(member)
    ]
    for i, block in enumerate(_BLOCK.findall(inspect.getdoc(obj) or ""))
]


def test_every_feature_class_has_an_example():
    assert {p.id.split("[")[0] for p in EXAMPLES} >= {
        c.__name__ for c in FEATURES
    }


@pytest.mark.parametrize("source", EXAMPLES)
def test_docstring_example_runs(source):
    namespace = {"keras_mixup": keras_mixup, "keras": keras, "np": np, "tf": tf}
    exec(compile(source, "<docstring>", "exec"), namespace)
