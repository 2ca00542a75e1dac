"""Drawing the random parts of a mix: lam, and whether a batch is mixed.

lam ~ Beta(alpha, alpha) for mixup, or Beta(alpha + 1, alpha) for the
inputs-only form. The draw goes through `tfp.distributions.Beta`, which
samples in log space (the sigmoid of a difference of log-gamma draws): unlike
`keras.random.beta` or a float32 ratio gamma / (gamma + gamma), it neither
piles lam up at exactly 0.5 nor returns NaN for small alpha. Every draw is
stateless: the seed is a shape `[2]` integer tensor (`keras_mixup.state`
hands out a fresh one per batch). Outside XLA the sampler is TFP's CPU one
written out, which `tf.data` would otherwise not get (see
`_beta_log_space`). Partners are drawn by `keras_mixup.pairing`.
"""

import keras

from keras_mixup import backend, checks, compat
from keras_mixup.backend import tf, tfp
from keras_mixup.state import as_seed

__all__ = ["sample_lambda", "sample_lambda_tf"]


def sample_lambda(shape, alpha, seed, *, inputs_only=False, dtype="float32"):
    """Draws mixing coefficients lam ~ Beta(alpha, alpha).

    With `inputs_only=True`, lam ~ Beta(alpha + 1, alpha): the form that
    mixes inputs only and keeps the first example's label, equal to mixup
    in expectation for losses linear in the label (cross-entropy).

    The draw is correct for alpha from 0.01 to 64 and beyond on every Keras
    backend, with no NaN, no value outside [0, 1] and no pile-up at 0.5
    (unlike `keras.random.beta` on TensorFlow, a float32 gamma ratio). On
    TensorFlow (the backend, and any TensorFlow graph such as a `tf.data`
    map, whatever the backend) it is TFP's stateless log-space sampler
    (see `sample_lambda_tf`); on JAX and PyTorch it is the backend's own Beta
    sampler (`jax.random.beta`, which samples in log space, and
    `torch.distributions.Beta`), which the per-backend tests check against
    the exact Beta at alpha 0.01 to 64. Exact 0.0 and 1.0 do occur for small
    alpha: that is float32 rounding of values within 1e-7 of the ends, not
    a bug.

    Args:
        shape: the shape of the draw (an int, a list, or a 1-D int tensor).
        alpha: the Beta concentration, a Python number > 0, or a scalar
            float variable or tensor of the backend (its value can then
            change without retracing).
        seed: an int, or on TensorFlow also a pair of ints or an int tensor
            of shape `[2]` (a stateless seed), or on JAX and PyTorch a
            `keras.random.SeedGenerator` (advanced by the draw). The same
            int seed gives the same draw.
        inputs_only: draw from Beta(alpha + 1, alpha) instead. Defaults to
            `False`.
        dtype: `"float32"` or `"float64"`. Defaults to `"float32"`.

    Returns:
        A tensor of the backend, of the given shape and dtype, with values
        in [0, 1].

    Raises:
        ValueError: if `alpha` is not a finite number > 0, `shape` has a
            negative or non-integer dimension, `dtype` is not float32 or
            float64, or `seed` is not one of the accepted forms.

    Example:

    ```python
    lam = keras_mixup.sample_lambda([4], alpha=0.2, seed=42)
    assert tuple(lam.shape) == (4,)
    lam = keras.ops.convert_to_numpy(lam)
    assert lam.dtype == np.float32 and ((lam >= 0) & (lam <= 1)).all()
    ```
    """
    if seed is None:
        raise ValueError(
            "`sample_lambda` draws statelessly, so `seed` is required (the "
            "same seed gives the same draw): pass an int (another one for "
            "another draw), or on JAX and PyTorch a "
            "keras.random.SeedGenerator, which each draw advances; "
            "received seed=None."
        )
    if backend.name() == "tensorflow":
        return sample_lambda_tf(
            shape, alpha, seed, inputs_only=inputs_only, dtype=dtype
        )
    dtype = checks.check_lambda_dtype(dtype)
    shape = checks.check_shape(shape)
    if keras.ops.is_tensor(alpha) or isinstance(alpha, keras.Variable):
        concentration = keras.ops.cast(alpha, dtype)
    else:
        concentration = checks.check_alpha(alpha)
    sample = _torch_beta if backend.name() == "torch" else _beta
    lam = sample(
        shape,
        concentration + 1 if inputs_only else concentration,
        concentration,
        dtype=dtype,
        seed=_seed_generator(seed),
    )
    return keras.ops.clip(lam, 0.0, 1.0)


def _beta(shape, concentration1, concentration0, *, dtype, seed):
    """`keras.random.beta`: on JAX `jax.random.beta`, in log space."""
    return keras.random.beta(
        shape, concentration1, concentration0, dtype=dtype, seed=seed
    )


def _torch_beta(shape, concentration1, concentration0, *, dtype, seed):
    """`torch.distributions.Beta`'s sampler, a Dirichlet draw of the pair
    of concentrations, from a `torch.Generator` seeded by `seed`'s next
    state (as Keras seeds its other PyTorch draws). `keras.random.beta`
    reseeds torch's global generator for every draw instead: 0.26 ms a
    draw of 128 here, against 0.12 ms for `sample_lambda` this way."""
    pair = keras.ops.stack(
        [
            keras.ops.broadcast_to(keras.ops.cast(c, dtype), shape)
            for c in (concentration1, concentration0)
        ],
        axis=-1,
    )
    first, second = keras.ops.convert_to_numpy(seed.next()).astype("int64")
    return compat.torch_dirichlet(pair, int(first + second) & 0xFFFFFFFF)[
        ..., 0
    ]


