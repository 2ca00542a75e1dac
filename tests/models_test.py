"""Tests for `keras_mixup.MixupModel`."""

import keras
import numpy as np
import pytest
import scipy.stats
import tensorflow as tf

import keras_mixup

SIZE = 8  # batch size and width of the hand-built identity models


def _blobs(num_classes=3, per_class=64, features=8, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 3, size=(num_classes, features))
    y = np.repeat(np.arange(num_classes), per_class)
    x = centers[y] + rng.normal(size=(len(y), features))
    order = rng.permutation(len(y))
    return x[order].astype("float32"), y[order]


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


def _check_mixed_rows(mixed):
    """Every row is lam * e_i + (1 - lam) * e_p."""
    np.testing.assert_allclose(mixed.sum(axis=1), 1.0, atol=1e-6)
    off = mixed - np.diag(np.diag(mixed))
    assert np.all((off > 0).sum(axis=1) <= 1)


@pytest.mark.parametrize(
    "mix_at, steps, allowed",
    [("latent", 150, {0, 1, 2}), (["m2"], 8, {2}), ("input", 8, {0})],
)
def test_mix_point_choice_and_shared_lam_and_partner(mix_at, steps, allowed):
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

    model = keras_mixup.MixupModel(
        _power_model(), alpha=1.0, num_classes=SIZE, mix_at=mix_at, seed=3
    )
    model.compile(keras.optimizers.SGD(0.0), recording_loss)
    x = np.tile(np.eye(SIZE, dtype="float32"), (steps, 1))
    y = np.tile(np.arange(SIZE), steps)
    model.fit(x, y, batch_size=SIZE, shuffle=False, verbose=0)
    assert len(records) == steps
    counts = np.zeros(3, int)
    for y_true, y_pred in records:
        _check_mixed_rows(y_true)
        assert not np.array_equal(y_true, np.eye(SIZE))
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
    for _ in range(6):
        mixed_x, mixed_y, mixed_w, plan = model.mix(x, ids, weights)
        mixed_y = mixed_y.numpy()
        _check_mixed_rows(mixed_y)
        lam = np.diag(mixed_y)
        partner = np.argmax(mixed_y - np.diag(lam), axis=1)
        paired = lam < 1.0  # a row paired with itself shows no lam
        partner = np.where(paired, partner, np.arange(SIZE))
        w = weights.numpy()
        np.testing.assert_allclose(
            mixed_w, lam * w + (1 - lam) * w[partner], rtol=1e-6
        )
        if mix_at == "input" or int(plan.point) == 0:
            np.testing.assert_array_equal(mixed_x, mixed_y)
        else:
            np.testing.assert_array_equal(mixed_x, x)
        if mix_at == "latent":
            assert plan.lam.dtype == tf.float32
            np.testing.assert_allclose(
                plan.lam.numpy()[paired], lam[paired], atol=1e-6
            )
            np.testing.assert_array_equal(
                plan.partner_index.numpy()[paired], partner[paired]
            )
    # Float targets (regression) are blended as they are.
    model = keras_mixup.MixupModel(
        _power_model(), alpha=1.0, mix_at=mix_at, seed=0
    )
    _, mixed_t, _, _ = model.mix(x, targets)
    assert mixed_t.shape == (SIZE, 1) and mixed_t.dtype == tf.float32
    assert not np.array_equal(mixed_t, targets)


def test_lambda_follows_beta_alpha_alpha():
    alpha = 0.5
    model = keras_mixup.MixupModel(
        _power_model(), alpha=alpha, num_classes=64, seed=1
    )
    mix = tf.function(lambda: model.mix(tf.eye(64), tf.range(64))[1])
    lam = []
    for _ in range(40):
        mixed = mix().numpy()
        has_partner = (mixed - np.diag(np.diag(mixed))).max(axis=1) > 0
        lam.append(np.diag(mixed)[has_partner])
    lam = np.concatenate(lam)
    expected = scipy.stats.beta(alpha, alpha)
    assert scipy.stats.kstest(lam, expected.cdf).pvalue > 0.01


