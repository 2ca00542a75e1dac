"""Tests for C-Mixup's pairing, `pairing="label_kernel"`: partners drawn
with a Gaussian kernel on the label distance, through the strategy,
`Mixup`, `mix_with` and `MixupModel`."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import decode_identity_rows
from scipy import stats

import keras_mixup
from keras_mixup import pairing

# Labels with uneven gaps, so that every row has its own kernel.
LABELS = np.array([0.0, 0.4, 1.0, 2.0, 4.0, 4.3], "float32")
#: Each label's nearest other label (no ties).
NEAREST = [1, 0, 1, 2, 5, 4]
DRAWS = 3000


def kernel(labels, partner_labels=None, sigma=1.0):
    """The partner probabilities `[B, C]` C-Mixup asks for, by brute force."""
    query = np.asarray(labels, "float64").reshape(len(labels), -1)
    within = partner_labels is None
    others = query if within else np.asarray(partner_labels, "float64")
    others = others.reshape(len(others), -1)
    distances = ((query[:, None] - others[None]) ** 2).sum(-1)
    weights = np.exp(-distances / (2 * sigma**2))
    if within:
        np.fill_diagonal(weights, 0.0)
    return weights / weights.sum(1, keepdims=True)


def partner_counts(labels, sigma, *, partner_labels=None, draws=DRAWS):
    """How often each row picks each candidate over `draws` seeds:
    `[B, C]` counts, C the batch size or the partner batch size."""
    size = len(labels)
    options = {}
    if partner_labels is not None:
        options = dict(
            partner_inputs=partner_labels, partner_labels=partner_labels
        )

    @tf.function
    def draw_all(seeds):
        return tf.map_fn(
            lambda seed: pairing.partner_index(
                "label_kernel",
                size,
                seed,
                labels=labels,
                label_bandwidth=sigma,
                **options,
            ),
            seeds,
            fn_output_signature=tf.int32,
        )

    seeds = tf.stack([tf.range(draws), tf.fill([draws], 11)], axis=1)
    index = draw_all(seeds).numpy()
    if partner_labels is not None:
        index -= size  # into the partner batch
    columns = size if partner_labels is None else len(partner_labels)
    counts = np.zeros((size, columns))
    for row in range(size):
        counts[row] = np.bincount(index[:, row], minlength=columns)
    return counts


def kernel_p_values(counts, probabilities, min_expected=5):
    """A p-value per row of counts against its probabilities: chi-square
    on the cells expecting `min_expected` draws or more, the others pooled;
    a binomial test of the pooled ones when a single cell remains."""
    return np.array(
        [
            _row_p_value(observed, p * observed.sum(), min_expected)
            for observed, p in zip(counts, probabilities, strict=True)
        ]
    )


def _row_p_value(observed, expected, min_expected):
    assert observed[expected == 0].sum() == 0, "an impossible partner"
    big = expected >= min_expected
    obs, exp = list(observed[big]), list(expected[big])
    rest_obs, rest_exp = observed[~big].sum(), expected[~big].sum()
    if len(obs) < 2:  # one likely partner: are the others as rare?
        total = int(observed.sum())
        return stats.binomtest(int(rest_obs), total, rest_exp / total).pvalue
    if rest_exp >= min_expected:
        obs.append(rest_obs)
        exp.append(rest_exp)
    else:  # too few to stand alone: pooled with the smallest cell
        smallest = int(np.argmin(exp))
        obs[smallest] += rest_obs
        exp[smallest] += rest_exp
    return stats.chisquare(obs, exp).pvalue


@pytest.mark.parametrize(
    "labels, sigma",
    [
        (LABELS, 1.0),
        (LABELS, 0.5),
        # [B, 2, 1] labels: points in the plane, flattened per example.
        (
            np.array(
                [[0, 0], [1, 0], [0, 1], [1, 1], [2, 2], [0.5, 0.2]],
                "float32",
            )[..., None],
            1.0,
        ),
    ],
    ids=["1d", "1d_narrow", "2d"],
)
def test_partner_frequencies_match_the_kernel(labels, sigma):
    counts = partner_counts(labels, sigma)
    np.testing.assert_array_equal(np.diag(counts), 0)  # never itself
    # 3000 draws per row, 4 to 5 pooled cells: a wrong kernel (sigma
    # instead of 2 sigma^2, or distances instead of squares) is off by
    # hundreds of draws and gets p < 1e-10; fixed seeds, so no flakes.
    p_values = kernel_p_values(counts, kernel(labels, sigma=sigma))
    assert p_values.min() > 1e-3, p_values


def test_a_huge_bandwidth_gives_uniform_partners():
    counts = partner_counts(LABELS, 1e6)
    uniform = (1 - np.eye(len(LABELS))) / (len(LABELS) - 1)
    p_values = kernel_p_values(counts, uniform)
    assert p_values.min() > 1e-3, p_values


def test_a_tiny_bandwidth_picks_the_nearest_label():
    counts = partner_counts(LABELS, 1e-3, draws=50)
    np.testing.assert_array_equal(counts.argmax(1), NEAREST)
    np.testing.assert_array_equal(counts.max(1), 50)


def test_partner_batch_frequencies_match_the_kernel():
    partner_labels = np.array([0.2, 1.5, 3.9], "float32")
    counts = partner_counts(LABELS, 1.0, partner_labels=partner_labels)
    p_values = kernel_p_values(counts, kernel(LABELS, partner_labels))
    assert p_values.min() > 1e-3, p_values


def test_batch_of_one_and_empty_batch_come_back_unmixed():
    seed = tf.constant([1, 2])
    for size in (0, 1):
        index = pairing.partner_index(
            "label_kernel", size, seed, labels=np.zeros([size], "float32")
        )
        np.testing.assert_array_equal(index, np.arange(size))


def test_runs_under_xla_on_a_dynamic_batch():
    @tf.function(jit_compile=True)
    def draw(labels, seed):
        return pairing.partner_index(
            "label_kernel",
            tf.shape(labels)[0],
            seed,
            labels=labels,
            label_bandwidth=1e-3,
        )

    index = draw(tf.constant(LABELS), tf.constant([3, 4])).numpy()
    np.testing.assert_array_equal(index, NEAREST)


# ------------------------------------------------------- entry points


def test_mixup_blends_each_example_with_a_close_label():
    x = np.eye(6, dtype="float32")
    mixup = keras_mixup.Mixup(
        alpha=1.0, pairing="label_kernel", label_bandwidth=1e-3, seed=0
    )
    mixed_x, mixed_y = mixup(x, LABELS)
    lam, partner = decode_identity_rows(
        mixed_x, np.arange(6), permutation=False
    )
    np.testing.assert_array_equal(partner, NEAREST)
    expected = lam * LABELS + (1 - lam) * LABELS[partner]
    np.testing.assert_allclose(mixed_y, expected, rtol=1e-6, atol=1e-6)


def test_mix_with_draws_partners_by_label_from_the_partner_dataset():
    # Inputs are identity rows: the batch e_0..e_5, the partners e_6..e_8.
    rows = np.eye(9, dtype="float32")
    partner_y = np.array([4.1, 0.1, 1.8], "float32")
    ds = tf.data.Dataset.from_tensor_slices((rows[:6], LABELS)).batch(6)
    partners = tf.data.Dataset.from_tensor_slices((rows[6:], partner_y))
    mixed = keras_mixup.mix_with(
        ds,
        partners.batch(3),
        alpha=1.0,
        seed=0,
        pairing="label_kernel",
        label_bandwidth=1e-3,
        mix_labels=True,
    )
    mixed_x, mixed_y = (t.numpy() for t in next(iter(mixed)))
    lam = np.diag(mixed_x[:, :6])
    partner = mixed_x[:, 6:].argmax(1)
    np.testing.assert_array_equal(partner, [1, 1, 2, 2, 0, 0])  # nearest y
    np.testing.assert_allclose(mixed_x[np.arange(6), 6 + partner], 1 - lam)
    expected = lam * LABELS + (1 - lam) * partner_y[partner]
    np.testing.assert_allclose(mixed_y, expected, rtol=1e-5, atol=1e-6)


def regressor():
    return keras.Sequential([keras.Input((6,)), keras.layers.Dense(1)])


@pytest.mark.parametrize("mix_at", ["input", "latent"])
def test_mixup_model_pairs_by_the_labels_before_encoding(mix_at):
    backbone = regressor()
    if mix_at == "latent":
        backbone = keras.Sequential(
            [keras.Input((6,)), keras_mixup.MixupLayer(), keras.layers.Dense(1)]
        )
    model = keras_mixup.MixupModel(
        backbone,
        alpha=1.0,
        mix_at=mix_at,
        pairing="label_kernel",
        label_bandwidth=1e-3,
        seed=0,
    )
    x = np.eye(6, dtype="float32")
    _, mixed_y, _, plan = model.mix(x, LABELS[:, None])
    if mix_at == "input":
        mixed_x = model.mix(x, LABELS[:, None])[0]
        _, partner = decode_identity_rows(
            mixed_x, np.arange(6), permutation=False
        )
    else:
        partner = plan.partner_index.numpy()
    np.testing.assert_array_equal(partner, NEAREST)
    assert mixed_y.shape == (6, 1)
    model.compile("sgd", "mse")
    history = model.fit(x, LABELS, batch_size=3, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


@pytest.mark.parametrize(
    "call",
    ["Mixup", "MixupModel"],
)
def test_class_ids_are_refused(call):
    labels = np.array([0, 1, 2, 1])
    x = np.zeros((4, 6), "float32")
    match = (
        r"`pairing='label_kernel'` \(C-Mixup\) compares continuous labels, "
        r"such as regression targets; received `labels` of dtype int64 "
        r"\(class ids\)\. Pass float targets, or use `pairing='same_class'`"
    )
    options = dict(pairing="label_kernel", num_classes=3)
    with pytest.raises(ValueError, match=match):
        if call == "Mixup":
            keras_mixup.Mixup(**options)(x, labels)
        else:
            keras_mixup.MixupModel(regressor(), **options).mix(x, labels)


def test_labels_are_required():
    with pytest.raises(
        ValueError, match=r"`pairing='label_kernel'` needs labels"
    ):
        keras_mixup.Mixup(pairing="label_kernel").mix(
            np.zeros((4, 2), "float32")
        )


@pytest.mark.parametrize(
    "value, received",
    [
        (0, "0.0"),
        (-1.0, "-1.0"),
        (float("nan"), "nan"),
        (float("inf"), "inf"),
        (True, "True of type bool"),
        ("1", "'1' of type str"),
    ],
)
def test_bad_label_bandwidth(value, received):
    with pytest.raises(
        ValueError,
        match=r"`label_bandwidth` must be a finite number > 0 \(sigma, the "
        r"width of the label kernel .*received " + received,
    ):
        keras_mixup.Mixup(pairing="label_kernel", label_bandwidth=value)


def test_label_bandwidth_round_trips_through_configs():
    mixup = keras_mixup.Mixup(pairing="label_kernel", label_bandwidth=2.5)
    again = keras_mixup.Mixup.from_config(mixup.get_config())
    assert (again.pairing, again.label_bandwidth) == ("label_kernel", 2.5)
    model = keras_mixup.MixupModel(
        regressor(), pairing="label_kernel", label_bandwidth=0.25
    )
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(model)
    )
    assert (restored.pairing, restored.label_bandwidth) == (
        "label_kernel",
        0.25,
    )
    assert "label_bandwidth=0.25" in model.engine.settings.describe()
