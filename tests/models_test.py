"""Tests for `keras_mixup.MixupModel`."""

import keras
import numpy as np
import pytest
import scipy.stats
import tensorflow as tf
from conftest import blobs, decode_identity_rows, mixed_lams

import keras_mixup

SIZE = 8  # batch size and width of the hand-built identity models


def _classifier(features=8, num_classes=3):
    return keras.Sequential(
        [
            keras.Input((features,)),
            keras.layers.Dense(16, activation="relu"),
            keras_mixup.MixupLayer(name="mix_1"),
            keras.layers.Dense(16, activation="relu"),
            keras_mixup.MixupLayer(name="mix_2"),
            keras.layers.Dense(num_classes, activation="softmax"),
        ]
    )


def _power_model():
    """input -> square -> m1 -> square -> m2 -> identity Dense.

    On one-hot rows, squaring is the identity, so mixing at the input, at
    m1 or at m2 gives the mixed rows to the power 4, 2 or 1: the output
    tells which point mixed, and compares exactly with the mixed labels.
    """
    inputs = keras.Input((SIZE,))
    hidden = keras.layers.Multiply()([inputs, inputs])
    hidden = keras_mixup.MixupLayer(name="m1")(hidden)
    hidden = keras.layers.Multiply()([hidden, hidden])
    hidden = keras_mixup.MixupLayer(name="m2")(hidden)
    outputs = keras.layers.Dense(
        SIZE, use_bias=False, kernel_initializer="identity"
    )(hidden)
    return keras.Model(inputs, outputs)


POWERS = (4, 2, 1)  # input, m1, m2


def identity_dense():
    return keras.layers.Dense(
        SIZE, use_bias=False, kernel_initializer="identity"
    )


def fit_and_record(model, steps):
    """Fits `model` for `steps` steps on batches of the SIZE identity rows
    (labels: their ids), without learning, and returns what each step's
    loss saw: `[(y_true, y_pred), ...]`."""
    records = []

    def record(y_true, y_pred):
        records.append((y_true.numpy(), y_pred.numpy()))
        return 0.0

    def recording_loss(y_true, y_pred):
        recorded = tf.py_function(
            record,
            [tf.stop_gradient(y_true), tf.stop_gradient(y_pred)],
            tf.float32,
        )
        recorded = tf.reshape(recorded, [])
        error = keras.ops.mean(keras.ops.square(y_true - y_pred), axis=-1)
        return error + 0.0 * recorded

    model.compile(keras.optimizers.SGD(0.0), recording_loss)
    x = np.tile(np.eye(SIZE, dtype="float32"), (steps, 1))
    y = np.tile(np.arange(SIZE), steps)
    model.fit(x, y, batch_size=SIZE, shuffle=False, verbose=0)
    assert len(records) == steps
    return records


def check_mixed_labels(y_true):
    """The labels are the identity rows mixed, some of them with another."""
    lam, partner = decode_identity_rows(y_true, np.arange(SIZE))
    assert np.any(partner != np.arange(SIZE))
    return lam, partner


@pytest.mark.parametrize(
    "mix_at, steps, allowed",
    [("latent", 150, {0, 1, 2}), (["m2"], 8, {2}), ("input", 8, {0})],
)
def test_mix_point_choice_and_shared_lam_and_partner(mix_at, steps, allowed):
    model = keras_mixup.MixupModel(
        _power_model(), alpha=1.0, num_classes=SIZE, mix_at=mix_at, seed=3
    )
    counts = np.zeros(3, int)
    for y_true, y_pred in fit_and_record(model, steps):
        check_mixed_labels(y_true)
        # Hidden states and labels: same lam and partner, exactly.
        matches = [
            k
            for k, power in enumerate(POWERS)
            if np.allclose(y_pred, y_true**power, rtol=0, atol=1e-6)
        ]
        assert len(matches) == 1
        counts[matches[0]] += 1
    assert set(np.flatnonzero(counts)) == allowed
    if len(allowed) > 1:
        # Each point is chosen with equal frequency.
        assert scipy.stats.chisquare(counts).pvalue > 0.01
        assert counts.min() > steps / 3 - 25