@pytest.mark.parametrize("mix_at", ["input", "latent"])
def test_trains_classifier_and_never_mixes_in_evaluate_or_predict(mix_at):
    x, y = _blobs()
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
    def __init__(self, call_mixup=True):
        super().__init__()
        self.call_mixup = call_mixup
        self.hidden = keras.layers.Dense(16, activation="relu")
        self.mix = keras_mixup.MixupLayer(name="sub_mix")
        self.head = keras.layers.Dense(3)

    def call(self, inputs):
        hidden = self.hidden(inputs)
        if self.call_mixup:
            hidden = self.mix(hidden)
        return self.head(hidden)


def test_wraps_unbuilt_nested_and_subclassed_models():
    x, y = _blobs(per_class=16)
    unbuilt = keras.Sequential(
        [
            keras.layers.Dense(8),
            keras.Sequential([keras_mixup.MixupLayer(name="nested")]),
            keras.layers.Dense(3),
        ]
    )
    cases = [
        (unbuilt, "latent", ["input", "nested"]),
        (NoTrainingArg(), ["sub_mix"], ["sub_mix"]),
    ]
    for backbone, mix_at, points in cases:
        model = keras_mixup.MixupModel(
            backbone, num_classes=3, mix_at=mix_at, seed=0
        )
        assert model.mix_points == points
        model.compile(
            "adam", keras.losses.CategoricalCrossentropy(from_logits=True)
        )
        history = model.fit(x, y, batch_size=16, epochs=1, verbose=0)
        assert np.isfinite(history.history["loss"][0])


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
    x, y = _blobs(per_class=16)
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
    x, y = _blobs(per_class=16)
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


def test_argument_errors():
    backbone = _classifier()
    with pytest.raises(
        ValueError, match="`model` must be a keras.Model.*Dense"
    ):
        keras_mixup.MixupModel(keras.layers.Dense(3))
    with pytest.raises(ValueError, match="`model` must be a keras.Model"):
        keras_mixup.MixupModel(lambda x: x)
    with pytest.raises(ValueError, match="`alpha` must be a finite number"):
        keras_mixup.MixupModel(backbone, alpha=0)
    with pytest.raises(ValueError, match="`num_classes` must be an int >= 2"):
        keras_mixup.MixupModel(backbone, num_classes=1)
    names = r"MixupLayers in the model: \['mix_1', 'mix_2'\]"
    cases = [
        ("hidden", "must be 'input', 'latent' or a list.*'hidden'.*" + names),
        (["mix_3"], "names 'mix_3'.*no layer of that name.*" + names),
        (["dense"], "names 'dense', a Dense layer.*only MixupLayers"),
        ([], "non-empty list"),
        (["mix_1", "mix_1"], "names a point twice"),
        ([3], "non-empty list of MixupLayer names"),
    ]
    for mix_at, match in cases:
        with pytest.raises(ValueError, match=match):
            keras_mixup.MixupModel(
                backbone if mix_at != ["dense"] else _named_dense_model(),
                mix_at=mix_at,
            )
    plain = keras.Sequential([keras.Input((8,)), keras.layers.Dense(3)])
    with pytest.raises(ValueError, match="model has no MixupLayer"):
        keras_mixup.MixupModel(plain, mix_at="latent")


def _named_dense_model():
    return keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(3, name="dense")]
    )


def test_trace_time_errors():
    x, y = _blobs(per_class=4)
    model = keras_mixup.MixupModel(_classifier())
    model.compile("adam", "categorical_crossentropy")
    with pytest.raises(ValueError, match="Integer labels.*`num_classes`"):
        model.fit(x, y, epochs=1, verbose=0)
    model = keras_mixup.MixupModel(
        NoTrainingArg(call_mixup=False), num_classes=3, mix_at="latent"
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
    assert (config["pairing"], config["knn_k"]) == ("same_class", 5)
    restored = keras_mixup.MixupModel.from_config(config)
    assert restored.engine.options["pairing"] == "same_class"
    with pytest.raises(ValueError, match="`pairing` must be one of"):
        keras_mixup.MixupModel(backbone, pairing="nearest")
