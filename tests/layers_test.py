"""Tests for `keras_mixup.MixupLayer`."""

import keras
import numpy as np
import pytest
import scipy.stats
import tensorflow as tf

import keras_mixup


def _recover_lambda(mixed):
    """lam of every row of a mixed identity matrix whose partner is another
    row: row i is lam * e_i + (1 - lam) * e_p, so lam = mixed[i, i]."""
    mixed = np.asarray(mixed, np.float64)
    size = mixed.shape[0]
    lam = np.diag(mixed)
    off = mixed - np.diag(lam)
    partner = np.argmax(off, axis=1)
    has_partner = off[np.arange(size), partner] > 0
    # Rows are convex combinations of e_i and at most one other e_p.
    np.testing.assert_allclose(mixed.sum(axis=1), 1.0, atol=1e-6)
    assert np.all((off > 0).sum(axis=1) <= 1)
    return lam[has_partner], partner


class Recorder(keras.layers.Layer):
    """Identity layer that keeps what it sees (models run eagerly)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seen = []

    def call(self, inputs):
        self.seen.append(np.array(inputs))
        return inputs


def _blobs(num_classes=3, per_class=64, features=8, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 3, size=(num_classes, features))
    y = np.repeat(np.arange(num_classes), per_class)
    x = centers[y] + rng.normal(size=(len(y), features))
    order = rng.permutation(len(y))
    return x[order].astype("float32"), y[order]


def test_identity_at_inference_and_mixing_while_training():
    layer = keras_mixup.MixupLayer(alpha=1.0, seed=3)
    x = np.eye(16, dtype="float32")
    np.testing.assert_array_equal(layer(x), x)
    np.testing.assert_array_equal(layer(x, training=False), x)
    mixed = layer(x, training=True).numpy()
    lam, _ = _recover_lambda(mixed)
    assert lam.size > 0 and not np.array_equal(mixed, x)
    # Integer inputs come out in the compute dtype, mixed or not.
    images = np.arange(16 * 4, dtype="uint8").reshape(16, 4)
    assert layer(images).dtype == tf.float32
    np.testing.assert_array_equal(layer(images), images.astype("float32"))
    assert layer(images, training=True).dtype == tf.float32


def test_mixes_during_fit_only():
    recorder = Recorder()
    model = keras.Sequential(
        [
            keras.Input((8,)),
            keras_mixup.MixupLayer(alpha=1.0, seed=0),
            recorder,
            keras.layers.Dense(8),
        ]
    )
    model.compile("sgd", "mse", run_eagerly=True)
    x = np.eye(8, dtype="float32")
    model.fit(x, x, batch_size=8, epochs=2, shuffle=False, verbose=0)
    assert len(recorder.seen) == 2
    for seen in recorder.seen:
        lam, _ = _recover_lambda(seen)
        assert lam.size > 0
    recorder.seen.clear()
    model.predict(x, verbose=0)
    model.evaluate(x, x, verbose=0)
    assert len(recorder.seen) == 2
    for seen in recorder.seen:
        np.testing.assert_array_equal(seen, x)


@pytest.mark.parametrize("form", ["tensor", "dict"])
def test_lambda_distribution(form):
    """Tensor form: lam ~ Beta(alpha + 1, alpha); dict form: Beta(alpha,
    alpha) (and labels share lam and partners exactly)."""
    alpha, size = 0.5, 64
    layer = keras_mixup.MixupLayer(alpha=alpha, seed=7)
    x = np.eye(size, dtype="float32")
    if form == "tensor":
        mix = tf.function(lambda: layer(x, training=True))
    else:
        mix = tf.function(lambda: layer({"inputs": x, "labels": x}))
    draws = []
    for _ in range(60):
        out = mix()
        if form == "dict":
            np.testing.assert_array_equal(out["inputs"], out["labels"])
            out = out["inputs"]
        draws.append(_recover_lambda(out.numpy())[0])
    lam = np.concatenate(draws)
    assert lam.size > 3000
    expected = (
        scipy.stats.beta(alpha + 1, alpha)
        if form == "tensor"
        else scipy.stats.beta(alpha, alpha)
    )
    other = (
        scipy.stats.beta(alpha, alpha)
        if form == "tensor"
        else scipy.stats.beta(alpha + 1, alpha)
    )
    assert scipy.stats.kstest(lam, expected.cdf).pvalue > 0.01
    assert scipy.stats.kstest(lam, other.cdf).pvalue < 1e-6
    np.testing.assert_allclose(lam.mean(), expected.mean(), atol=0.02)


def test_dict_form_keys_alias_and_training_false():
    layer = keras_mixup.MixupLayer(alpha=1.0, seed=1)
    x = np.eye(8, dtype="float32")
    out = layer({"images": x, "labels": x})
    assert set(out) == {"images", "labels"}
    np.testing.assert_array_equal(out["images"], out["labels"])
    assert not np.array_equal(out["images"], x)
    same = layer({"inputs": x, "labels": x}, training=False)
    np.testing.assert_array_equal(same["inputs"], x)
    # In a tf.data pipeline, like keras.layers.MixUp.
    ds = tf.data.Dataset.from_tensor_slices({"images": x, "labels": x})
    batch = next(iter(ds.batch(8).map(layer)))
    np.testing.assert_array_equal(batch["images"], batch["labels"])


@pytest.mark.parametrize(
    "data, match",
    [
        ({"inputs": np.ones((4, 2), "float32")}, "exactly one of"),
        (
            {
                "inputs": np.ones((4, 2), "float32"),
                "images": np.ones((4, 2), "float32"),
                "labels": np.ones((4, 2), "float32"),
            },
            "exactly one of",
        ),
        (
            {
                "inputs": np.ones((4, 2), "float32"),
                "labels": np.ones((4, 2), "float32"),
                "boxes": np.ones((4, 2), "float32"),
            },
            r"received keys \['boxes', 'inputs', 'labels'\]",
        ),
        (
            {"inputs": np.ones((4, 2), "float32"), "labels": np.arange(4)},
            "float labels.*int64",
        ),
    ],
)
def test_dict_form_errors(data, match):
    with pytest.raises(ValueError, match=match):
        keras_mixup.MixupLayer()(data)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"alpha": 0.0}, "`alpha` must be a finite number > 0.*0.0"),
        ({"alpha": -1}, "`alpha` must be a finite number > 0"),
        ({"alpha": float("nan")}, "`alpha` must be a finite number > 0"),
        ({"alpha": "0.2"}, "`alpha` must be a finite number > 0.*str"),
        ({"seed": 1.5}, "`seed` must be an int or None; received 1.5"),
    ],
)
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        keras_mixup.MixupLayer(**kwargs)


def test_string_input_raises():
    with pytest.raises(ValueError, match="must hold numbers"):
        keras_mixup.MixupLayer()(tf.constant([["a"], ["b"]]), training=True)


def test_seed_reproducible():
    x = np.eye(16, dtype="float32")
    first = keras_mixup.MixupLayer(seed=5)(x, training=True)
    again = keras_mixup.MixupLayer(seed=5)(x, training=True)
    other = keras_mixup.MixupLayer(seed=6)(x, training=True)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_trains_classifier_with_decreasing_loss():
    x, y = _blobs()
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((8,)),
            keras_mixup.MixupLayer(alpha=0.4, seed=0),
            keras.layers.Dense(16, activation="relu"),
            keras_mixup.MixupLayer(alpha=0.4, seed=1),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile(
        keras.optimizers.Adam(0.02),
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    losses = model.fit(x, y, batch_size=32, epochs=6, verbose=0)
    losses = losses.history["loss"]
    assert losses[-1] < 0.6 * losses[0]
    _, accuracy = model.evaluate(x, y, verbose=0)
    assert accuracy > 0.9


@pytest.mark.parametrize(
    "policy, jit_compile",
    # One XLA case: compiling the Beta sampler alone takes ~12 s on CPU.
    [("mixed_float16", False), ("mixed_bfloat16", True)],
)
def test_mixed_precision_and_xla(policy, jit_compile):
    keras.config.set_dtype_policy(policy)
    x, y = _blobs(per_class=16)
    layer = keras_mixup.MixupLayer(alpha=0.2, seed=0)
    model = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(16, activation="relu"),
            layer,
            keras.layers.Dense(3),
            keras.layers.Activation("softmax", dtype="float32"),
        ]
    )
    model.compile(
        "adam", "sparse_categorical_crossentropy", jit_compile=jit_compile
    )
    assert model.jit_compile == jit_compile
    history = model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    lam, _ = layer.engine.draw(4, inputs_only=True)
    assert lam.dtype == tf.float32
    hidden = tf.ones((4, 3), layer.compute_dtype)
    assert layer(hidden, training=True).dtype == layer.compute_dtype


def test_save_load_and_config_round_trip(tmp_path):
    layer = keras_mixup.MixupLayer(alpha=0.3, seed=4, name="mix")
    config = layer.get_config()
    assert config["alpha"] == 0.3 and config["seed"] == 4
    assert keras_mixup.MixupLayer.from_config(config).get_config() == config
    model = keras.Sequential([keras.Input((8,)), layer, keras.layers.Dense(3)])
    x, y = _blobs(per_class=8)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, verbose=0)
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_array_equal(
        loaded.predict(x, verbose=0), model.predict(x, verbose=0)
    )
    assert loaded.layers[0].get_config() == config