@pytest.mark.parametrize("mix_at", ["input", "latent"])
def test_mix_blends_labels_and_weights_with_the_inputs(mix_at):
    model = keras_mixup.MixupModel(
        _power_model(), alpha=1.0, num_classes=SIZE, mix_at=mix_at, seed=0
    )
    x = tf.eye(SIZE)
    ids = tf.range(SIZE)
    weights = tf.range(1.0, SIZE + 1.0)
    targets = tf.range(SIZE, dtype=tf.float32)[:, None] * 10.0
    inputs_mixed = 0
    for _ in range(6):
        mixed_x, mixed_y, mixed_w = model.mix(x, ids, weights)[:3]
        lam, partner = check_mixed_labels(mixed_y)
        w = weights.numpy()
        np.testing.assert_allclose(
            mixed_w, lam * w + (1 - lam) * w[partner], rtol=1e-6
        )
        # The inputs are mixed with the labels, or left to a MixupLayer
        # (latent: which one is the fit test's business).
        if np.array_equal(mixed_x, mixed_y):
            inputs_mixed += 1
        else:
            np.testing.assert_array_equal(mixed_x, x)
    assert inputs_mixed == 6 if mix_at == "input" else inputs_mixed < 6
    # Float targets (regression) are blended as they are (without
    # `num_classes`, which is for class ids).
    model = keras_mixup.MixupModel(
        _power_model(), alpha=1.0, mix_at=mix_at, seed=0
    )
    mixed_t = model.mix(x, targets)[1]
    assert mixed_t.shape == (SIZE, 1) and mixed_t.dtype == tf.float32
    assert not np.array_equal(mixed_t, targets)


def test_lambda_follows_beta_alpha_alpha():
    alpha = 0.5
    model = keras_mixup.MixupModel(
        _power_model(), alpha=alpha, num_classes=64, seed=1
    )
    mix = tf.function(lambda: model.mix(tf.eye(64), tf.range(64))[1])
    lam = np.concatenate([mixed_lams(mix()) for _ in range(40)])
    expected = scipy.stats.beta(alpha, alpha)
    assert scipy.stats.kstest(lam, expected.cdf).pvalue > 0.01


