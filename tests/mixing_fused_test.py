"""The fused (XLA) blend against the fallback, and tracing counts.

XLA contracts `partner + lam * (x - partner)` into one fused multiply-add
(one rounding instead of two) and computes half-precision arithmetic in
float32, rounding once at the end. The two paths therefore agree bit for bit
only where the product `lam * (x - partner)` is exact (lam 0 or 1, an
example paired with itself); elsewhere they differ by rounding, bounded by

    |fused - fallback| <= 2 * eps * max(|x|, |partner|)

(eps of the output dtype): both results lie within one rounding of the exact
blend, whose magnitude is at most max(|x|, |partner|), and the fallback's
rounded product adds at most half an ulp of |x - partner| <= 2 max. That is
the tolerance asserted; bfloat16 happens to agree exactly.
"""

import engine_helpers
import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_mixup
from keras_mixup import blending, state

pytestmark = pytest.mark.skipif(
    not blending.xla_available(), reason="XLA is not available"
)

DTYPES = ["float32", "float16", "bfloat16", "uint8"]


def _batch(dtype, shape, seed=0):
    rng = np.random.default_rng(seed)
    if dtype == "uint8":
        return tf.constant(rng.integers(0, 256, shape).astype("uint8"))
    values = rng.uniform(-100, 100, shape)
    return tf.cast(tf.constant(values, tf.float64), dtype)


def _draw(batch, mode, seed=0):
    rng = np.random.default_rng(seed + 1)
    shape = [batch] if mode == "elem" else []
    lam = tf.constant(rng.uniform(size=shape), tf.float32)
    partner_index = tf.constant(rng.permutation(batch), tf.int32)
    return lam, partner_index


def _scale(x, partner_index):
    """max(|x|, |partner|), element by element, in float64."""
    x = tf.cast(x, tf.float64).numpy()
    return np.maximum(np.abs(x), np.abs(x[partner_index.numpy()]))


def _assert_close(fused, fallback, scale):
    """Asserts the bound of the module docstring."""
    assert fused.dtype == fallback.dtype
    assert fused.shape == fallback.shape
    if fused.dtype == tf.bfloat16:
        eps = 2.0**-7
    else:
        eps = np.finfo(fused.dtype.as_numpy_dtype).eps
    diff = np.abs(
        tf.cast(fused, tf.float64).numpy()
        - tf.cast(fallback, tf.float64).numpy()
    )
    assert np.all(diff <= 2 * eps * scale), (diff / scale).max()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(16,), (16, 5), (16, 4, 6, 3)])
@pytest.mark.parametrize("mode", ["elem", "batch"])
def test_fused_matches_fallback(dtype, shape, mode):
    x = _batch(dtype, shape)
    lam, partner_index = _draw(shape[0], mode)
    fused = blending.blend_tensor(x, lam, partner_index, fused=True)
    fallback = blending.blend_tensor(x, lam, partner_index, fused=False)
    expected = "float32" if dtype == "uint8" else dtype
    assert fused.dtype == expected
    _assert_close(fused, fallback, _scale(x, partner_index))


@pytest.mark.parametrize("dtype", DTYPES)
def test_exact_products_agree_bit_for_bit(dtype):
    """lam 0 or 1, or an example paired with itself: the same bits, and the
    example itself comes back unchanged."""
    x = _batch(dtype, (8, 3, 2))
    _, partner_index = _draw(8, "elem")
    lam = tf.constant([0.0, 1.0] * 4)
    outputs = [
        blending.blend_tensor(x, lam, partner_index, fused=fused)
        for fused in (True, False)
    ]
    np.testing.assert_array_equal(
        tf.cast(outputs[0], tf.float64), tf.cast(outputs[1], tf.float64)
    )
    identity = tf.range(8)
    lam = tf.random.stateless_uniform([8], seed=[1, 2])
    for fused in (True, False):
        same = blending.blend_tensor(x, lam, identity, fused=fused)
        np.testing.assert_array_equal(
            tf.cast(same, tf.float64), tf.cast(x, tf.float64)
        )


def test_nested_structures_blend_in_one_call_like_the_fallback():
    x = {
        "image": _batch("uint8", (12, 4, 4, 3)),
        "pair": (_batch("float16", (12, 7)), _batch("float32", (12,))),
    }
    lam, partner_index = _draw(12, "elem")
    fused = blending.blend(x, lam, partner_index, fused=True)
    fallback = blending.blend(x, lam, partner_index, fused=False)
    tf.nest.assert_same_structure(fused, x)
    for got, want, leaf in zip(
        tf.nest.flatten(fused),
        tf.nest.flatten(fallback),
        tf.nest.flatten(x),
        strict=True,
    ):
        _assert_close(got, want, _scale(leaf, partner_index))


def test_integer_inputs_follow_the_compute_dtype_inside_the_fused_call():
    keras.config.set_dtype_policy("mixed_bfloat16")
    x = _batch("uint8", (6, 5))
    lam, partner_index = _draw(6, "elem")
    fused = blending.blend(x, lam, partner_index, fused=True)
    fallback = blending.blend(x, lam, partner_index, fused=False)
    assert fused.dtype == tf.bfloat16
    _assert_close(fused, fallback, _scale(x, partner_index))