def _seed_generator(seed):
    """A `keras.random.SeedGenerator` for `seed` (JAX and PyTorch)."""
    if isinstance(seed, keras.random.SeedGenerator):
        return seed
    if isinstance(seed, (list, tuple)) and len(seed) == 2:
        seed = checks.check_int(seed[0], "seed[0]", minimum=0) * 1_000_003 + (
            checks.check_int(seed[1], "seed[1]", minimum=0)
        )
    seed = checks.check_int(
        seed, "seed", minimum=0, meaning=" or a SeedGenerator"
    )
    return keras.random.SeedGenerator(seed % 2**31)


def sample_lambda_tf(shape, alpha, seed, *, inputs_only=False, dtype="float32"):
    """`sample_lambda` in TensorFlow, whatever the Keras backend: the draw
    of `tf.data` pipelines and of the TensorFlow backend.

    The draw is `tfp.distributions.Beta(...).sample(shape, seed=seed)`, a
    stateless log-space sampler. Outside XLA it is TFP's CPU implementation
    written out (see `_beta_log_space`), so it runs at kernel speed in
    `Dataset.map` too; under XLA it is TFP's rejection sampler. The two
    differ in their random streams: a seed gives the same draw within one
    of them. Arguments as for `sample_lambda`, with `seed` a stateless seed
    (an int, a pair of ints or an int tensor of shape `[2]`) and `alpha`
    possibly a `tf.Variable` (an invalid value raises
    `InvalidArgumentError` at run time).
    """
    dtype = checks.check_lambda_dtype(dtype)
    shape = checks.check_shape(shape)
    concentration = _concentration(alpha, dtype)
    seed = as_seed(seed)
    concentration1 = concentration + 1 if inputs_only else concentration
    if compat.is_xla():
        beta = tfp.distributions.Beta(concentration1, concentration)
        lam = beta.sample(shape, seed=seed)
    else:
        lam = _beta_log_space(shape, concentration1, concentration, seed)
    # Guard the closed interval against any rounding of the sampler.
    return tf.clip_by_value(lam, tf.zeros([], dtype), tf.ones([], dtype))


def _concentration(alpha, dtype):
    """alpha as a scalar tensor of `dtype`: a Python number is checked now,
    a variable or tensor (whose value may change without a retrace) at run
    time."""
    if not isinstance(alpha, (tf.Variable, tf.Tensor)):
        return tf.constant(checks.check_alpha(alpha), dtype)
    if alpha.shape.rank not in (None, 0):
        raise ValueError(
            "`alpha` must be a scalar; received a tensor of shape "
            f"{alpha.shape}."
        )
    if not alpha.dtype.is_floating:
        raise ValueError(
            "`alpha` must be a floating-point scalar; received dtype "
            f"{alpha.dtype.name}."
        )
    message = "`alpha` must be a finite number > 0"
    concentration = tf.debugging.assert_all_finite(
        tf.cast(tf.convert_to_tensor(alpha), dtype), message
    )
    positive = tf.debugging.assert_positive(concentration, message=message)
    with tf.control_dependencies([positive]):
        return tf.identity(concentration)


def _log_gamma(size, concentration, seed):
    """log Gamma(concentration, 1) draws, as TFP's CPU sampler makes them.

    Gamma(c) = Gamma(c + 1) * U ** (1 / c) for c < 1: drawing Gamma(c + 1)
    and adding log(U) / c in log space never underflows, however small c.
    """
    seed = tfp.random.sanitize_seed(seed, salt="random_gamma")
    seed, boost_seed = tfp.random.split_seed(seed)
    dtype = concentration.dtype
    small = concentration < 1
    gamma = tf.random.stateless_gamma(
        [size],
        seed=seed,
        alpha=tf.where(small, concentration + 1, concentration),
        beta=tf.ones([], dtype),
        dtype=dtype,
    )
    uniform = tf.random.stateless_uniform(
        [size], seed=tfp.random.sanitize_seed(boost_seed), dtype=dtype
    )
    boost = tf.where(
        small, tf.math.log1p(-uniform) / concentration, tf.zeros([], dtype)
    )
    # `- log(rate)` with rate 1, as TFP writes it: Grappler then rewrites
    # this graph as it rewrites TFP's, and the draws agree bit for bit in a
    # `tf.function`.
    return tf.math.log(gamma) + (boost - tf.zeros([], dtype))


def _beta_log_space(shape, concentration1, concentration0, seed):
    """`tfp.distributions.Beta(c1, c0).sample(shape, seed)` off XLA.

    TFP samples gammas with an XLA-friendly rejection loop and relies on
    Grappler to swap in `tf.random.stateless_gamma` on CPU. `tf.data`
    functions are not rewritten by Grappler, so in `Dataset.map` the loop
    runs op by op: several times slower per batch, and much slower to set
    up for every iterator. (TFP's traces made under XLA also skip the swap
    when reused outside XLA, so TFP's own stream depends on what ran
    before.) This is the CPU implementation written out, with the same
    seeds, salts and log-space arithmetic: it gives TFP's CPU draw bit for
    bit in a `tf.function`, and within a few ulps eagerly and in `tf.data`
    (where Grappler does not fold the division by a constant alpha).
    """
    shape = tf.reshape(tf.convert_to_tensor(shape, tf.int32), [-1])
    size = tf.reduce_prod(shape)
    seed1, seed2 = tfp.random.split_seed(seed, salt="beta")
    log_gamma1 = _log_gamma(size, concentration1, seed1)
    log_gamma0 = _log_gamma(size, concentration0, seed2)
    return tf.reshape(tf.math.sigmoid(log_gamma1 - log_gamma0), shape)
