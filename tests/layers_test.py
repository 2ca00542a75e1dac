"""Tests for `keras_mixup.MixupLayer`."""

import keras
import numpy as np
import pytest
import scipy.stats
import tensorflow as tf
from conftest import Recorder, blobs, decode_blends, mixed_lams

import keras_mixup


def test_identity_at_inference_and_mixing_while_training():
    layer = keras_mixup.MixupLayer(alpha=1.0, seed=3)
    x = np.eye(16, dtype="float32")
    np.testing.assert_array_equal(layer(x), x)
    np.testing.assert_array_equal(layer(x, training=False), x)
    mixed = layer(x, training=True).numpy()
    assert len(mixed_lams(mixed)) > 0
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
        assert len(mixed_lams(seen)) > 0
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
        draws.append(mixed_lams(out))
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


def test_trains_classifier_on_mixed_inputs_with_decreasing_loss():
    x, y = blobs()
    keras.utils.set_random_seed(0)
    recorder = Recorder(training_only=True)
    model = keras.Sequential(
        [
            keras.Input((8,)),
            keras_mixup.MixupLayer(alpha=0.4, seed=0),
            recorder,
            keras.layers.Dense(16, activation="relu"),
            keras_mixup.MixupLayer(alpha=0.4, seed=1),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile(
        keras.optimizers.Adam(0.02),
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
        jit_compile=False,  # the recorder runs Python
    )
    losses = model.fit(x, y, batch_size=32, epochs=6, shuffle=False, verbose=0)
    losses = losses.history["loss"]
    assert losses[-1] < 0.6 * losses[0]
    _, accuracy = model.evaluate(x, y, verbose=0)
    assert accuracy > 0.9
    # What the model trained on: every batch blended within itself, lam ~
    # Beta(alpha + 1, alpha) (inputs-only form; labels unmixed).
    assert len(recorder.seen) == 6 * 6
    batches = np.split(x, 6)
    lam = [
        decode_blends(seen, batches[step % 6])[0]
        for step, seen in enumerate(recorder.seen)
    ]
    lam = np.concatenate(lam)
    assert scipy.stats.kstest(lam, scipy.stats.beta(1.4, 0.4).cdf).pvalue > 1e-3


@pytest.mark.parametrize(
    "policy, jit_compile",
    # One XLA case: compiling the Beta sampler alone takes ~12 s on CPU.
    [("mixed_float16", False), ("mixed_bfloat16", True)],
)
def test_mixed_precision_and_xla(policy, jit_compile):
    keras.config.set_dtype_policy(policy)
    x, y = blobs(per_class=16)
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
    lam, _, _ = layer.engine.draw(4, inputs_only=True)
    assert lam.dtype == tf.float32
    hidden = tf.ones((4, 3), layer.compute_dtype)
    assert layer(hidden, training=True).dtype == layer.compute_dtype


def test_save_load_and_config_round_trip(tmp_path):
    layer = keras_mixup.MixupLayer(alpha=0.3, seed=4, name="mix")
    config = layer.get_config()
    assert config["alpha"] == 0.3 and config["seed"] == 4
    assert keras_mixup.MixupLayer.from_config(config).get_config() == config
    model = keras.Sequential([keras.Input((8,)), layer, keras.layers.Dense(3)])
    x, y = blobs(per_class=8)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, verbose=0)
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_array_equal(
        loaded.predict(x, verbose=0), model.predict(x, verbose=0)
    )
    assert loaded.layers[0].get_config() == config
