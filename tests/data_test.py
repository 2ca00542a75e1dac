"""Tests of `Mixup`, the tf.data map function."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import (
    chi_square_p_value,
    decode_identity_rows,
    mixed_lams,
    shared_result,
)
from scipy import stats

from keras_mixup import Mixup


def identity_dataset(n=12, batch=4, num_classes=None):
    """Example i is row i of an identity matrix and has label i (mod
    num_classes), so a mixed example shows its lam and partner."""
    x = np.eye(n, dtype="float32")
    y = np.arange(n) % (num_classes or n)
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch)


def check_identity_batch(x, y, start):
    """Every row of the batch of examples `start, start + 1, ...` is
    lam * e_i + (1 - lam) * e_p with p a permutation of the batch, and its
    label the same blend of the one-hot labels (label i = id i)."""
    ids = np.arange(start, start + len(x))
    lam, partner = decode_identity_rows(x, ids)
    np.testing.assert_allclose(x, y, atol=1e-6)
    return lam, partner


def test_maps_a_batched_dataset_and_keeps_the_structure():
    mixup = Mixup(alpha=0.4, num_classes=12, seed=1)
    batches = list(identity_dataset().map(mixup))
    assert len(batches) == 3
    for b, (x, y) in enumerate(batches):
        assert x.shape == (4, 12) and y.shape == (4, 12)
        assert x.dtype == tf.float32 and y.dtype == tf.float32
        check_identity_batch(x, y, 4 * b)


def test_rows_blend_an_example_with_a_permuted_partner():
    mixup = Mixup(alpha=1.0, num_classes=8, seed=2)
    x, _ = mixup(tf.eye(8), tf.range(8))
    # Row i holds lam_i at i and 1 - lam_i at its partner, the partners a
    # permutation of the batch (checked by the decoding).
    lam, partner = decode_identity_rows(x, np.arange(8))
    moved = partner != np.arange(8)
    assert moved.sum() >= 4
    assert np.all((lam[moved] > 0) & (lam[moved] < 1))


def test_lam_follows_beta_alpha_alpha_through_the_pipeline():
    # 100 batches of 64 through one traced map (100 eager calls took over
    # twice its CPU); fresh draws every batch, so no lam repeats.
    mixup = Mixup(alpha=0.4, num_classes=64, seed=3)
    x = np.eye(64, dtype="float32")
    ds = tf.data.Dataset.from_tensors((x, np.arange(64))).repeat(100)
    lams = [mixed_lams(mixed.numpy()) for mixed, _ in ds.map(mixup)]
    lams = np.concatenate(lams)
    assert len(lams) > 5000
    assert len(np.unique(lams)) > 0.99 * len(lams)
    edges = np.array([0, 0.01, 0.1, 0.3, 0.45, 0.55, 0.7, 0.9, 0.99, 1])
    assert chi_square_p_value(lams, stats.beta(0.4, 0.4), edges) > 1e-3
    assert chi_square_p_value(lams, stats.beta(1, 1), edges) < 1e-6


def test_batch_mode_uses_one_lam_per_batch():
    mixup = Mixup(alpha=1.0, num_classes=16, mode="batch", seed=4)
    x, _ = mixup(tf.eye(16), tf.range(16))
    lam = mixed_lams(x)
    assert len(lam) >= 8
    np.testing.assert_allclose(lam, lam[0])


def test_sample_weights_and_dict_and_tuple_inputs():
    x = {
        "image": np.eye(6, dtype="float32").reshape(6, 2, 3),
        "extra": (np.eye(6, dtype="uint8"), np.eye(6, dtype="float16")),
    }
    y = np.arange(6)
    weight = np.arange(6, dtype="float32")
    ds = tf.data.Dataset.from_tensor_slices((x, y, weight)).batch(6)
    mixed = next(iter(ds.map(Mixup(alpha=1.0, num_classes=6, seed=5))))
    assert len(mixed) == 3
    mixed_x, mixed_y, mixed_w = mixed
    assert mixed_x["extra"][0].dtype == tf.float32
    assert mixed_x["extra"][1].dtype == tf.float16
    for leaf in (mixed_x["image"], mixed_x["extra"][0]):
        np.testing.assert_allclose(np.reshape(leaf, (6, 6)), mixed_y, atol=1e-6)
    # Weights follow the same lam and partner: w~ = sum_k y~_k * w_k.
    np.testing.assert_allclose(mixed_w, mixed_y.numpy() @ weight, rtol=1e-5)


def test_unknown_batch_size_short_last_batch_and_batch_of_one():
    def generate():
        for i in range(9):
            yield np.eye(9, dtype="float32")[i], i

    ds = tf.data.Dataset.from_generator(
        generate,
        output_signature=(
            tf.TensorSpec([9], tf.float32),
            tf.TensorSpec([], tf.int64),
        ),
    ).batch(4)
    assert ds.element_spec[0].shape[0] is None
    batches = list(ds.map(Mixup(alpha=1.0, num_classes=9, seed=6)))
    assert [int(b[0].shape[0]) for b in batches] == [4, 4, 1]
    for b, (x, y) in enumerate(batches):
        check_identity_batch(x, y, 4 * b)
    # A batch of one is returned unchanged, with its label encoded.
    np.testing.assert_array_equal(batches[-1][0], np.eye(9)[[8]])
    np.testing.assert_array_equal(batches[-1][1], np.eye(9)[[8]])


def test_fresh_draws_for_every_batch_and_every_epoch():
    ds = identity_dataset(n=16, batch=8, num_classes=16).map(
        Mixup(alpha=1.0, num_classes=16, seed=7)
    )
    epochs = [[x.numpy() for x, _ in ds] for _ in range(2)]
    all_batches = [b for epoch in epochs for b in epoch]
    for i, a in enumerate(all_batches):
        for b in all_batches[i + 1 :]:
            assert not np.array_equal(a, b)


def pipeline_output(seed):
    ds = identity_dataset(n=32, batch=8, num_classes=32).map(
        Mixup(alpha=0.2, num_classes=32, seed=seed)
    )
    return [x.numpy() for _ in range(2) for x, _ in ds]


def test_same_seed_gives_bit_identical_pipelines():
    a, b = pipeline_output(9), pipeline_output(9)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    c = pipeline_output(10)
    assert not np.array_equal(a[0], c[0])


def test_parallel_map_stays_correct_and_draws_per_batch():
    ds = identity_dataset(n=256, batch=8, num_classes=256).map(
        Mixup(alpha=1.0, num_classes=256, seed=11),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    draws = []
    for b, (x, y) in enumerate(ds):
        lam, _ = check_identity_batch(x, y, 8 * b)
        draws.append(tuple(np.round(lam, 6)))
    assert len(draws) == 32 and len(set(draws)) == 32


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_works_with_another_keras_backend(request, backend):
    # tf_data_backend_scenarios.py, in that backend's scenario chain.
    found = shared_result(request, backend, "mixup_in_tf_data")
    assert found["is_tensorflow"] and found["labels_shape"] == [4, 4]
    decode_identity_rows(found["x"], np.arange(4))


def test_eager_call_on_numpy_arrays_and_label_smoothing():
    x, y = Mixup(alpha=1.0, num_classes=8, label_smoothing=0.2, seed=0)(
        np.eye(8, dtype="float32"), np.arange(8)
    )
    assert isinstance(x, tf.Tensor) and isinstance(y, tf.Tensor)
    assert len(mixed_lams(x)) >= 4
    # Smoothed one-hot labels, 0.8 * e_i + 0.2 / 8, blended with the same
    # lam and partner as the inputs: y = 0.8 * x + 0.025, exactly.
    np.testing.assert_allclose(y, 0.8 * x.numpy() + 0.025, atol=1e-6)


def test_float_labels_are_blended_as_given():
    targets = np.array([[1.0], [3.0], [5.0], [7.0]], "float32")
    x, y = Mixup(alpha=1.0, seed=0)(np.eye(4, dtype="float32"), targets)
    np.testing.assert_allclose(y, x.numpy() @ targets, rtol=1e-6)


def test_config_round_trip_and_keras_serialization():
    mixup = Mixup(
        alpha=0.3, num_classes=5, label_smoothing=0.1, mode="batch", seed=2
    )
    # The options that take effect: not those of the knn pairings, C-Mixup
    # or the cutting variants, which mixup with random pairing ignores
    # (mixup checks boxes against bounding_box_format).
    assert mixup.get_config() == {
        "alpha": 0.3,
        "num_classes": 5,
        "label_smoothing": 0.1,
        "mode": "batch",
        "variant": "mixup",
        "pairing": "random",
        "mix_labels": True,
        "prob": 1.0,
        "seed": 2,
        "fused": "auto",
        "bounding_box_format": None,
        "mask_rule": "union",
    }
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(mixup)
    )
    assert isinstance(restored, Mixup)
    assert restored.get_config() == mixup.get_config()
    assert "Mixup(alpha=0.3" in repr(mixup)


def test_dynamic_batch_size_mismatch_raises_in_the_pipeline():
    ds = tf.data.Dataset.from_generator(
        lambda: iter([(np.eye(3, dtype="float32"), np.arange(2))]),
        output_signature=(
            tf.TensorSpec([None, 3], tf.float32),
            tf.TensorSpec([None], tf.int64),
        ),
    )
    with pytest.raises(tf.errors.InvalidArgumentError, match="same batch"):
        list(ds.map(Mixup(num_classes=3)))
