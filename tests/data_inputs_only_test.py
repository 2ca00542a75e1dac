"""Tests for inputs-only mixing (`mix_labels=False`) and `mix_with`."""

import numpy as np
import pytest
import scipy.stats
import tensorflow as tf
from conftest import decode_blends, decode_identity_rows, mixed_lams

import keras_mixup

# ------------------------------------------------------ Mixup, inputs only


def test_inputs_only_keeps_labels_and_weights_exactly():
    x = np.random.default_rng(0).random((8, 4)).astype("float32")
    for y in (
        np.arange(8) % 3,
        (np.arange(8) % 3).astype("uint8"),
        np.eye(3, dtype="float32")[np.arange(8) % 3],
    ):
        weight = np.linspace(0.5, 2, 8).astype("float32")
        mixup = keras_mixup.Mixup(
            alpha=1.0, num_classes=3, mix_labels=False, seed=1
        )
        mixed_x, labels, weights = mixup(x, y, weight)
        assert labels.dtype == y.dtype
        np.testing.assert_array_equal(labels, y)
        np.testing.assert_array_equal(weights, weight)
        assert mixed_x.shape == x.shape
        assert not np.array_equal(mixed_x, x)


def test_inputs_only_blend_is_lam_x_i_plus_one_minus_lam_x_j():
    mixup = keras_mixup.Mixup(alpha=0.5, mix_labels=False, seed=3)
    mixed, labels = mixup(np.eye(16, dtype="float32"), np.arange(16))
    lam, partner = decode_identity_rows(mixed, np.arange(16))
    assert np.any(partner != np.arange(16))
    np.testing.assert_array_equal(labels, np.arange(16))


@pytest.mark.parametrize("alpha", [0.4, 2.0])
def test_inputs_only_lam_follows_beta_alpha_plus_one_alpha(alpha):
    x = np.eye(128, dtype="float32")
    ds = tf.data.Dataset.from_tensors((x, np.arange(128))).repeat(16)
    ds = ds.map(keras_mixup.Mixup(alpha, mix_labels=False, seed=11))
    lams = np.concatenate([mixed_lams(mixed) for mixed, _ in ds])
    assert len(lams) > 1900
    # Kolmogorov-Smirnov: fits Beta(alpha + 1, alpha), not Beta(alpha,
    # alpha) (the ordinary mixup draw), at these sample sizes.
    inputs_only = scipy.stats.kstest(lams, "beta", args=(alpha + 1, alpha))
    ordinary = scipy.stats.kstest(lams, "beta", args=(alpha, alpha))
    assert inputs_only.pvalue > 0.001, inputs_only
    assert ordinary.pvalue < 1e-6, ordinary
    mean = (alpha + 1) / (2 * alpha + 1)
    assert abs(lams.mean() - mean) < 0.02


def test_inputs_only_batch_mode_draws_one_lam():
    mixup = keras_mixup.Mixup(1.0, mix_labels=False, mode="batch", seed=5)
    mixed, _ = mixup(np.eye(8, dtype="float32"), np.arange(8))
    lam = mixed_lams(mixed)
    assert len(lam) >= 2
    np.testing.assert_allclose(lam, lam[0], atol=1e-6)
    draw = tf.function(lambda: mixup.draw(8)[0])
    lams = np.array([draw().numpy() for _ in range(400)])
    assert lams.shape == (400,)
    # Beta(2, 1): KS fit, and not Beta(1, 1).
    assert scipy.stats.kstest(lams, "beta", args=(2, 1)).pvalue > 0.001
    assert scipy.stats.kstest(lams, "uniform").pvalue < 1e-4


def test_inputs_only_through_draw_and_mix_batch():
    mixup = keras_mixup.Mixup(alpha=1.0, mix_labels=False, seed=0)
    lam, index = mixup.draw(5000)
    # Beta(2, 1): mean 2/3 (sd of the mean 0.0033); ordinary draws 1/2.
    assert abs(float(tf.reduce_mean(lam)) - 2 / 3) < 0.015
    lam, index = mixup.draw(5000, inputs_only=False)
    assert abs(float(tf.reduce_mean(lam)) - 1 / 2) < 0.015


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (
            {"mix_labels": False, "label_smoothing": 0.1},
            "`label_smoothing` has no effect with `mix_labels=False`.*"
            "received label_smoothing=0.1",
        ),
        (
            {"mix_labels": "no"},
            "`mix_labels` must be True or False; received 'no'",
        ),
    ],
    ids=["label_smoothing-inputs-only", "mix_labels-string"],
)
def test_bad_inputs_only_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        keras_mixup.Mixup(**kwargs)


