"""Tests for `MixupGAN` and the `blending.blend_pair` it blends with."""

import json

import keras
import numpy as np
import pytest
import scipy.stats
import tensorflow as tf
from conftest import Recorder, decode_blends

import keras_mixup
from keras_mixup import blending


def mlp(input_dim, output_dim, width=32, depth=2, first=(), last=()):
    layers = [keras.Input((input_dim,)), *first]
    for _ in range(depth):
        layers.append(keras.layers.Dense(width, activation="relu"))
    layers.append(keras.layers.Dense(output_dim))
    return keras.Sequential([*layers, *last])


def gan(
    alpha=0.2,
    seed=0,
    latent_dim=2,
    data_dim=2,
    run_eagerly=False,
    recorders=None,
    **kwargs,
):
    """A MixupGAN of two MLPs, compiled. With `recorders=(generated,
    seen)`, the generator's output goes through `generated` and the
    discriminator's input through `seen` (and XLA is off)."""
    keras.utils.set_random_seed(seed)
    generated, seen = recorders or (None, None)
    model = keras_mixup.MixupGAN(
        mlp(latent_dim, data_dim, last=[generated] if generated else ()),
        mlp(data_dim, 1, first=[seen] if seen else ()),
        latent_dim=latent_dim,
        alpha=alpha,
        seed=seed,
        **kwargs,
    )
    model.compile(
        d_optimizer=keras.optimizers.Adam(1e-3, beta_1=0.5),
        g_optimizer=keras.optimizers.Adam(1e-3, beta_1=0.5),
        run_eagerly=run_eagerly,  # faster than tracing for a few steps
        jit_compile=False if recorders else "auto",
    )
    return model


def ring(n, seed):
    rng = np.random.default_rng(seed)
    angles = 2 * np.pi * rng.integers(8, size=n) / 8
    points = 2 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return (points + 0.05 * rng.standard_normal((n, 2))).astype("float32")


def sliced_wasserstein(a, b, seed=0):
    rng = np.random.default_rng(seed)
    directions = rng.standard_normal((2, 128))
    directions /= np.linalg.norm(directions, axis=0)
    pa, pb = np.sort(a @ directions, 0), np.sort(b @ directions, 0)
    return float(np.mean(np.abs(pa - pb)))


# --- blending.blend_pair ------------------------------------------------------