@pytest.mark.parametrize("mix_at", ["input", "latent"])
def test_trains_classifier_and_never_mixes_in_evaluate_or_predict(mix_at):
    x, y = blobs()
    keras.utils.set_random_seed(0)
    backbone = _classifier()
    model = keras_mixup.MixupModel(
        backbone, alpha=0.4, num_classes=3, mix_at=mix_at, seed=0
    )
    model.compile(
        keras.optimizers.Adam(0.02),
        "categorical_crossentropy",
        metrics=["accuracy"],
    )
    history = model.fit(x, y, batch_size=32, epochs=6, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.6 * losses[0]
    probabilities = backbone(x, training=False).numpy()
    np.testing.assert_allclose(
        model.predict(x, verbose=0), probabilities, rtol=1e-6, atol=1e-7
    )
    np.testing.assert_array_equal(model(x, training=True), probabilities)
    expected_loss = keras.losses.categorical_crossentropy(
        np.eye(3)[y], probabilities
    )
    expected_accuracy = np.mean(probabilities.argmax(axis=1) == y)
    loss, accuracy = model.evaluate(x, y, verbose=0)
    assert accuracy > 0.9
    np.testing.assert_allclose(
        [loss, accuracy],
        [np.mean(expected_loss), expected_accuracy],
        rtol=1e-5,
    )


class NoTrainingArg(keras.Model):
    """Subclassed, `call` without `training`: identity, MixupLayer,
    identity on SIZE features."""

    def __init__(self, call_mixup=True):
        super().__init__()
        self.call_mixup = call_mixup
        self.hidden = identity_dense()
        self.mix = keras_mixup.MixupLayer(name="sub_mix")
        self.head = identity_dense()

    def call(self, inputs):
        hidden = self.hidden(inputs)
        if self.call_mixup:
            hidden = self.mix(hidden)
        return self.head(hidden)


def test_wraps_unbuilt_nested_and_subclassed_models():
    # Identity models: whichever point mixes, the output is the mixed
    # identity rows, equal to the mixed labels; an ignored point would
    # leave the output unmixed.
    unbuilt = keras.Sequential(
        [
            identity_dense(),
            keras.Sequential([keras_mixup.MixupLayer(name="nested")]),
            identity_dense(),
        ]
    )
    cases = [
        (unbuilt, "latent", ["input", "nested"]),
        (NoTrainingArg(), ["sub_mix"], ["sub_mix"]),
    ]
    for backbone, mix_at, points in cases:
        model = keras_mixup.MixupModel(
            backbone, alpha=1.0, num_classes=SIZE, mix_at=mix_at, seed=0
        )
        assert model.mix_points == points
        for y_true, y_pred in fit_and_record(model, steps=6):
            check_mixed_labels(y_true)
            np.testing.assert_allclose(y_pred, y_true, atol=1e-6)


def _dict_input_classifier():
    first = keras.Input((4,), name="first")
    second = keras.Input((4,), name="second")
    hidden = keras.layers.Concatenate()([first, second])
    hidden = keras.layers.Dense(16, activation="relu")(hidden)
    hidden = keras_mixup.MixupLayer(name="mix_1")(hidden)
    hidden = keras.layers.Dense(16, activation="relu")(hidden)
    hidden = keras_mixup.MixupLayer(name="mix_2")(hidden)
    outputs = keras.layers.Dense(3, activation="softmax")(hidden)
    return keras.Model({"first": first, "second": second}, outputs)


def test_dict_inputs_save_load_and_config_round_trip(tmp_path):
    x, y = blobs(per_class=16)
    inputs = {"first": x[:, :4], "second": x[:, 4:]}
    model = keras_mixup.MixupModel(
        _dict_input_classifier(),
        alpha=0.3,
        num_classes=3,
        mix_at=["input", "mix_2"],
        seed=2,
        name="wrapped",
    )
    config = model.get_config()
    assert {k: config[k] for k in ("alpha", "num_classes", "mix_at")} == {
        "alpha": 0.3,
        "num_classes": 3,
        "mix_at": ["input", "mix_2"],
    }
    assert config["seed"] == 2 and config["name"] == "wrapped"
    clone = keras_mixup.MixupModel.from_config(config)
    assert clone.get_config() == config
    assert clone.mix_points == ["input", "mix_2"]
    model.compile("adam", "categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(inputs, y, batch_size=16, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert isinstance(loaded, keras_mixup.MixupModel)
    assert loaded.mix_points == ["input", "mix_2"]
    predictions = model.predict(inputs, verbose=0)
    assert predictions.shape == (48, 3)
    np.testing.assert_array_equal(
        loaded.predict(inputs, verbose=0), predictions
    )


class CountingMixupModel(keras_mixup.MixupModel):
    traces = 0

    def train_step(self, data):
        CountingMixupModel.traces += 1
        return super().train_step(data)


@pytest.mark.parametrize(
    "policy, jit_compile",
    # One XLA case: compiling the Beta sampler alone takes ~12 s on CPU.
    [("mixed_float16", True), ("mixed_bfloat16", False)],
)
def test_mixed_precision_xla_and_a_single_trace(policy, jit_compile):
    keras.config.set_dtype_policy(policy)
    x, y = blobs(per_class=16)
    backbone = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(16, activation="relu"),
            keras_mixup.MixupLayer(),
            keras.layers.Dense(3),
            keras.layers.Activation("softmax", dtype="float32"),
        ]
    )
    CountingMixupModel.traces = 0
    model = CountingMixupModel(
        backbone, alpha=0.2, num_classes=3, mix_at="latent", seed=0
    )
    model.compile("adam", "categorical_crossentropy", jit_compile=jit_compile)
    assert model.jit_compile == jit_compile
    history = model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    # tf.function traces twice when the first trace creates variables (the
    # optimizer's); then the steps of this fit and of the next reuse it.
    traces = CountingMixupModel.traces
    assert traces <= 2
    model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    assert CountingMixupModel.traces == traces
    _, _, _, plan = model.mix(tf.constant(x[:4]), y[:4])
    assert plan.lam.dtype == tf.float32


