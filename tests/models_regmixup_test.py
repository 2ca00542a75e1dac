"""RegMixup: `MixupModel(..., clean_loss_weight=w)` trains on
`mixed loss + w * clean loss`, with a draw injected for exact values."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import blobs

import keras_mixup

X = np.array(
    [[1.0, 0.0, 2.0], [0.5, -1.0, 0.0], [-1.0, 1.0, 1.0], [2.0, 2.0, -0.5]],
    "float32",
)
Y = np.array([0, 1, 1, 0])
LAM = np.array([0.7, 0.2, 0.5, 0.9], "float32")
PARTNER = np.array([1, 0, 3, 2], "int32")
DECAY = 0.01
LEARNING_RATE = 0.1


def linear(mixup_layer=False):
    layers = [keras.Input((3,))]
    if mixup_layer:
        layers.append(keras_mixup.MixupLayer(name="mix"))
    layers.append(
        keras.layers.Dense(
            2,
            kernel_initializer=keras.initializers.RandomNormal(seed=1),
            bias_initializer="ones",
            kernel_regularizer=keras.regularizers.L2(DECAY),
        )
    )
    return keras.Sequential(layers)


def injected(weight, *, mix_at="input", mixup_layer=False, **compile_args):
    """A compiled MixupModel whose every draw is `(LAM, PARTNER)`."""
    model = keras_mixup.MixupModel(
        linear(mixup_layer),
        num_classes=2,
        mix_at=mix_at,
        clean_loss_weight=weight,
        seed=0,
    )
    model.engine.draw = lambda *args, **kwargs: (
        tf.constant(LAM),
        tf.constant(PARTNER),
    )
    model.compile(
        keras.optimizers.SGD(LEARNING_RATE),
        keras.losses.CategoricalCrossentropy(from_logits=True),
        **compile_args,
    )
    return model


def expected_step(model, weight):
    """The losses and the weights after one SGD step, by hand."""
    kernel, bias = (tf.Variable(v) for v in model.get_weights())
    one_hot = np.eye(2, dtype="float32")[Y]
    mixed_x = LAM[:, None] * X + (1 - LAM[:, None]) * X[PARTNER]
    mixed_y = LAM[:, None] * one_hot + (1 - LAM[:, None]) * one_hot[PARTNER]

    def cross_entropy(x, y):
        logits = tf.matmul(x, kernel) + bias
        return tf.reduce_mean(
            tf.nn.softmax_cross_entropy_with_logits(y, logits)
        )

    with tf.GradientTape() as tape:
        clean = cross_entropy(X, one_hot)
        mixed = cross_entropy(mixed_x, mixed_y)
        mixed += DECAY * tf.reduce_sum(tf.square(kernel))  # counted once
        total = mixed + weight * clean
    grads = tape.gradient(total, [kernel, bias])
    after = [
        v - LEARNING_RATE * g
        for v, g in zip([kernel, bias], grads, strict=True)
    ]
    losses = {"loss": total, "mixed_loss": mixed, "clean_loss": clean}
    return {k: float(v) for k, v in losses.items()}, after


@pytest.mark.parametrize("weight, jit_compile", [(0.5, False), (2.0, True)])
def test_the_step_trains_on_mixed_plus_weighted_clean_loss(weight, jit_compile):
    model = injected(weight, jit_compile=jit_compile)
    losses, after = expected_step(model, weight)
    history = model.fit(X, Y, batch_size=4, shuffle=False, verbose=0)
    for name, value in losses.items():
        np.testing.assert_allclose(history.history[name], [value], rtol=1e-5)
    for got, want in zip(model.get_weights(), after, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_clean_pass_leaves_mixup_layers_alone_in_latent_mode():
    model = injected(1.0, mix_at="latent", mixup_layer=True)
    logits = model.predict(X, verbose=0)  # never mixes
    clean = keras.losses.CategoricalCrossentropy(from_logits=True)(
        np.eye(2)[Y], logits
    )
    history = model.fit(X, Y, batch_size=4, shuffle=False, verbose=0)
    np.testing.assert_allclose(history.history["clean_loss"], [clean], 1e-5)


def test_without_a_weight_the_step_is_plain_mixup():
    model = injected(0.0, metrics=["accuracy"])
    losses, after = expected_step(model, 0.0)
    history = model.fit(X, Y, batch_size=4, shuffle=False, verbose=0)
    assert set(history.history) == {"loss", "accuracy"}
    np.testing.assert_allclose(
        history.history["loss"], [losses["mixed_loss"]], rtol=1e-5
    )
    for got, want in zip(model.get_weights(), after, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_logs_every_epoch_and_evaluate_reports_only_the_loss():
    x, y = blobs(num_classes=2, per_class=32, features=3)
    model = keras_mixup.MixupModel(
        linear(), alpha=10.0, num_classes=2, clean_loss_weight=1.0, seed=3
    )
    model.compile(
        "adam",
        keras.losses.CategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    history = model.fit(
        x, y, batch_size=16, epochs=3, validation_data=(x, y), verbose=0
    ).history
    assert {"mixed_loss", "clean_loss", "val_loss"} <= set(history)
    assert "val_mixed_loss" not in history and "val_clean_loss" not in history
    # Means over the epoch's batches: the relation holds if every tracker
    # is reset at the start of each epoch.
    np.testing.assert_allclose(
        history["loss"],
        np.add(history["mixed_loss"], history["clean_loss"]),
        rtol=1e-5,
    )
    assert history["clean_loss"][-1] < history["clean_loss"][0]
    assert set(model.evaluate(x, y, verbose=0, return_dict=True)) == {
        "loss",
        "accuracy",
    }


def test_clean_loss_weight_round_trips_through_a_saved_model(tmp_path):
    model = keras_mixup.MixupModel(linear(), clean_loss_weight=1.5)
    model(X)
    assert model.clean_loss_weight == 1.5
    path = tmp_path / "regmixup.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    assert restored.clean_loss_weight == 1.5
    assert restored.get_config()["clean_loss_weight"] == 1.5


@pytest.mark.parametrize("jit_compile", [True, False])
def test_cutmix_switch_with_regmixup_trains_under_xla(jit_compile):
    x = np.random.default_rng(0).uniform(size=(32, 8, 8, 3)).astype("f4")
    y = np.arange(32) % 4
    backbone = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.Conv2D(4, 3),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(4, activation="softmax"),
        ]
    )
    model = keras_mixup.MixupModel(
        backbone,
        alpha=0.8,
        num_classes=4,
        cutmix_alpha=1.0,
        switch_prob=0.5,
        clean_loss_weight=0.5,
        seed=0,
    )
    model.compile("adam", "categorical_crossentropy", jit_compile=jit_compile)
    logs = model.fit(x, y, batch_size=8, epochs=2, verbose=0).history
    for epoch in range(2):
        total = logs["mixed_loss"][epoch] + 0.5 * logs["clean_loss"][epoch]
        assert logs["loss"][epoch] == pytest.approx(total, rel=1e-5)
        assert np.isfinite(logs["loss"][epoch])
