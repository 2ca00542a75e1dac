"""Tests for `keras_mixup.metrics.ExpectedCalibrationError`: exact values,
accumulation, weights, label and prediction forms, TFP's value, `fit` and
`evaluate`, serialisation, bad arguments, and the JAX backend."""

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from conftest import shared_result
from tf_data_backend_scenarios import METRIC_DATA, random_logits

import keras_mixup
from keras_mixup.metrics import ExpectedCalibrationError

# Four predictions, num_bins=5 (edges 0.2, 0.4, 0.6, 0.8):
#   conf 0.70 bin 3 right, conf 0.75 bin 3 wrong, conf 0.90 bin 4 right,
#   conf 0.55 bin 2 right.
# ECE = 2/4 * |1/2 - 0.725| + 1/4 * |1 - 0.9| + 1/4 * |1 - 0.55| = 0.25.
HAND_PROBS = np.array(
    [
        [0.20, 0.70, 0.10],
        [0.75, 0.15, 0.10],
        [0.05, 0.05, 0.90],
        [0.55, 0.25, 0.20],
    ],
    "float32",
)
HAND_LABELS = np.array([1, 2, 2, 0])
HAND_ECE = 0.25


def ece(y_true, y_pred, sample_weight=None, **kwargs):
    """The metric's value after one update."""
    metric = ExpectedCalibrationError(**kwargs)
    metric.update_state(y_true, y_pred, sample_weight=sample_weight)
    return float(metric.result())


def tfp_ece(logits, labels, num_bins):
    return float(
        tfp.stats.expected_calibration_error(
            num_bins, logits=logits, labels_true=labels
        )
    )


# --- exact values -----------------------------------------------------------


def test_hand_built_example_bins_and_value():
    metric = ExpectedCalibrationError(num_bins=5)
    metric.update_state(HAND_LABELS, HAND_PROBS)
    np.testing.assert_allclose(metric.bin_counts.numpy(), [0, 0, 1, 2, 1])
    np.testing.assert_allclose(
        metric.bin_confidences.numpy(), [0, 0, 0.55, 1.45, 0.9], atol=1e-6
    )
    np.testing.assert_allclose(metric.bin_correct.numpy(), [0, 0, 1, 1, 1])
    assert float(metric.result()) == pytest.approx(HAND_ECE, abs=1e-6)


def test_bin_edges_belong_to_the_upper_bin_and_one_to_the_last():
    # num_bins=4: confidences 0.5, 0.75 and 1.0 are exact in float32.
    metric = ExpectedCalibrationError(num_bins=4)
    probs = [[0.5, 0.5], [0.25, 0.75], [1.0, 0.0]]
    metric.update_state([0, 1, 0], probs)
    np.testing.assert_allclose(metric.bin_counts.numpy(), [0, 0, 1, 2])
    # A tie predicts the first class, as argmax does: [0.5, 0.5] is right.
    np.testing.assert_allclose(metric.bin_correct.numpy(), [0, 0, 1, 2])


def test_a_single_bin_is_the_gap_between_accuracy_and_mean_confidence():
    # accuracy 3/4, mean confidence 0.725: |0.75 - 0.725| = 0.025.
    assert ece(HAND_LABELS, HAND_PROBS, num_bins=1) == pytest.approx(
        0.025, abs=1e-6
    )


def test_zero_before_any_update_and_after_reset():
    metric = ExpectedCalibrationError(num_bins=5)
    assert float(metric.result()) == 0.0
    metric.update_state(HAND_LABELS, HAND_PROBS)
    assert float(metric.result()) > 0.0
    metric.reset_state()
    assert float(metric.result()) == 0.0
    np.testing.assert_array_equal(metric.bin_counts.numpy(), 0.0)
    np.testing.assert_array_equal(metric.bin_confidences.numpy(), 0.0)
    np.testing.assert_array_equal(metric.bin_correct.numpy(), 0.0)
    metric.update_state(HAND_LABELS, HAND_PROBS)
    assert float(metric.result()) == pytest.approx(HAND_ECE, abs=1e-6)


def test_three_batches_accumulate_to_one_batch_of_all():
    logits, labels = random_logits(n=300)
    probs = keras.ops.convert_to_numpy(keras.ops.softmax(logits))
    whole = ece(labels, probs)
    metric = ExpectedCalibrationError()
    for rows in (slice(0, 50), slice(50, 170), slice(170, 300)):
        metric.update_state(labels[rows], probs[rows])
    assert float(metric.result()) == pytest.approx(whole, abs=1e-6)
    assert float(metric.result()) != pytest.approx(
        ece(labels[170:], probs[170:]), abs=1e-3
    )


