"""Tests for the pairing strategies and their use through `Mixup`."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import decode_identity_rows, nearest_sets

import keras_mixup
from keras_mixup import pairing

# 1-D positions with strictly growing gaps: every example has a unique
# ordering of neighbours, so the k nearest are exact.
POSITIONS = np.array([0, 1, 3, 7, 15, 31, 63, 127], "float32")


def _draw(name, seed, **kwargs):
    return pairing.partner_index(
        name, kwargs.pop("batch_size"), tf.constant([seed, 7]), **kwargs
    ).numpy()


# --------------------------------------------------------------- same_class


def test_same_class_partners_share_the_class_and_are_not_themselves():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, size=48)
    counts = np.bincount(labels, minlength=5)
    for seed in range(20):
        index = _draw("same_class", seed, batch_size=48, labels=labels)
        assert index.dtype == np.int32 and index.shape == (48,)
        np.testing.assert_array_equal(labels[index], labels)
        alone = counts[labels] == 1
        np.testing.assert_array_equal(index == np.arange(48), alone)


def test_same_class_draws_uniformly_among_classmates():
    labels = np.array([0, 1, 0, 1, 0, 2, 0])  # class 0: rows 0, 2, 4, 6
    partners = np.array(
        [
            _draw("same_class", s, batch_size=7, labels=labels)[0]
            for s in range(300)
        ]
    )
    assert set(partners) == {2, 4, 6}
    # Each of the three classmates has probability 1/3: 100 +- 3 sd (8.2).
    for member in (2, 4, 6):
        assert abs(np.sum(partners == member) - 100) < 25


@pytest.mark.parametrize(
    "labels",
    [
        np.array([2, 0, 2, 1, 0, 1]),  # ids [B]
        np.array([[2], [0], [2], [1], [0], [1]]),  # ids [B, 1]
        np.eye(3, dtype="float32")[[2, 0, 2, 1, 0, 1]],  # one-hot
        np.array(
            [
                [0.1, 0.2, 0.7],
                [0.8, 0.1, 0.1],
                [0, 0.4, 0.6],  # soft
                [0.2, 0.5, 0.3],
                [0.6, 0.3, 0.1],
                [0.1, 0.8, 0.1],
            ],
            "float32",
        ),
    ],
    ids=["ids", "ids_column", "one_hot", "soft"],
)
def test_same_class_label_forms(labels):
    classes = np.array([2, 0, 2, 1, 0, 1])
    index = _draw("same_class", 3, batch_size=6, labels=labels)
    np.testing.assert_array_equal(index, [2, 4, 0, 5, 1, 3])
    np.testing.assert_array_equal(classes[index], classes)


def test_same_class_float_binary_labels_are_rounded():
    labels = np.array([0.9, 0.1, 1.0, 0.0], "float32")
    index = _draw("same_class", 1, batch_size=4, labels=labels)
    np.testing.assert_array_equal(index, [2, 3, 0, 1])


def test_singleton_class_comes_back_bit_exact_through_mixup():
    x = np.random.default_rng(1).normal(size=(5, 3)).astype("float32")
    y = np.array([0, 0, 1, 2, 2])  # class 1 has one member
    mixup = keras_mixup.Mixup(
        alpha=1.0, num_classes=3, pairing="same_class", seed=4
    )
    mixed_x, mixed_y = mixup(x, y)
    np.testing.assert_array_equal(mixed_x[2], x[2])
    assert not np.array_equal(mixed_x.numpy(), x)
    # Partners share the class, so one-hot labels come back unchanged.
    np.testing.assert_array_equal(mixed_y, np.eye(3)[y])


# -------------------------------------------------------------------- knn


@pytest.mark.parametrize("k", [1, 2, 3])
def test_knn_partners_are_among_the_k_nearest(k):
    nearest = nearest_sets(POSITIONS[:, None], k)
    seen = [set() for _ in POSITIONS]
    for seed in range(40):
        index = _draw(
            "knn", seed, batch_size=8, inputs=POSITIONS[:, None], knn_k=k
        )
        for i, j in enumerate(index):
            assert j in nearest[i], (i, j, nearest[i])
            seen[i].add(j)
    # The draw is uniform among the k: all of them turn up in 40 draws.
    assert seen == nearest


def test_knn_k_is_clamped_to_batch_size_minus_one():
    seen = set()
    for seed in range(60):
        index = _draw(
            "knn", seed, batch_size=4, inputs=POSITIONS[:4, None], knn_k=100
        )
        assert np.all(index != np.arange(4))
        seen.add(index[0])
    assert seen == {1, 2, 3}


def knn_partners(**kwargs):
    """The partner `Mixup(pairing="knn", knn_k=1)` gives each example of a
    nested batch at POSITIONS, read back from an identity-row leaf."""
    inputs = {
        "id": np.eye(8, dtype="float32"),
        "position": POSITIONS[:, None],
        "noise": np.zeros((8, 2, 2), "float32"),
    }
    mixup = keras_mixup.Mixup(
        alpha=1.0, pairing="knn", knn_k=1, mix_labels=False, seed=0, **kwargs
    )
    mixed, _ = mixup(inputs, np.arange(8))
    lam, partner = decode_identity_rows(
        mixed["id"], np.arange(8), permutation=False
    )
    assert np.all(lam < 1), "every example has a partner"
    return partner


def test_knn_on_nested_inputs_and_on_knn_features():
    # On the flattened leaves (the identity rows add the same distance to
    # every pair): the nearest position, the one below but for 0.
    np.testing.assert_array_equal(knn_partners(), [1, 0, 1, 2, 3, 4, 5, 6])

    # Features 1 / (1 + position) shrink the gaps as positions grow: the
    # nearest neighbour becomes the one above but for the last.
    def shrinking_gaps(x):
        return 1.0 / (1.0 + x["position"])

    np.testing.assert_array_equal(
        knn_partners(knn_features=shrinking_gaps), [1, 2, 3, 4, 5, 6, 7, 6]
    )


def test_same_class_knn_partners_are_near_and_same_class():
    labels = np.array([0, 1, 0, 1, 0, 1, 0, 1])
    # Within class 0 (rows 0, 2, 4, 6): positions 0, 3, 15, 63.
    nearest_in_class = {
        0: {2},
        2: {0},
        4: {2},
        6: {4},
        1: {3},
        3: {1},
        5: {3},
        7: {5},
    }
    for seed in range(10):
        index = _draw(
            "same_class_knn",
            seed,
            batch_size=8,
            inputs=POSITIONS[:, None],
            labels=labels,
            knn_k=1,
        )
        for i, j in enumerate(index):
            assert j in nearest_in_class[i]
    # With k larger than a class, every classmate is reachable.
    seen = {
        _draw(
            "same_class_knn",
            s,
            batch_size=8,
            inputs=POSITIONS[:, None],
            labels=labels,
            knn_k=10,
        )[0]
        for s in range(40)
    }
    assert seen == {2, 4, 6}
    # A class of one pairs with itself.
    index = _draw(
        "same_class_knn",
        0,
        batch_size=3,
        inputs=POSITIONS[:3, None],
        labels=np.array([0, 1, 0]),
    )
    np.testing.assert_array_equal(index, [2, 1, 0])


# ------------------------------------------------------- every strategy


@pytest.mark.parametrize("name", sorted(pairing.PAIRINGS))
def test_batch_of_one_pairs_with_itself(name):
    index = _draw(
        name,
        0,
        batch_size=1,
        inputs=np.ones((1, 3), "float32"),
        labels=np.array([1.0], "float32"),
    )
    np.testing.assert_array_equal(index, [0])


def test_pairings_compile_with_xla_and_run_on_dynamic_batches():
    # Float 0/1 labels: classes for the same-class pairings (rounded),
    # targets for the label kernel.
    labels = tf.constant([0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0])
    inputs = tf.constant(POSITIONS[:, None])
    seed = tf.constant([1, 2])

    def draw(names):
        def fn(x, y, seed):
            return {
                name: pairing.partner_index(
                    name, tf.shape(x)[0], seed, inputs=x, labels=y, knn_k=2
                )
                for name in names
            }

        return fn

    # Under XLA, the two code paths: score matrix + argmax (same_class) and
    # distances + top_k (same_class_knn; knn is the same without the
    # mask, random the core's argsort). Compiling all four costs seconds.
    compiled = tf.function(
        draw(["same_class", "same_class_knn", "label_kernel"]),
        jit_compile=True,
    )
    dynamic = tf.function(
        draw(sorted(pairing.PAIRINGS)),
        input_signature=[
            tf.TensorSpec([None, 1]),
            tf.TensorSpec([None], tf.float32),
            tf.TensorSpec([2], tf.int32),
        ],
    )
    for indices in (
        compiled(inputs, labels, seed),
        dynamic(inputs, labels, seed),
    ):
        for name, index in indices.items():
            index = index.numpy()
            assert index.shape == (8,)
            assert np.all((index >= 0) & (index < 8))
            if name.startswith("same_class"):
                np.testing.assert_array_equal(labels.numpy()[index], labels)
            if name == "label_kernel":  # never itself
                assert np.all(index != np.arange(8))
            if name == "knn":
                allowed = nearest_sets(POSITIONS[:, None], 2)
                assert all(j in allowed[i] for i, j in enumerate(index))
    for index in dynamic(inputs[:3], labels[:3], seed).values():
        assert index.shape == (3,)


# ---------------------------------------------------- partner batches


def test_partner_batch_indices_point_into_the_concatenation():
    labels = np.array([0, 1, 2, 0, 1])
    partner_labels = np.array([1, 0, 1])
    x = POSITIONS[:5, None]
    partner_x = np.array([[2.0], [100.0], [14.0]], "float32")
    common = dict(
        batch_size=5,
        inputs=x,
        labels=labels,
        partner_inputs=partner_x,
        partner_labels=partner_labels,
    )
    # Random: a permutation of the 3 partner rows, cycled.
    index = _draw("random", 0, **common)
    assert sorted(index[:3]) == [5, 6, 7]
    np.testing.assert_array_equal(index[3:], index[:2])
    # Same class: class 2 has no partner and is left unmixed.
    index = _draw("same_class", 0, **common)
    np.testing.assert_array_equal(index[[0, 2, 3]], [6, 2, 6])
    assert set(index[[1, 4]]) <= {5, 7}
    # Nearest partner row: 0, 1, 3 -> 2.0; 7 -> 2.0 (5 away) ; 15 -> 14.
    index = _draw("knn", 0, **dict(common, knn_k=1))
    np.testing.assert_array_equal(index, [5, 5, 5, 5, 7])
    index = _draw("same_class_knn", 0, **dict(common, knn_k=1))
    np.testing.assert_array_equal(index, [6, 5, 2, 6, 7])


# --------------------------------------------------------------- Mixup


@pytest.mark.parametrize("name", sorted(pairing.PAIRINGS))
def test_seeds_reproduce_every_pairing(name):
    x = np.random.default_rng(2).normal(size=(2, 16, 3)).astype("float32")
    y = np.eye(3, dtype="float32")[np.arange(16) % 3]  # label_kernel: floats

    knn = {"knn_k": 3} if "knn" in name else {}

    def run(seed):
        mixup = keras_mixup.Mixup(
            alpha=1.0, num_classes=3, pairing=name, seed=seed, **knn
        )
        return [mixup(batch, y)[0].numpy() for batch in x]

    first, again, other = run(5), run(5), run(6)
    for a, b, c in zip(first, again, other, strict=True):
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, c)


def test_mixup_with_knn_in_a_dataset():
    x = np.tile(POSITIONS[:, None], (2, 1))
    y = np.arange(16) % 2
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    mixup = keras_mixup.Mixup(
        alpha=1.0, pairing="knn", knn_k=1, mix_labels=False, seed=0
    )
    nearest = [
        min(n) if len(n) == 1 else n
        for n in nearest_sets(POSITIONS[:, None], 1)
    ]
    for mixed_x, labels in ds.map(mixup):
        np.testing.assert_array_equal(labels, y[:8])
        # Each mixed value lies between the example and its nearest one.
        for i, value in enumerate(mixed_x.numpy()[:, 0]):
            low, high = sorted((POSITIONS[i], POSITIONS[nearest[i]]))
            assert low <= value <= high


@keras.saving.register_keras_serializable(package="keras_mixup_tests")
def first_feature(x):
    return x[:, :1]


def test_config_round_trip_with_pairing_options():
    mixup = keras_mixup.Mixup(
        alpha=0.3,
        num_classes=4,
        pairing="knn",
        knn_k=7,
        knn_features=first_feature,
        mix_labels=False,
        seed=2,
    )
    config = mixup.get_config()
    # The options that take effect: the knn pairing's, not C-Mixup's
    # bandwidth nor the cutting variants'.
    assert set(config) == {
        "alpha",
        "num_classes",
        "label_smoothing",
        "mode",
        "variant",
        "pairing",
        "knn_k",
        "knn_features",
        "mix_labels",
        "prob",
        "seed",
        "fused",
        "bounding_box_format",
        "mask_rule",
    }
    restored = keras_mixup.Mixup.from_config(config)
    assert restored.knn_features is first_feature
    assert (restored.pairing, restored.knn_k, restored.mix_labels) == (
        "knn",
        7,
        False,
    )
    serialized = keras.saving.serialize_keras_object(mixup)
    again = keras.saving.deserialize_keras_object(serialized)
    assert again.get_config() == config
    assert "knn_features=<function" in repr(mixup)


def test_unregistered_knn_features_are_not_serialised():
    mixup = keras_mixup.Mixup(pairing="knn", knn_features=lambda x: x)
    with pytest.raises(ValueError, match="knn_features.*registered"):
        mixup.get_config()
    with pytest.raises(ValueError, match="weights"):
        keras_mixup.Mixup(
            pairing="knn", knn_features=keras.layers.Flatten()
        ).get_config()


# ----------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "value, received",
    [("nearest", "'nearest'"), (["knn"], r"\['knn'\]"), (None, "None")],
)
def test_unknown_pairing(value, received):
    with pytest.raises(
        ValueError,
        match=r"`pairing` must be one of \['knn', 'label_kernel', 'random', "
        r"'same_class', 'same_class_knn'\]; received " + received,
    ):
        keras_mixup.Mixup(pairing=value)


@pytest.mark.parametrize("knn_k", [0, -3, 2.5, True, "5"])
def test_bad_knn_k(knn_k):
    with pytest.raises(
        ValueError, match=f"`knn_k` must be an int >= 1.*received {knn_k!r}"
    ):
        keras_mixup.Mixup(pairing="knn", knn_k=knn_k)


def test_bad_knn_features():
    with pytest.raises(
        ValueError, match="`knn_features` must be None .*callable.*received 3"
    ):
        keras_mixup.Mixup(pairing="knn", knn_features=3)


@pytest.mark.parametrize("name", ["same_class", "same_class_knn"])
@pytest.mark.parametrize("call", ["mix", "map"])
def test_same_class_without_labels(name, call):
    x = np.zeros((4, 2), "float32")
    mixup = keras_mixup.Mixup(pairing=name)
    with pytest.raises(
        ValueError,
        match=rf"`pairing='{name}'` needs labels \(class ids or one-hot "
        r"labels\); received None\. Pass the labels \(or use "
        r"`pairing='random'` or `'knn'`\)",
    ):
        mixup.mix(x) if call == "mix" else mixup(x, None)


def test_same_class_with_nested_labels():
    mixup = keras_mixup.Mixup(pairing="same_class")
    with pytest.raises(ValueError, match="single tensor"):
        mixup.mix(
            np.zeros((4, 2), "float32"),
            {"a": np.zeros([4]), "b": np.zeros([4])},
        )


def test_unknown_pairing_option():
    with pytest.raises(
        ValueError,
        match=r"Unknown pairing option\(s\) "
        r"\['k'\]",
    ):
        pairing.partner_index("random", 4, tf.constant([1, 2]), k=3)
