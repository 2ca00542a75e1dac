"""`Mixup` and `sample_lambda` under mixed precision and XLA.

Documented dtypes: lam is float32 whatever the policy; float inputs keep
their dtype; integer inputs are blended in the policy's compute dtype;
labels come back in `keras.config.floatx()` (float32) and sum to 1.

`run` runs a function eagerly, in a `tf.function` or in a
`tf.function(jit_compile=True)`; `POLICIES` are the Keras dtype policies.
Another API joins by adding its own test over the same parameters. XLA
compiles of the Beta sampler take seconds each, so there are two XLA
cases: the dtype test under mixed_float16, and a function with a `None`
batch size under mixed_bfloat16.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import decode_identity_rows

import keras_mixup

POLICIES = ["float32", "mixed_float16", "mixed_bfloat16"]
COMPUTE_DTYPE = {
    "float32": tf.float32,
    "mixed_float16": tf.float16,
    "mixed_bfloat16": tf.bfloat16,
}
RUNNERS = ["eager", "graph"]
# Identity rows mixed in a half dtype carry lam rounded to that dtype.
ATOL = {tf.float32: 1e-6, tf.float16: 1e-3, tf.bfloat16: 1e-2}
BATCH = 8


def run(runner, fn, *args):
    """Runs `fn(*args)` eagerly, traced, or traced and XLA-compiled
    (`jit_compile=True` raises rather than fall back if XLA cannot)."""
    if runner == "eager":
        return fn(*args)
    return tf.function(fn, jit_compile=runner == "xla")(*args)


def identity_inputs():
    eye = np.eye(BATCH, dtype="float32")
    return {
        "float32": tf.constant(eye),
        "float16": tf.constant(eye, tf.float16),
        "bfloat16": tf.constant(eye, tf.bfloat16),
        "uint8": tf.constant(eye.astype("uint8")),
        "int32": tf.constant(eye.astype("int32")),
    }


MIX_CASES = [
    pytest.param(policy, runner, mode, id=f"{policy}-{runner}-{mode}")
    for policy in POLICIES
    for runner in RUNNERS
    for mode in ("elem", "batch")
] + [pytest.param("mixed_float16", "xla", "elem", id="mixed_float16-xla-elem")]


@pytest.mark.parametrize("policy, runner, mode", MIX_CASES)
def test_mixup_dtypes_and_label_sums(policy, runner, mode):
    keras.config.set_dtype_policy(policy)
    compute = COMPUTE_DTYPE[policy]
    mixup = keras_mixup.Mixup(alpha=1.0, num_classes=BATCH, mode=mode, seed=1)
    x = identity_inputs()
    y = tf.range(BATCH)
    weight = tf.constant(np.arange(BATCH), tf.float16)
    mixed_x, mixed_y, mixed_w = run(runner, mixup.mix, x, y, weight)
    expected = {
        "float32": tf.float32,
        "float16": tf.float16,
        "bfloat16": tf.bfloat16,
        "uint8": compute,
        "int32": compute,
    }
    assert {k: v.dtype for k, v in mixed_x.items()} == expected
    assert mixed_y.dtype == tf.float32 and mixed_w.dtype == tf.float16
    labels = mixed_y.numpy().astype("float64")
    np.testing.assert_allclose(labels.sum(1), 1.0, atol=1e-6)
    assert labels.min() >= 0
    # Every leaf mixes the same examples with the same lam as the labels.
    lam, _ = decode_identity_rows(labels, np.arange(BATCH))
    for name, leaf in mixed_x.items():
        leaf = tf.cast(leaf, tf.float32).numpy()
        np.testing.assert_allclose(
            leaf, labels, atol=ATOL[expected[name]], err_msg=name
        )
    if mode == "batch":
        moved = lam < 1
        np.testing.assert_allclose(lam[moved], lam[moved][0], atol=1e-6)


@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.parametrize("policy", POLICIES)
def test_lam_is_float32_under_every_policy(policy, runner):
    keras.config.set_dtype_policy(policy)
    mixup = keras_mixup.Mixup(alpha=0.2, num_classes=3, seed=2)
    lam, partner = run(runner, lambda: mixup.draw(BATCH))
    assert lam.dtype == tf.float32 and lam.shape == (BATCH,)
    assert partner.dtype == tf.int32
    lam = run(runner, lambda: keras_mixup.sample_lambda([BATCH], 0.2, 3))
    assert lam.dtype == tf.float32
    assert np.all((lam.numpy() >= 0) & (lam.numpy() <= 1))


def test_xla_with_an_unknown_batch_size_and_no_run_time_checks():
    """Keras traces train steps with a `None` batch dimension; XLA still
    compiles the draw and the blend (shapes are known at compile time),
    here under mixed_bfloat16. Documented: XLA compiles run-time assertions
    out, so under `jit_compile=True` an out-of-range class id one-hot
    encodes to a zero row (no error, no NaN); outside XLA it raises."""
    keras.config.set_dtype_policy("mixed_bfloat16")
    mixup = keras_mixup.Mixup(alpha=1.0, num_classes=4, seed=3)
    signature = [
        (
            tf.TensorSpec([None, 6], tf.float32),
            tf.TensorSpec([None, 6], tf.uint8),
        ),
        tf.TensorSpec([None], tf.int32),
    ]
    mix = tf.function(mixup, jit_compile=True, input_signature=signature)
    x = (tf.eye(6), tf.eye(6, dtype=tf.uint8))
    (floats, ints), y = mix(x, tf.range(6) % 4)
    assert floats.dtype == tf.float32 and ints.dtype == tf.bfloat16
    assert y.dtype == tf.float32 and y.shape == (6, 4)
    np.testing.assert_allclose(y.numpy().sum(1), 1.0, atol=1e-6)
    decode_identity_rows(floats, np.arange(6))
    ints = tf.cast(ints, tf.float32).numpy()
    np.testing.assert_allclose(ints, floats, atol=ATOL[tf.bfloat16])
    out_of_range = tf.constant([0, 1, 2, 3, 0, 7])
    # Same shapes: the compiled program is reused.
    _, y = mix(x, out_of_range)
    y = y.numpy()
    assert np.all(np.isfinite(y)) and y.min() >= 0
    assert y.sum(1).min() < 1 - 1e-3
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"\[0, 4\)"):
        tf.function(mixup, input_signature=signature)(x, out_of_range)


# The in-model APIs under both mixed policies. The layer and model tests
# train once under XLA each; the GAN's step is not compiled here (its XLA
# compile took 22-44 s on this machine, over the suite's budget).
MIXED = ["mixed_float16", "mixed_bfloat16"]


def classifier(size=BATCH, classes=4, layer=True):
    inputs = keras.Input((size,))
    hidden = keras.layers.Dense(6)(inputs)
    if layer:
        hidden = keras_mixup.MixupLayer(alpha=1.0, seed=4, name="mix")(hidden)
    hidden = keras.layers.Dense(classes)(hidden)
    outputs = keras.layers.Activation("softmax", dtype="float32")(hidden)
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize("policy", MIXED)
def test_mixup_layer_dtypes_and_label_sums(policy):
    """The dict form mixes inputs in the compute dtype and float32 labels
    that still sum to 1; lam is float32."""
    keras.config.set_dtype_policy(policy)
    compute = COMPUTE_DTYPE[policy]
    layer = keras_mixup.MixupLayer(alpha=1.0, seed=4)
    eye = tf.eye(BATCH)
    mixed = tf.function(lambda d: layer(d, training=True))(
        {"inputs": eye, "labels": eye}
    )
    assert mixed["inputs"].dtype == compute
    assert mixed["labels"].dtype == tf.float32
    labels = mixed["labels"].numpy().astype("float64")
    np.testing.assert_allclose(labels.sum(1), 1.0, atol=1e-6)
    decode_identity_rows(labels, np.arange(BATCH))
    inputs = tf.cast(mixed["inputs"], tf.float32).numpy()
    np.testing.assert_allclose(inputs, labels, atol=ATOL[compute])
    assert layer(eye, training=True).dtype == compute
    lam, _, _ = layer.engine.draw(BATCH, inputs_only=True)
    assert lam.dtype == tf.float32


@pytest.mark.parametrize("mix_at", ["input", "latent"])
@pytest.mark.parametrize("policy", MIXED)
def test_mixup_model_dtypes_label_sums_and_finite_loss(policy, mix_at):
    keras.config.set_dtype_policy(policy)
    model = keras_mixup.MixupModel(
        classifier(), alpha=1.0, num_classes=4, mix_at=mix_at, seed=5
    )
    x, y = tf.eye(BATCH), tf.range(BATCH) % 4

    @tf.function
    def mix(x, y):
        _, labels, _, plan = model.mix(x, y)
        lam = tf.ones([BATCH]) if plan.lam is None else plan.lam
        return labels, lam

    labels, lam = mix(x, y)
    assert labels.dtype == tf.float32 and lam.dtype == tf.float32
    np.testing.assert_allclose(labels.numpy().sum(1), 1.0, atol=1e-6)
    model.compile("sgd", "categorical_crossentropy")
    history = model.fit(x, y, batch_size=4, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))


@pytest.mark.parametrize("policy", MIXED)
def test_mixup_gan_dtypes_and_finite_losses(policy):
    keras.config.set_dtype_policy(policy)
    compute = COMPUTE_DTYPE[policy]
    generator = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3)])
    discriminator = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(1, dtype="float32")]
    )
    gan = keras_mixup.MixupGAN(generator, discriminator, 2, alpha=1.0, seed=6)
    lam = gan.draw_lambda(BATCH, tf.constant([1, 2]))
    assert lam.dtype == tf.float32
    real = tf.cast(tf.fill([BATCH, 3], 2.0), compute)
    fake = tf.cast(tf.fill([BATCH, 3], -2.0), compute)
    inputs, targets = gan.discriminator_batch(real, fake, lam)
    assert inputs.dtype == compute and targets.dtype == tf.float32
    expected = (4.0 * lam - 2.0).numpy()[:, None] * np.ones([1, 3])
    np.testing.assert_allclose(
        tf.cast(inputs, tf.float32), expected, atol=4 * ATOL[compute]
    )
    gan.compile("adam", "adam")
    data = np.random.default_rng(0).normal(size=(32, 3)).astype("float32")
    history = gan.fit(data, batch_size=16, epochs=1, verbose=0)
    assert all(np.isfinite(v).all() for v in history.history.values())