# ------------------------------------------------------------- mix_with

MAIN, PARTNER = 48, 30  # examples; features are one-hot over both
EYE = np.eye(MAIN + PARTNER, dtype="float32")


def decode_step(x, step):
    """lam and partner of every row of the `step`-th mixed batch: row `i`
    must be `lam * EYE[own] + (1 - lam) * EYE[MAIN + partner]`."""
    own = np.arange(len(x)) + len(x) * step
    return decode_blends(x, EYE[own], EYE[MAIN:], atol=1e-6)


def _datasets(batch, partner_batch, partner_labelled=False, weights=False):
    """A labelled dataset of rows e_0..e_47 and a partner dataset of rows
    e_48..e_77, both over 78 features."""
    y = np.arange(MAIN) % 4
    main = (
        (EYE[:MAIN], y, np.full(MAIN, 2.0, "float32"))
        if weights
        else (EYE[:MAIN], y)
    )
    ds = tf.data.Dataset.from_tensor_slices(main).batch(batch)
    partner = EYE[MAIN:]
    if partner_labelled:
        partner = (partner, np.arange(PARTNER) % 4)
    partners = tf.data.Dataset.from_tensor_slices(partner).batch(partner_batch)
    return ds, partners


@pytest.mark.parametrize(
    "partner_batch, uses",
    [(5, 4), (30, 1)],  # cycled (16 rows from 5), trimmed (16 of 30)
    ids=["cycled", "trimmed"],
)
def test_mix_with_unlabelled_partner_and_unequal_batch_sizes(
    partner_batch, uses
):
    ds, partners = _datasets(16, partner_batch, weights=True)
    mixed = keras_mixup.mix_with(ds, partners, alpha=1.0, seed=0)
    assert mixed.cardinality() == 3
    for step, (x, y, weight) in enumerate(mixed):
        assert x.shape == (16, MAIN + PARTNER)
        np.testing.assert_array_equal(weight, np.full(16, 2.0))
        np.testing.assert_array_equal(y, (np.arange(16) + 16 * step) % 4)
        assert y.dtype == tf.int64
        _, partner_row = decode_step(x, step)
        # Partners come from the partner batch of this step, each used at
        # most `uses` times (cycled) or once (trimmed).
        first = (step * partner_batch) % PARTNER
        assert np.all(partner_row >= first)
        assert np.all(partner_row < first + partner_batch)
        assert np.bincount(partner_row).max() <= uses


def test_mix_with_short_partner_dataset_is_repeated():
    ds, partners = _datasets(8, 10)  # 6 batches vs 3 partner batches
    mixed = keras_mixup.mix_with(ds, partners, alpha=1.0, seed=1)
    steps = list(mixed)
    assert len(steps) == 6
    for step, (x, _) in enumerate(steps):
        _, partner_row = decode_step(x, step)
        assert np.all(partner_row // 10 == step % 3)


def test_mix_with_labelled_partner_blends_labels_with_mix_labels():
    ds, partners = _datasets(16, 16, partner_labelled=True)
    mixed = keras_mixup.mix_with(
        ds, partners, alpha=1.0, seed=2, mix_labels=True, num_classes=4
    )
    for step, (x, y) in enumerate(mixed):
        own = np.arange(16) + 16 * step
        lam, partner = decode_step(x, step)
        expected = (
            lam[:, None] * np.eye(4)[own % 4]
            + (1 - lam[:, None]) * np.eye(4)[partner % 4]
        )
        np.testing.assert_allclose(y, expected, atol=1e-6)


def test_mix_with_same_class_partners_from_a_labelled_partner():
    ds, partners = _datasets(16, 30, partner_labelled=True)
    mixed = keras_mixup.mix_with(
        ds, partners, alpha=1.0, seed=2, pairing="same_class"
    )
    for step, (x, y) in enumerate(mixed):
        _, partner = decode_step(x, step)
        np.testing.assert_array_equal(partner % 4, y)


def test_mix_with_seeds_reproduce_with_an_infinite_tuple_partner():
    def run(seed):
        ds, partners = _datasets(16, 7)
        infinite = partners.map(lambda x: (x,)).repeat()
        mixed = keras_mixup.mix_with(ds, infinite, alpha=0.5, seed=seed)
        assert mixed.cardinality() == 3
        return np.concatenate([x.numpy() for x, _ in mixed])

    first = run(4)
    assert first.shape == (MAIN, MAIN + PARTNER)
    np.testing.assert_array_equal(first, run(4))