# --- sample weights ---------------------------------------------------------


def test_weights_count_examples_by_weight():
    # Weights 1, 3, 0, 1 (num_bins=5): bin 3 holds weight 1 right (conf
    # 0.7) and weight 3 wrong (conf 0.75), bin 2 weight 1 right (0.55); the
    # 0.9 row weighs 0. N = 5, and (count_b / N) * |acc_b - conf_b| is
    # |correct_b - confidences_b| / N.
    weights = np.array([1.0, 3.0, 0.0, 1.0], "float32")
    expected = (abs(1.0 - (0.7 + 3 * 0.75)) + abs(1.0 - 0.55)) / 5.0
    assert ece(HAND_LABELS, HAND_PROBS, weights, num_bins=5) == pytest.approx(
        expected, abs=1e-6
    )


def test_integer_weights_equal_repeated_rows():
    logits, labels = random_logits(n=200, seed=1)
    counts = np.random.default_rng(2).integers(0, 4, 200)
    weighted = ece(labels, logits, counts, from_logits=True)
    repeated = ece(
        np.repeat(labels, counts),
        np.repeat(logits, counts, axis=0),
        from_logits=True,
    )
    assert weighted == pytest.approx(repeated, abs=1e-6)


@pytest.mark.parametrize("form", ["[B, 1]", "scalar"])
def test_weight_shapes(form):
    weights = np.array([1.0, 3.0, 0.0, 1.0], "float32")
    as_vector = ece(HAND_LABELS, HAND_PROBS, weights, num_bins=5)
    if form == "[B, 1]":
        assert ece(
            HAND_LABELS, HAND_PROBS, weights[:, None], num_bins=5
        ) == pytest.approx(as_vector, abs=1e-7)
    else:
        assert ece(HAND_LABELS, HAND_PROBS, 2.0, num_bins=5) == pytest.approx(
            HAND_ECE, abs=1e-6
        )


def test_all_zero_weights_give_zero_not_nan():
    assert ece(HAND_LABELS, HAND_PROBS, np.zeros(4, "float32")) == 0.0


# --- label and prediction forms ---------------------------------------------


@pytest.mark.parametrize(
    "labels",
    [
        pytest.param(HAND_LABELS, id="ids [B]"),
        pytest.param(HAND_LABELS[:, None], id="ids [B, 1]"),
        pytest.param(HAND_LABELS.astype("float32"), id="float ids [B]"),
        pytest.param(np.eye(3, dtype="float32")[HAND_LABELS], id="one-hot"),
        pytest.param(
            0.8 * np.eye(3, dtype="float32")[HAND_LABELS] + 0.2 / 3,
            id="soft",
        ),
    ],
)
def test_label_forms(labels):
    assert ece(labels, HAND_PROBS, num_bins=5) == pytest.approx(
        HAND_ECE, abs=1e-6
    )


def test_logits_are_softmaxed():
    logits = np.log(HAND_PROBS) + 3.0  # softmax(log p + c) = p
    assert ece(
        HAND_LABELS, logits, num_bins=5, from_logits=True
    ) == pytest.approx(HAND_ECE, abs=1e-6)


BINARY_P = np.array([0.9, 0.3, 0.62, 0.5, 0.05, 0.75], "float32")
BINARY_Y = np.array([1, 0, 0, 0, 1, 1])


@pytest.mark.parametrize(
    "probs", [BINARY_P, BINARY_P[:, None]], ids=["[B]", "[B, 1]"]
)
def test_binary_probability_is_the_two_class_row(probs):
    two_class = np.stack([1.0 - BINARY_P, BINARY_P], axis=-1)
    expected = ece(BINARY_Y, two_class, num_bins=4)
    assert ece(BINARY_Y, probs, num_bins=4) == pytest.approx(expected, abs=1e-6)
    assert ece(BINARY_Y[:, None], probs, num_bins=4) == pytest.approx(
        expected, abs=1e-6
    )