def test_trace_time_errors():
    x, y = blobs(per_class=4)
    model = keras_mixup.MixupModel(_classifier())
    model.compile("adam", "categorical_crossentropy")
    with pytest.raises(ValueError, match="Integer labels.*`num_classes`"):
        model.fit(x, y, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="Integer labels.*`num_classes`"):
        model.fit(x, y, epochs=1, verbose=0)  # the same error, not Keras's
    # The refused trace leaves the model usable: the next fit, with
    # labels it takes, trains (a plain Keras model on TensorFlow cannot:
    # "Creating variables on a non-first call to a function").
    one_hot = keras.utils.to_categorical(y, 3)
    model.fit(x, one_hot, batch_size=4, epochs=1, verbose=0)
    assert int(model.optimizer.iterations) == len(x) // 4
    model = keras_mixup.MixupModel(
        NoTrainingArg(call_mixup=False), num_classes=SIZE, mix_at="latent"
    )
    model.compile("adam", "categorical_crossentropy")
    with pytest.raises(ValueError, match=r"\['sub_mix'\].*never called"):
        model.fit(x, y, epochs=1, verbose=0)


def test_pairing_is_forwarded_and_round_trips():
    backbone = keras.Sequential([keras.Input((8,)), keras.layers.Dense(2)])
    model = keras_mixup.MixupModel(
        backbone, alpha=1.0, num_classes=2, pairing="same_class", seed=3
    )
    labels = np.array([0, 1, 0, 1, 0, 1, 0, 1])
    x, y, _, _ = model.mix(tf.eye(8), tf.constant(labels))
    # Same-class partners: labels stay pure, inputs mix within the class.
    np.testing.assert_array_equal(y, np.eye(2)[labels])
    rows, cols = np.nonzero(x.numpy())
    np.testing.assert_array_equal(labels[rows], labels[cols])
    assert not np.array_equal(x, np.eye(8))
    config = model.get_config()
    assert config["pairing"] == "same_class"
    assert "knn_k" not in config  # the same-class pairing ignores it
    restored = keras_mixup.MixupModel.from_config(config)
    assert restored.engine.options["pairing"] == "same_class"
    with pytest.raises(ValueError, match="`pairing` must be one of"):
        keras_mixup.MixupModel(backbone, pairing="nearest")


def test_refuses_mixup_layer_options_the_model_would_not_use(tmp_path):
    def network(**layer_options):
        return keras.Sequential(
            [
                keras.Input((8,)),
                keras_mixup.MixupLayer(name="hidden_mix", **layer_options),
                keras.layers.Dense(3, activation="softmax"),
            ]
        )

    for mix_at in ("latent", "input"):  # picked, or passed through
        with pytest.raises(ValueError) as raised:
            keras_mixup.MixupModel(
                network(alpha=0.4), alpha=1.0, num_classes=3, mix_at=mix_at
            )
        assert str(raised.value) == (
            "A MixupModel mixes at its MixupLayers with its own options and "
            "passes the others through, so MixupLayer 'hidden_mix''s "
            "alpha=0.4 would not be used (the MixupModel's alpha is 1.0). "
            "Set alpha on the MixupModel, and leave the layer's at its "
            "default (0.2)."
        )
    with pytest.raises(ValueError, match="'hidden_mix''s prob=0.5 "):
        keras_mixup.MixupModel(network(prob=0.5), mix_at="latent")
    # The layer's default, or the model's own value, is no conflict.
    keras_mixup.MixupModel(network(), alpha=1.0, mix_at="latent")
    same = keras_mixup.MixupModel(
        network(alpha=1.0, seed=3), alpha=1.0, seed=3, mix_at="latent"
    )
    # A file saved with a conflict (before this check) loads, warning.
    config = same.get_config()
    for layer in config["model"]["config"]["layers"]:
        if layer["config"]["name"] == "hidden_mix":
            layer["config"]["alpha"] = 0.4
    with pytest.warns(UserWarning, match="'hidden_mix''s alpha=0.4 "):
        loaded = keras_mixup.MixupModel.from_config(config)
    assert loaded.alpha == 1.0