def test_blend_pair_is_the_convex_combination():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((5, 3, 2)).astype("float32")
    b = rng.standard_normal((5, 3, 2)).astype("float32")
    lam = np.array([0.0, 0.25, 0.5, 0.9, 1.0], "float32")
    mixed = blending.blend_pair(tf.constant(a), tf.constant(b), lam).numpy()
    expected = lam[:, None, None] * a + (1 - lam[:, None, None]) * b
    np.testing.assert_allclose(mixed, expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(mixed[0], b[0])  # lam = 0: exactly b
    same = blending.blend_pair(tf.constant(a), tf.constant(a), lam).numpy()
    np.testing.assert_array_equal(same, a)  # a with itself: exactly a
    scalar = blending.blend_pair(tf.constant(a), tf.constant(b), 0.5).numpy()
    np.testing.assert_allclose(scalar, (a + b) / 2, rtol=1e-6, atol=1e-6)


def test_blend_tensor_goes_through_blend_pair():
    x = tf.constant(np.arange(12, dtype="float32").reshape(4, 3))
    lam = tf.constant([0.1, 0.2, 0.7, 1.0])
    partner = tf.constant([3, 2, 1, 0])
    np.testing.assert_array_equal(
        blending.blend_tensor(x, lam, partner).numpy(),
        blending.blend_pair(x, tf.gather(x, partner), lam).numpy(),
    )


def test_blend_pair_rejects_mismatched_tensors():
    a = tf.zeros([4, 2])
    with pytest.raises(ValueError, match="same dtype.*float32 and float64"):
        blending.blend_pair(a, tf.zeros([4, 2], "float64"), 0.5)
    with pytest.raises(ValueError, match=r"same shape.*\(4, 2\).*\(4, 3\)"):
        blending.blend_pair(a, tf.zeros([4, 3]), 0.5)


# --- the discriminator batch ------------------------------------------------


def test_discriminator_batch_blends_real_i_with_fake_i_and_targets_lam():
    model = gan(alpha=0.2)
    real = tf.constant([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    fake = tf.constant([[-1.0, 0.0], [0.0, -1.0], [10.0, 10.0]])
    lam = tf.constant([0.0, 0.3, 1.0])
    inputs, targets = model.discriminator_batch(real, fake, lam)
    expected = lam[:, None] * real + (1 - lam[:, None]) * fake
    np.testing.assert_allclose(inputs.numpy(), expected.numpy(), rtol=1e-6)
    np.testing.assert_array_equal(inputs[0].numpy(), fake[0].numpy())
    assert targets is lam


def test_plain_discriminator_batch_is_real_then_fake_with_targets_1_0():
    model = gan(alpha=None)
    real = tf.constant([[1.0, 2.0], [3.0, 4.0]])
    fake = tf.constant([[-1.0, 0.5], [0.25, -1.0]])
    inputs, targets = model.discriminator_batch(real, fake)
    np.testing.assert_array_equal(
        inputs.numpy(), np.concatenate([real.numpy(), fake.numpy()])
    )
    np.testing.assert_array_equal(targets.numpy(), [1.0, 1.0, 0.0, 0.0])


def _probe(alpha, steps=6):
    """Trains a hand-built GAN for `steps` steps of batch 1 and returns the
    discriminator weights `(w, b)` before and after each step.

    The generator always outputs 0 (zero weights, learning rate 0) and the
    real sample is 1, so the discriminator's input is exactly the lam of
    the blend. The discriminator is the logit `w * x + b` trained by SGD
    with learning rate 1, so each step's update reveals its input and
    target (see the tests).
    """
    generator = keras.Sequential(
        [keras.Input((1,)), keras.layers.Dense(1, kernel_initializer="zeros")]
    )
    discriminator = keras.Sequential(
        [keras.Input((1,)), keras.layers.Dense(1, kernel_initializer="zeros")]
    )
    model = keras_mixup.MixupGAN(
        generator, discriminator, latent_dim=1, alpha=alpha, seed=3
    )
    model.compile(
        d_optimizer=keras.optimizers.SGD(1.0),
        g_optimizer=keras.optimizers.SGD(0.0),
        run_eagerly=True,
    )
    weights = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            kernel, bias = discriminator.get_weights()
            weights.append((float(kernel[0, 0]), float(bias[0])))

    model.fit(
        np.ones((steps, 1), "float32"),
        batch_size=1,
        epochs=1,
        shuffle=False,
        verbose=0,
        callbacks=[Record()],
    )
    kernel, bias = discriminator.get_weights()
    weights.append((float(kernel[0, 0]), float(bias[0])))
    np.testing.assert_array_equal(generator.get_weights()[0], [[0.0]])
    return weights


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def test_discriminator_target_equals_the_lam_of_its_blend():
    # One example per step, logit w * x + b, SGD with learning rate 1:
    # db = t - sigmoid(w x + b) and dw = db * x, so x = dw / db and
    # t = db + sigmoid(w x + b): the input x (= lam of the blend) and the
    # target t are read back from the update, and must be equal.
    weights = _probe(alpha=1.0)
    inputs, targets = [], []
    for (w0, b0), (w1, b1) in zip(weights[:-1], weights[1:], strict=True):
        db, dw = b1 - b0, w1 - w0
        x = dw / db
        inputs.append(x)
        targets.append(db + _sigmoid(w0 * x + b0))
    np.testing.assert_allclose(targets, inputs, atol=1e-5)
    # They are genuine Beta(1, 1) draws: in (0, 1) and all different.
    assert all(0 < x < 1 for x in inputs)
    assert len(set(np.round(inputs, 4))) == len(inputs)


def test_plain_gan_discriminator_sees_real_with_1_and_fake_with_0():
    # Batch [real = 1, fake = 0] with targets [1, 0], mean loss:
    # db = -(sigmoid(w + b) - 1 + sigmoid(b)) / 2, dw = -(sigmoid(w + b) - 1)/2
    weights = _probe(alpha=None)
    for (w0, b0), (w1, b1) in zip(weights[:-1], weights[1:], strict=True):
        real_error = _sigmoid(w0 + b0) - 1
        fake_error = _sigmoid(b0) - 0
        np.testing.assert_allclose(w1 - w0, -real_error / 2, atol=1e-6)
        np.testing.assert_allclose(
            b1 - b0, -(real_error + fake_error) / 2, atol=1e-6
        )


# --- training ---------------------------------------------------------------


def discriminator_batches(generated, seen):
    """Pairs each training step's discriminator batch with the generated
    batch it was made with, from what the two recorders saw.

    A step records, in an order the graph does not fix, two generator
    outputs and two discriminator inputs: in the generator's update the
    discriminator sees that update's generator output unchanged; the other
    two are the discriminator update's.
    """
    assert len(generated) == len(seen)
    pairs = []
    for step in range(0, len(seen), 2):
        fakes, inputs = generated[step : step + 2], seen[step : step + 2]
        same = [
            (i, j)
            for i in range(2)
            for j in range(2)
            if np.array_equal(fakes[i], inputs[j])
        ]
        assert len(same) == 1, f"step {step // 2}: {len(same)} matches"
        ((i, j),) = same
        pairs.append((fakes[1 - i], inputs[1 - j]))
    return pairs


def check_discriminator_batches(alpha, reals, generated, seen):
    """Every training step's discriminator batch: with `alpha`, real `i`
    blended with generated `i`, lam ~ Beta(alpha, alpha); without, the
    real batch then the generated one, unchanged."""
    pairs = discriminator_batches(generated, seen)
    assert len(pairs) == len(reals)
    lams = []
    for real, (fake, inputs) in zip(reals, pairs, strict=True):
        if alpha is None:
            np.testing.assert_array_equal(inputs, np.concatenate([real, fake]))
            continue
        lams.append(decode_blends(inputs, real, fake, paired=True)[0])
    if alpha is not None:
        lam = np.concatenate(lams)
        beta = scipy.stats.beta(alpha, alpha).cdf
        assert scipy.stats.kstest(lam, beta).pvalue > 1e-3


@pytest.mark.parametrize("alpha", [0.2, None])
def test_short_run_trains_on_its_discriminator_batches_and_fits(alpha):
    # 200 steps on 8 Gaussians: the untrained generator's SWD is about 1.17,
    # the trained one's about 0.4-0.6 (GAN training is not monotone, so the
    # margin is generous).
    generated = Recorder(training_only=True)
    seen = Recorder(training_only=True)
    model = gan(alpha=alpha, seed=2, recorders=(generated, seen))
    noise = np.random.default_rng(5).standard_normal((1000, 2))
    real = ring(1000, seed=6)
    before = sliced_wasserstein(model.generator(noise).numpy(), real)
    data = ring(64 * 100, seed=0)
    history = model.fit(data, batch_size=64, epochs=2, shuffle=False, verbose=0)
    assert set(history.history) == {"d_loss", "g_loss"}
    for values in history.history.values():
        assert len(values) == 2 and np.all(np.isfinite(values))
    after = sliced_wasserstein(model.generator(noise).numpy(), real)
    assert after < 0.6 * before, (before, after)
    reals = np.split(data, 100) * 2
    check_discriminator_batches(alpha, reals, generated.seen, seen.seen)


def test_fit_on_dataset_of_1_tuples_and_evaluate():
    model = gan(alpha=0.4, run_eagerly=True)
    data = tf.data.Dataset.from_tensor_slices((ring(256, 0),)).batch(64)
    history = model.fit(data, epochs=1, shuffle=False, verbose=0)
    assert np.isfinite(history.history["d_loss"][0])
    result = model.evaluate(data, verbose=0, return_dict=True)
    assert set(result) == {"d_loss", "g_loss"}
    assert all(np.isfinite(v) for v in result.values())


def test_same_seed_same_training():
    weights = []
    for _ in range(2):
        model = gan(alpha=0.2, seed=4, run_eagerly=True)
        model.fit(ring(96, 0), batch_size=32, epochs=1, verbose=0)
        weights.append(model.generator.get_weights())
    for a, b in zip(*weights, strict=True):
        np.testing.assert_array_equal(a, b)


def test_call_and_predict_run_the_generator():
    model = gan()
    noise = np.random.default_rng(0).standard_normal((5, 2)).astype("f")
    np.testing.assert_allclose(
        model.predict(noise, verbose=0),
        model.generator(noise).numpy(),
        rtol=1e-6,
    )


def test_save_and_load_gan_and_generator(tmp_path):
    model = gan(alpha=0.3, seed=2, run_eagerly=True)
    model.fit(ring(256, 0), batch_size=64, epochs=1, verbose=0)
    noise = np.random.default_rng(0).standard_normal((16, 2)).astype("f")

    path = str(tmp_path / "gan.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, keras_mixup.MixupGAN)
    assert json.dumps(loaded.get_config(), sort_keys=True) == json.dumps(
        model.get_config(), sort_keys=True
    )
    np.testing.assert_array_equal(
        loaded.generator(noise).numpy(), model.generator(noise).numpy()
    )
    for name in ("d_optimizer", "g_optimizer"):
        for a, b in zip(
            getattr(loaded, name).variables,
            getattr(model, name).variables,
            strict=True,
        ):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert int(loaded.d_optimizer.iterations) == 4
    history = loaded.fit(ring(128, 1), batch_size=64, epochs=1, verbose=0)
    assert np.isfinite(history.history["g_loss"][0])

    generator_path = str(tmp_path / "generator.keras")
    model.generator.save(generator_path)
    generator = keras.saving.load_model(generator_path)
    np.testing.assert_array_equal(
        generator(noise).numpy(), model.generator(noise).numpy()
    )


def test_get_config_is_the_constructor_arguments():
    model = gan(alpha=None, seed=7, name="toy_gan")
    config = model.get_config()
    assert set(config) == {
        "name",
        "trainable",
        "generator",
        "discriminator",
        "latent_dim",
        "alpha",
        "seed",
    }
    assert (config["alpha"], config["seed"], config["latent_dim"]) == (
        None,
        7,
        2,
    )
    clone = keras_mixup.MixupGAN.from_config(config)
    assert clone.name == "toy_gan" and clone.alpha is None


# --- bad input --------------------------------------------------------------


@pytest.mark.parametrize("latent_dim", [0, -1, 1.5, True, "2", None])
def test_rejects_bad_latent_dim(latent_dim):
    with pytest.raises(ValueError, match="`latent_dim` must be an int >= 1"):
        keras_mixup.MixupGAN(mlp(2, 2), mlp(2, 1), latent_dim=latent_dim)


@pytest.mark.parametrize("alpha", [0, -0.5, float("nan"), float("inf"), "1"])
def test_rejects_bad_alpha(alpha):
    with pytest.raises(ValueError, match="`alpha` must be a finite number"):
        keras_mixup.MixupGAN(mlp(2, 2), mlp(2, 1), latent_dim=2, alpha=alpha)


def test_rejects_generator_not_taking_latent_noise():
    with pytest.raises(
        ValueError,
        match=r"`generator` must accept noise .*"
        r"\(None, 2\)",
    ):
        keras_mixup.MixupGAN(mlp(3, 2), mlp(2, 1), latent_dim=2)


def test_rejects_discriminator_not_taking_generator_output():
    with pytest.raises(
        ValueError,
        match=r"`discriminator` must accept the "
        r"generator's output, of shape \(None, 3\)",
    ):
        keras_mixup.MixupGAN(mlp(2, 3), mlp(2, 1), latent_dim=2)


def test_rejects_discriminator_with_more_than_one_logit():
    with pytest.raises(ValueError, match=r"one logit per example.*\(None, 2\)"):
        keras_mixup.MixupGAN(mlp(2, 2), mlp(2, 2), latent_dim=2)


def test_rejects_non_models():
    with pytest.raises(ValueError, match="`generator` must be a Keras model"):
        keras_mixup.MixupGAN(lambda z: z, mlp(2, 1), latent_dim=2)


def test_rejects_real_samples_of_another_shape_before_training():
    model = gan(run_eagerly=True)
    before = [w.copy() for w in model.discriminator.get_weights()]
    with pytest.raises(
        ValueError,
        match=r"shape of the generated ones, "
        r"\(batch, 2\); received batches of shape \(32, 3\)",
    ):
        model.fit(np.zeros((64, 3), "float32"), batch_size=32, verbose=0)
    for a, b in zip(before, model.discriminator.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_rejects_labels():
    model = gan(run_eagerly=True)
    with pytest.raises(ValueError, match="real samples only"):
        model.fit(ring(64, 0), np.zeros(64), batch_size=32, verbose=0)


def test_fit_before_compile_raises():
    model = keras_mixup.MixupGAN(mlp(2, 2), mlp(2, 1), latent_dim=2)
    with pytest.raises(ValueError, match=r"must call `compile\(\)`"):
        model.fit(ring(64, 0), batch_size=32, verbose=0)


@pytest.mark.parametrize("prob, plain_steps", [(0.0, 3), (1.0, 0)])
def test_prob_is_the_share_of_mixed_discriminator_steps(prob, plain_steps):
    # A plain step shows the discriminator the real and generated batches
    # stacked (2 x 16 rows); a mixed step shows their 16-row blend.
    seen = Recorder(training_only=True)
    model = gan(alpha=0.4, prob=prob, recorders=(None, seen))
    assert model.get_config()["prob"] == prob
    model.fit(ring(48, 0), batch_size=16, epochs=1, shuffle=False, verbose=0)
    rows = [len(batch) for batch in seen.seen]
    assert rows.count(32) == plain_steps, rows