def test_binary_by_hand():
    # num_bins=4; confidences 0.9 (bin 3, right), 0.7 (bin 2, right),
    # 0.62 (bin 2, wrong), 0.5 (bin 2, class 0 predicted, right),
    # 0.95 (bin 3, wrong), 0.75 (bin 3, right).
    # bin 2: |2 - 1.82|, bin 3: |2 - 2.6|; N = 6.
    expected = (abs(2 - 1.82) + abs(2 - 2.6)) / 6
    metric = ExpectedCalibrationError(num_bins=4)
    metric.update_state(BINARY_Y, BINARY_P)
    np.testing.assert_allclose(metric.bin_counts.numpy(), [0, 0, 3, 3])
    assert float(metric.result()) == pytest.approx(expected, abs=1e-6)


def test_binary_logits_and_soft_labels():
    logits = np.log(BINARY_P / (1.0 - BINARY_P))
    expected = ece(BINARY_Y, BINARY_P, num_bins=4)
    assert ece(BINARY_Y, logits, num_bins=4, from_logits=True) == pytest.approx(
        expected, abs=1e-6
    )
    soft = np.where(BINARY_Y == 1, 0.8, 0.2).astype("float32")
    assert ece(soft, BINARY_P, num_bins=4) == pytest.approx(expected, abs=1e-6)


def test_float16_predictions_are_accumulated_in_float32():
    metric = ExpectedCalibrationError(num_bins=5)
    metric.update_state(HAND_LABELS, HAND_PROBS.astype("float16"))
    assert metric.result().dtype == "float32"
    assert float(metric.result()) == pytest.approx(HAND_ECE, abs=1e-3)


# --- TensorFlow Probability's value -----------------------------------------


@pytest.mark.parametrize("num_bins", [1, 10, 15])
@pytest.mark.parametrize("splits", [1, 3, 7])
@pytest.mark.parametrize("from_logits", [True, False])
def test_equals_tfp_on_the_whole_set(num_bins, splits, from_logits):
    logits, labels = random_logits(n=1000, seed=num_bins + splits)
    expected = tfp_ece(logits, labels, num_bins)
    preds = logits if from_logits else tf.nn.softmax(logits).numpy()
    metric = ExpectedCalibrationError(
        num_bins=num_bins, from_logits=from_logits
    )
    edges = np.sort(np.random.default_rng(splits).choice(999, splits - 1))
    for rows in np.split(np.arange(1000), edges + 1):
        metric.update_state(labels[rows], preds[rows])
    assert float(metric.result()) == pytest.approx(expected, abs=1e-6)


def test_equals_tfp_on_peaked_predictions():
    # Most confidences near 1, in the last bins: where models trained with
    # cross-entropy put them.
    logits, labels = random_logits(n=2000, k=10, seed=3)
    logits = logits * 4.0
    expected = tfp_ece(logits, labels, 15)
    assert ece(labels, logits, from_logits=True) == pytest.approx(
        expected, abs=1e-6
    )


# --- in a model -------------------------------------------------------------


def _model():
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(4, activation="softmax")]
    )


def _data(n=96):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 6)).astype("float32"), rng.integers(0, 4, n)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_fit_and_evaluate_report_the_whole_set_value(jit_compile):
    model = _model()
    model.compile(
        optimizer="sgd",
        loss="sparse_categorical_crossentropy",
        metrics=[ExpectedCalibrationError(num_bins=10)],
        jit_compile=jit_compile,
    )
    x, y = _data()
    history = model.fit(x, y, batch_size=32, epochs=2, verbose=0)
    assert len(history.history["expected_calibration_error"]) == 2
    logs = model.evaluate(x, y, batch_size=32, return_dict=True, verbose=0)
    expected = ece(y, model.predict(x, verbose=0), num_bins=10)
    assert logs["expected_calibration_error"] == pytest.approx(
        expected, abs=1e-5
    )
    # evaluate resets the metric: a second run reports the same value.
    again = model.evaluate(x, y, batch_size=32, return_dict=True, verbose=0)
    assert again["expected_calibration_error"] == pytest.approx(
        logs["expected_calibration_error"], abs=1e-6
    )


# --- serialisation ----------------------------------------------------------


def test_config_is_the_constructor_arguments_and_round_trips():
    metric = ExpectedCalibrationError(
        num_bins=7, from_logits=True, name="ece", dtype="float64"
    )
    config = metric.get_config()
    assert config == {
        "num_bins": 7,
        "from_logits": True,
        "name": "ece",
        "dtype": "float64",
    }
    clone = ExpectedCalibrationError.from_config(config)
    assert clone.get_config() == config
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(metric)
    )
    assert isinstance(restored, ExpectedCalibrationError)
    assert restored.get_config() == config


