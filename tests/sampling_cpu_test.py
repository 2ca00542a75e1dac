"""`sample_lambda` off XLA: TFP's CPU Beta sampler, written out.

TFP picks its CPU gamma sampler through Grappler, which never rewrites
`tf.data` functions; there TFP would run its rejection loop op by op. The
package's sampler is that CPU implementation written out, so these tests pin
it to TFP's own draws and check that no loop is left in the graph.
"""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from tensorflow_probability.python.distributions import gamma as gamma_lib

from keras_mixup import draws

SEED = [5, -9]


@pytest.fixture
def fresh_tfp_gamma(monkeypatch):
    """TFP's gamma sampler as a fresh `tf.function`.

    TFP caches the traces of its sampler by input signature, and a trace
    made under XLA calls the rejection sampler directly, with no CPU
    implementation for Grappler to swap in: after any XLA draw of the same
    signature, TFP's own draws in a plain `tf.function` change stream. (The
    package's sampler has no such history.) A fresh trace is TFP's CPU path.
    """
    cached = gamma_lib._random_gamma_no_gradient
    fresh = tf.function(
        cached.__wrapped__.python_function,
        autograph=False,
        reduce_retracing=False,
    )
    monkeypatch.setattr(gamma_lib, "_random_gamma_no_gradient", fresh)


def _tfp_draw(shape, alpha, inputs_only, dtype):
    concentration = tf.constant(alpha, dtype)
    concentration1 = concentration + 1 if inputs_only else concentration
    beta = tfp.distributions.Beta(concentration1, concentration)
    return beta.sample(shape, seed=tf.constant(SEED))


@pytest.mark.parametrize(
    "alpha, inputs_only, dtype, shape",
    [
        (0.01, False, "float32", [7]),
        (0.2, True, "float32", [2, 3]),
        (1.0, False, "float64", []),
        (64.0, True, "float64", [5]),
    ],
)
def test_matches_tfp_bit_for_bit_in_a_tf_function(
    alpha, inputs_only, dtype, shape, fresh_tfp_gamma
):
    expected = tf.function(
        lambda: _tfp_draw(shape, alpha, inputs_only, dtype)
    )()
    got = tf.function(
        lambda: draws.sample_lambda(
            shape, alpha, SEED, inputs_only=inputs_only, dtype=dtype
        )
    )()
    assert got.shape == expected.shape and got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("alpha", [0.2, 4.0])
def test_same_draw_eagerly_in_tf_data_and_in_a_tf_function(alpha):
    """Eager and tf.data run the same ops; a tf.function's Grappler may fold
    the division by a constant alpha, which moves the last bits only."""
    seed = tf.constant(SEED)
    eager = draws.sample_lambda([64], alpha, seed)
    mapped = (
        tf.data.Dataset.from_tensors(seed)
        .map(lambda s: draws.sample_lambda([64], alpha, s))
        .get_single_element()
    )
    graph = tf.function(lambda: draws.sample_lambda([64], alpha, seed))()
    np.testing.assert_array_equal(eager, mapped)
    np.testing.assert_allclose(eager, graph, rtol=1e-5)


def test_no_rejection_loop_in_the_graph_off_xla():
    graph = (
        tf.function(lambda s: draws.sample_lambda([8], 0.2, s))
        .get_concrete_function(tf.TensorSpec([2], tf.int32))
        .graph
    )
    ops = {op.type for op in graph.get_operations()}
    assert "StatelessRandomGammaV3" in ops
    assert not ops & {
        "While",
        "StatelessWhile",
        "PartitionedCall",
        "StatefulPartitionedCall",
    }


def test_dynamic_shapes_and_alpha_variables():
    size = tf.constant(5)
    alpha = tf.Variable(0.3)
    draw = tf.function(lambda n: draws.sample_lambda([n], alpha, SEED))
    lam = draw(size)
    assert lam.shape == (5,)
    assert np.all((lam >= 0) & (lam <= 1))
    alpha.assign(2.0)
    assert not np.array_equal(draw(size), lam)
    assert draw.experimental_get_tracing_count() == 1


def test_draws_do_not_depend_on_earlier_xla_draws():
    def draw():
        return tf.function(
            lambda: draws.sample_lambda([6], 0.3, tf.constant(SEED))
        )()

    before = draw()
    tf.function(
        lambda: draws.sample_lambda([6], 0.3, tf.constant(SEED)),
        jit_compile=True,
    )()
    np.testing.assert_array_equal(draw(), before)