def test_mix_batch_fused_matches_fallback_with_labels_and_weights():
    x = (_batch("uint8", (10, 3, 3, 1)), _batch("float32", (10, 2)))
    y = tf.constant(np.arange(10) % 4)
    weight = tf.constant(np.arange(10) % 3)
    lam, partner_index = _draw(10, "elem")
    outputs = [
        engine_helpers.mix_batch(
            x,
            y,
            weight,
            lam,
            partner_index,
            num_classes=4,
            label_smoothing=0.1,
            fused=fused,
        )
        for fused in (True, False)
    ]
    fused_x, fused_y, fused_w = outputs[0]
    fallback_x, fallback_y, fallback_w = outputs[1]
    for got, want, leaf in zip(fused_x, fallback_x, x, strict=True):
        _assert_close(got, want, _scale(leaf, partner_index))
    _assert_close(fused_y, fallback_y, 1.0)  # labels lie in [0, 1]
    _assert_close(fused_w, fallback_w, _scale(weight, partner_index))
    _, no_y, no_weight = engine_helpers.mix_batch(
        x, None, None, lam, partner_index, fused=True
    )
    assert no_y is None and no_weight is None


def test_gradients_through_the_fused_blend_match_the_fallback():
    x = _batch("float32", (6, 4))
    lam, partner_index = _draw(6, "elem")
    grads = []
    for fused in (True, False):
        with tf.GradientTape() as tape:
            tape.watch(x)
            mixed = blending.blend(x, lam, partner_index, fused=fused)
            loss = tf.reduce_sum(mixed * tf.range(4, dtype=tf.float32))
        grads.append(tape.gradient(loss, x))
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-6)


def test_mixup_fused_and_fallback_give_the_same_batches():
    """Same seed, same draws (lam and partners come from the same sampler on
    both paths); the blends agree to the rounding bound."""
    x = _batch("uint8", (20, 4, 4, 3))
    y = tf.constant(np.arange(20) % 5)
    results = []
    for fused in (True, False):
        mixup = keras_mixup.Mixup(alpha=0.4, num_classes=5, seed=3, fused=fused)
        dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
        results.append(list(dataset.map(mixup)))
    for (fx, fy), (bx, by) in zip(*results, strict=True):
        np.testing.assert_allclose(fx, bx, rtol=0, atol=2 * 2**-23 * 255)
        np.testing.assert_allclose(fy, by, rtol=0, atol=2 * 2**-23)


def test_no_retracing_and_one_draw_per_batch_across_epochs():
    """The map function is traced once; the fused blend at most once per
    static batch shape (the partial last batch is one more); each batch
    draws exactly one seed, so one lam and one partner index."""
    mixup = keras_mixup.Mixup(alpha=0.2, num_classes=3, seed=0, fused=True)
    calls = {"mix": 0, "draw": 0}
    mix, draw = mixup.mix, mixup.engine.draw

    def counting_mix(*args, **kwargs):
        calls["mix"] += 1
        return mix(*args, **kwargs)

    def counting_draw(*args, **kwargs):
        calls["draw"] += 1
        return draw(*args, **kwargs)

    mixup.mix, mixup.engine.draw = counting_mix, counting_draw
    x = np.random.default_rng(0).uniform(size=(22, 3, 3, 2)).astype("f4")
    y = np.arange(22) % 3
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    dataset = dataset.map(mixup)
    traces = blending.xla_compiled(
        blending._blend_leaves
    ).experimental_get_tracing_count()
    generator = mixup.engine.seed_source.generator
    start = generator.state.numpy().copy()
    for _ in range(3):
        for _ in dataset:
            pass
    assert calls == {"mix": 1, "draw": 1}
    new_traces = (
        blending.xla_compiled(
            blending._blend_leaves
        ).experimental_get_tracing_count()
        - traces
    )
    assert new_traces <= 1
    # One seed per batch: 3 epochs x 3 batches advance the generator by 9
    # seed draws.
    probe = state.SeedSource(0)
    probe_start = probe.generator.state.numpy().copy()
    for _ in range(9):
        probe.next_seed()
    np.testing.assert_array_equal(
        generator.state.numpy() - start,
        probe.generator.state.numpy() - probe_start,
    )


def test_fused_option_is_validated_and_serialised():
    with pytest.raises(ValueError, match=r"`fused` must be True .*'yes'"):
        keras_mixup.Mixup(fused="yes")
    with pytest.raises(ValueError, match="`fused` must be"):
        blending.blend(tf.ones([2, 1]), 0.5, tf.constant([1, 0]), fused=1)
    mixup = keras_mixup.Mixup(alpha=0.3, fused=False)
    assert mixup.get_config()["fused"] is False
    assert keras_mixup.Mixup.from_config(mixup.get_config()).fused is False
    assert keras_mixup.Mixup().fused == "auto"


def test_auto_fuses_in_graphs_only():
    """Eagerly, plain ops (no per-shape compilation for a one-off blend); in
    a graph, XLA; inside an XLA computation, plain ops XLA fuses anyway."""
    assert blending.use_fused("auto") is False
    assert tf.function(lambda: tf.constant(blending.use_fused("auto")))()
    in_xla = tf.function(
        lambda: tf.constant(blending.use_fused("auto")), jit_compile=True
    )
    assert not in_xla()
    traces = blending.xla_compiled(
        blending._blend_leaves
    ).experimental_get_tracing_count()
    blending.blend(tf.ones([3, 2]), tf.ones([3]), tf.constant([2, 0, 1]))
    assert (
        blending.xla_compiled(
            blending._blend_leaves
        ).experimental_get_tracing_count()
        == traces
    )


def test_fused_true_without_xla_is_refused(monkeypatch):
    monkeypatch.setattr(blending, "_xla_available", False)
    with pytest.raises(ValueError, match="`fused=True` needs XLA"):
        blending.use_fused(True)
    assert blending.use_fused("auto") is False
    # "auto" then falls back to plain ops.
    out = blending.blend(tf.ones([2, 1]), 0.5, tf.constant([1, 0]))
    np.testing.assert_array_equal(out, np.ones([2, 1]))


def fused_traces():
    """How many times the XLA-compiled blend has been traced."""
    compiled = blending.xla_compiled(blending._blend_leaves)
    return compiled.experimental_get_tracing_count()