def test_registered_under_the_package_name():
    assert (
        keras.saving.get_registered_name(ExpectedCalibrationError)
        == "keras_mixup>ExpectedCalibrationError"
    )


def test_compiled_model_saves_and_loads_as_keras_file(tmp_path):
    model = _model()
    model.compile(
        optimizer="sgd",
        loss="sparse_categorical_crossentropy",
        metrics=[ExpectedCalibrationError(num_bins=7, name="ece7")],
    )
    x, y = _data()
    before = model.evaluate(x, y, return_dict=True, verbose=0)["ece7"]
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    after = loaded.evaluate(x, y, return_dict=True, verbose=0)["ece7"]
    assert after == pytest.approx(before, abs=1e-6)
    (config,) = loaded.get_compile_config()["metrics"]
    assert config["registered_name"] == "keras_mixup>ExpectedCalibrationError"
    assert config["config"]["num_bins"] == 7


def test_reachable_from_the_package():
    assert keras_mixup.metrics.ExpectedCalibrationError is (
        ExpectedCalibrationError
    )
    assert keras_mixup.metrics.__all__ == ["ExpectedCalibrationError"]


# --- bad arguments and shapes -----------------------------------------------


@pytest.mark.parametrize("num_bins", [0, -3, 2.5, True, "10", None])
def test_bad_num_bins(num_bins):
    with pytest.raises(
        ValueError, match=r"`num_bins` must be an int >= 1"
    ) as e:
        ExpectedCalibrationError(num_bins=num_bins)
    assert repr(num_bins) in str(e.value)


@pytest.mark.parametrize("from_logits", [1, 0, "True", None])
def test_bad_from_logits(from_logits):
    with pytest.raises(
        ValueError, match=r"`from_logits` must be True or False"
    ) as e:
        ExpectedCalibrationError(from_logits=from_logits)
    assert repr(from_logits) in str(e.value)


@pytest.mark.parametrize(
    "y_true, y_pred, message",
    [
        pytest.param(
            np.zeros(2), np.zeros((2, 3, 4)), r"`y_pred` must be", id="rank 3"
        ),
        pytest.param(np.zeros(()), 0.5, r"`y_pred` must be", id="rank 0"),
        pytest.param(
            np.zeros((4, 2)),
            HAND_PROBS,
            r"`y_true` must be .*\[B, 3\].*\(4, 2\)",
            id="K mismatch",
        ),
        pytest.param(
            np.zeros((4, 3, 1)), HAND_PROBS, r"`y_true` must be", id="rank 3"
        ),
        pytest.param(
            np.zeros(5), HAND_PROBS, r"same batch size", id="batch mismatch"
        ),
        pytest.param(
            np.zeros((6, 2)),
            BINARY_P,
            r"one probability per example.*\(6, 2\)",
            id="binary one-hot",
        ),
        pytest.param(
            np.zeros(5), BINARY_P, r"same batch size", id="binary batch"
        ),
    ],
)
def test_bad_shapes(y_true, y_pred, message):
    metric = ExpectedCalibrationError()
    with pytest.raises(ValueError, match=message):
        metric.update_state(y_true, y_pred)


@pytest.mark.parametrize(
    "weights, message",
    [
        (np.ones((4, 3)), r"`sample_weight` must be"),
        (np.ones((4, 1, 1)), r"`sample_weight` must be"),
        (np.ones(3), r"same batch size"),
    ],
)
def test_bad_sample_weight_shapes(weights, message):
    metric = ExpectedCalibrationError()
    with pytest.raises(ValueError, match=message):
        metric.update_state(HAND_LABELS, HAND_PROBS, sample_weight=weights)


# --- another backend --------------------------------------------------------


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_other_backends_compute_the_same_values(request, backend):
    # tf_data_backend_scenarios.py, in that backend's scenario chain.
    values = shared_result(request, backend, "calibration_metric")
    logits, labels = random_logits(**METRIC_DATA)
    assert values["accumulated"] == pytest.approx(
        tfp_ece(logits, labels, 15), abs=1e-6
    )
    assert values["evaluate"] == pytest.approx(values["direct"], abs=1e-5)
