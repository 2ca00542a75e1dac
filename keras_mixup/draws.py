"""Drawing the random parts of a mix: lam, and whether a batch is mixed.

lam ~ Beta(alpha, alpha) for mixup, or Beta(alpha + 1, alpha) for the
inputs-only form. On TensorFlow the draw samples in log space (the sigmoid
of a difference of log-gamma draws): unlike `keras.random.beta` or a float32
ratio gamma / (gamma + gamma), it neither piles lam up at exactly 0.5 nor
returns NaN for small alpha. Every draw is stateless: the seed is a shape
`[2]` integer tensor (`keras_mixup.state` hands out a fresh one per batch).
Outside XLA the sampler is `tfp.distributions.Beta`'s CPU one written out,
which `tf.data` would otherwise not get (see `_beta_log_space`); under XLA
it is an exact Marsaglia-Tsang rejection sampler that compiles much faster
than TFP's (see `_beta_logit_xla`). Partners are drawn by
`keras_mixup.pairing`.
"""

import math

import keras

from keras_mixup import backend, checks, compat
from keras_mixup.backend import tf, tfp
from keras_mixup.state import as_seed

__all__ = [
    "per_example",
    "sample_lambda",
    "sample_lambda_tf",
    "unless_mixed",
]


@backend.not_converted
def sample_lambda(shape, alpha, seed, *, inputs_only=False, dtype="float32"):
    """Draws mixing coefficients lam ~ Beta(alpha, alpha).

    With `inputs_only=True`, lam ~ Beta(alpha + 1, alpha): the form that
    mixes inputs only and keeps the first example's label, equal to mixup
    in expectation for losses linear in the label (cross-entropy).

    The draw is correct for small alpha on every Keras backend, with no
    NaN, no value outside [0, 1] and no pile-up at 0.5 (unlike
    `keras.random.beta` on TensorFlow, a float32 gamma ratio). On
    TensorFlow (the backend, and any TensorFlow graph such as a `tf.data`
    map, whatever the backend) it is a stateless log-space sampler
    (`sample_lambda_tf`); on JAX and PyTorch it is the backend's own Beta
    sampler (`jax.random.beta`, `torch.distributions.Beta`), which the
    per-backend tests check against the exact Beta. Exact 0.0 and 1.0 do
    occur for small alpha: float32 rounding of values within 1e-7 of the
    ends, not a bug. The guide "Backends" of the documentation says what
    is tested on each backend.

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
    if not (keras.ops.is_tensor(alpha) or isinstance(alpha, keras.Variable)):
        alpha = checks.check_alpha(alpha)
    seed = _seed_generator(seed)
    if backend.name() == "torch":
        return _torch_beta(shape, alpha, inputs_only, dtype=dtype, seed=seed)
    concentration = keras.ops.cast(alpha, dtype)
    lam = keras.random.beta(
        shape,
        concentration + 1 if inputs_only else concentration,
        concentration,
        dtype=dtype,
        seed=seed,
    )
    return keras.ops.clip(lam, 0.0, 1.0)


def _torch_beta(shape, alpha, inputs_only, *, dtype, seed):
    """Beta(alpha + 1 if `inputs_only` else alpha, alpha) on PyTorch:
    `torch.distributions.Beta`'s sampler (a Dirichlet draw of the pair of
    concentrations, which matches the exact Beta at alpha 0.01 to 64) from
    the seed generator's `torch.Generator` (`compat.torch_generator`), in
    three small torch ops and no host round trip. (`keras.random.beta`
    reseeds torch's global generator for every draw.) The sampler divides
    one gamma draw by the sum of two in float64: lam is in [0, 1] as it
    comes, with no clip.
    """
    import torch

    generator = compat.torch_generator(seed)
    alpha = getattr(alpha, "value", alpha)
    dtype = getattr(torch, dtype)
    if not (
        isinstance(alpha, torch.Tensor)
        and alpha.dtype == dtype
        and alpha.device == generator.device
    ):
        alpha = torch.as_tensor(alpha, dtype=dtype, device=generator.device)
    dims = [shape] if checks.is_int(shape) else [int(d) for d in shape]
    if inputs_only:
        pair = torch.stack([alpha + 1, alpha]).expand(*dims, 2)
    else:
        pair = alpha.expand(*dims, 2)
    return compat.torch_dirichlet(pair, generator)[..., 0]


def unless_mixed(mixed, lam, partner_index, batch_size):
    """`(lam, partner_index)` where the scalar bool `mixed` is true, else
    lam 1 and each example its own partner (which the blend returns as it
    is): the end of every draw. `partner_index` is `[B]`, or `[B, S - 1]`
    for a variant of `S` sources (every column the example itself when not
    mixed). On PyTorch two `torch.where`s, without Keras's dispatch (the
    draw runs eagerly every step there)."""
    columns = len(partner_index.shape) == 2
    if backend.name() == "torch":
        import torch

        if mixed.device.type == "cpu" and bool(mixed):
            return lam, partner_index  # the switch read without a sync

        itself = torch.arange(
            partner_index.shape[0],
            dtype=partner_index.dtype,
            device=partner_index.device,
        )
        if columns:
            itself = itself[:, None]
        return (
            torch.where(mixed, lam, 1.0),
            torch.where(mixed, partner_index, itself),
        )
    numpy = backend.ops().numpy
    itself = numpy.arange(batch_size, dtype="int32")
    if columns:
        itself = itself[:, None]
    return (
        numpy.where(mixed, lam, numpy.ones_like(lam)),
        numpy.where(mixed, partner_index, itself),
    )


def per_example(lam, partner_index):
    """A draw's lam as float32 `[B]`, one per example of `partner_index`
    `[B]` (one lam for the batch in `"batch"` mode broadcast)."""
    ops = backend.ops()
    lam = ops.core.cast(lam, "float32")
    return ops.numpy.broadcast_to(lam, ops.core.shape(partner_index))


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


@backend.not_converted
def sample_lambda_tf(shape, alpha, seed, *, inputs_only=False, dtype="float32"):
    """Draws lam ~ Beta(alpha, alpha) with TensorFlow, whatever the Keras
    backend: the draw of `tf.data` pipelines and of the TensorFlow backend.

    The draw is stateless and in log space. Outside XLA it is
    `tfp.distributions.Beta(...).sample(shape, seed=seed)`, TFP's CPU
    implementation written out (see `_beta_log_space`), so it runs at
    kernel speed in `Dataset.map` too. Under XLA (`jit_compile=True`) it is
    the package's exact rejection sampler (Marsaglia and Tsang's, see
    `_beta_logit_xla`), which compiles in a fraction of the time of TFP's.
    The two differ in their random streams: a seed gives the same draw
    within one of them.

    Args:
        shape: the shape of the draw (an int, a list, or a 1-D int tensor).
        alpha: the Beta concentration, a Python number > 0, or a scalar
            float `tf.Variable` or tensor (an invalid value then raises
            `InvalidArgumentError` at run time).
        seed: an int, a pair of ints or an int tensor of shape `[2]` (a
            stateless seed).
        inputs_only: draw from Beta(alpha + 1, alpha) instead. Defaults to
            `False`.
        dtype: `"float32"` or `"float64"`. Defaults to `"float32"`.

    Returns:
        A TensorFlow tensor of the given shape and dtype, in [0, 1].

    Raises:
        ValueError: as `sample_lambda`.

    Example:

    ```python
    from keras_mixup.draws import sample_lambda_tf

    lam = sample_lambda_tf([3], alpha=0.2, seed=(1, 2))
    assert lam.dtype == tf.float32 and lam.shape == (3,)
    same = sample_lambda_tf([3], alpha=0.2, seed=(1, 2))
    np.testing.assert_array_equal(lam, same)  # stateless: same seed, same lam
    ```
    """
    dtype = checks.check_lambda_dtype(dtype)
    shape = checks.check_shape(shape)
    concentration = _concentration(alpha, dtype)
    seed = as_seed(seed)
    concentration1 = concentration + 1 if inputs_only else concentration
    if compat.is_xla():
        lam = _beta_xla(shape, concentration1, concentration, seed)
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


# Candidates drawn at once per gamma value in each round of the XLA sampler:
# Marsaglia-Tsang accepts one with probability >= 0.95 at shape >= 1, so a
# value needs a second round with probability <= 0.05 ** 4 (< 1e-5).
_CANDIDATES = 4


def _beta_xla(shape, concentration1, concentration0, seed):
    """lam ~ Beta(c1, c0) of `shape` under XLA: the sigmoid of
    `_beta_logit_xla`."""
    shape = tf.reshape(tf.convert_to_tensor(shape, tf.int32), [-1])
    logit, _ = _beta_logit_xla(
        tf.reduce_prod(shape), concentration1, concentration0, seed
    )
    return tf.reshape(tf.math.sigmoid(logit), shape)


def _beta_logit_xla(
    size, concentration1, concentration0, seed, candidates=None
):
    """log(lam / (1 - lam)) for `size` draws of lam ~ Beta(c1, c0), exact,
    in XLA ops that compile fast, and the number of rounds it took.

    TFP's gamma sampler under XLA compiles for seconds on CPU and
    `tf.random.stateless_gamma` has no XLA kernel. This is Marsaglia and
    Tsang's rejection method (ACM TOMS 26(3), 2000) for Gamma(c + 1), whose
    shape is >= 1, boosted to Gamma(c) in log space: log Gamma(c) =
    log Gamma(c + 1) + log(U) / c, which never underflows however small c.
    Both gammas are drawn together, `candidates` per value in each round of
    a `tf.while_loop`; every value takes its first accepted candidate, and
    a round runs again only for the values none accepted: an exact
    rejection sampler, never truncated. The logit is log G1 - log G0.
    """
    candidates = candidates or _CANDIDATES
    concentration = tf.stack([concentration1, concentration0])[:, None]
    dtype = concentration.dtype
    d = concentration + tf.constant(2 / 3, dtype)
    c = tf.math.rsqrt(9 * d)
    # One hash of the seed, then a key per round: no round reuses the seed
    # of another draw (ThreeFry under XLA: `backend.stateless_algorithm`).
    base = backend.fold_in(seed, 0x6A7BE7A)

    def round_(i, log_gamma, boost, done):
        uniform = backend.uniform(
            [4, candidates, 2, size], base + tf.stack([0, i]), dtype=dtype
        )
        chosen, accepted = _marsaglia_tsang(uniform[:3], d, c)
        take = accepted & ~done
        # log(1 - U) with U in [0, 1): finite; the boost of the first round.
        boost = tf.where(
            i == 0, tf.math.log(1 - uniform[3, 0]) / concentration, boost
        )
        return i + 1, tf.where(take, chosen, log_gamma), boost, done | take

    zeros = tf.zeros([2, size], dtype)
    rounds, log_gamma, boost, _ = tf.while_loop(
        lambda i, log_gamma, boost, done: ~tf.reduce_all(done),
        round_,
        [0, zeros, zeros, tf.zeros([2, size], tf.bool)],
    )
    log_gamma = log_gamma + tf.math.log(d) + boost
    return log_gamma[0] - log_gamma[1], rounds


def _marsaglia_tsang(uniform, d, c):
    """log(v) of the first accepted candidate of each value, and whether
    any was accepted. `uniform` is `[3, K, ...]`: two for a Box-Muller
    normal x, one for the test; a candidate d * v, v = (1 + c x) ** 3, is
    accepted when v > 0 and log U < x**2 / 2 + d (1 - v + log v)."""
    dtype = uniform.dtype
    normal = tf.sqrt(-2 * tf.math.log(1 - uniform[0])) * tf.cos(
        tf.constant(2 * math.pi, dtype) * uniform[1]
    )
    cx = c * normal
    positive = cx > -1
    log_v = 3 * tf.math.log1p(tf.where(positive, cx, tf.zeros_like(cx)))
    v = (1 + cx) ** 3
    accepted = positive & (
        tf.math.log(1 - uniform[2])
        < 0.5 * tf.square(normal) + d * (1 - v + log_v)
    )
    chosen = log_v[-1]
    for k in range(uniform.shape[1] - 2, -1, -1):
        chosen = tf.where(accepted[k], log_v[k], chosen)
    return chosen, tf.reduce_any(accepted, axis=0)
