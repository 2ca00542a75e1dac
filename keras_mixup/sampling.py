"""Drawing the mixing coefficient lam, and the seeds behind every draw.

lam ~ Beta(alpha, alpha) for mixup, or Beta(alpha + 1, alpha) for the
inputs-only form. The draw goes through `tfp.distributions.Beta`, which
samples in log space (the sigmoid of a difference of log-gamma draws): unlike
`keras.random.beta` or a float32 ratio gamma / (gamma + gamma), it neither
piles lam up at exactly 0.5 nor returns NaN for small alpha. Every draw is
stateless: the seed is a shape `[2]` integer tensor, and `SeedSource` hands
out a fresh one per batch. Outside XLA the sampler is TFP's CPU one written
out, which `tf.data` would otherwise not get (see `_beta_log_space`).
"""

import math
import numbers

import tensorflow as tf
import tensorflow_probability as tfp
from tensorflow_probability.python.internal import implementation_selection

#: Dtypes lam may be drawn in. Half precision is refused: Beta draws for
#: small alpha need the exponent range and mantissa of float32.
LAMBDA_DTYPES = ("float32", "float64")


def check_alpha(alpha, name="alpha"):
    """Validates a Beta concentration given as a Python number.

    Variables and tensors are accepted as they are (their value can change
    without a retrace; `sample_lambda` checks it at run time).

    Args:
        alpha: the value to check.
        name: the argument name used in the error message. Defaults to
            `"alpha"`.

    Returns:
        `alpha` as a Python float, or the variable or tensor unchanged.

    Raises:
        ValueError: if `alpha` is not a finite number greater than 0.
    """
    if isinstance(alpha, (tf.Variable, tf.Tensor)):
        if alpha.shape.rank not in (None, 0):
            raise ValueError(
                f"`{name}` must be a scalar; received a tensor of shape "
                f"{alpha.shape}."
            )
        if not alpha.dtype.is_floating:
            raise ValueError(
                f"`{name}` must be a floating-point scalar; received dtype "
                f"{alpha.dtype.name}."
            )
        return alpha
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real):
        raise ValueError(
            f"`{name}` must be a finite number > 0 (mixup uses 0.1 to 0.4 on "
            f"ImageNet, 1 on CIFAR); received {alpha!r} of type "
            f"{type(alpha).__name__}."
        )
    alpha = float(alpha)
    if not math.isfinite(alpha) or alpha <= 0:
        raise ValueError(
            f"`{name}` must be a finite number > 0 (mixup uses 0.1 to 0.4 on "
            f"ImageNet, 1 on CIFAR); received {alpha!r}."
        )
    return alpha


def check_int(value, name, minimum, meaning=""):
    """Validates an int argument: returns `value` as an int >= `minimum`.

    Args:
        value: the value to check.
        name: the argument name used in the error message.
        minimum: the smallest accepted value.
        meaning: what the number means, appended to the message after
            the bound (e.g. `" (an epoch index)"`). Defaults to `""`.

    Raises:
        ValueError: for a bool, a non-integer or a value below `minimum`.
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or value < minimum
    ):
        raise ValueError(
            f"`{name}` must be an int >= {minimum}{meaning}; received "
            f"{value!r}."
        )
    return int(value)


def check_lambda_dtype(dtype):
    """Returns `dtype` as a `tf.DType` if lam may be drawn in it.

    Raises:
        ValueError: for anything but float32 and float64.
    """
    try:
        dtype = tf.as_dtype(dtype)
    except TypeError as error:
        raise ValueError(
            f"`dtype` must be one of {LAMBDA_DTYPES}; received {dtype!r}."
        ) from error
    if dtype.name not in LAMBDA_DTYPES:
        raise ValueError(
            f"`dtype` must be one of {LAMBDA_DTYPES}: lam is never drawn in "
            f"half precision (cast the blended inputs instead); received "
            f"{dtype.name}."
        )
    return dtype


def check_shape(shape):
    """Validates the shape of a draw given as Python ints.

    An int, or a list or tuple of ints and scalar int tensors (a dynamic
    batch size); a 1-D int tensor is accepted as it is.

    Raises:
        ValueError: for a negative or non-integer dimension.
    """
    if isinstance(shape, (tf.Tensor, tf.Variable)):
        return shape
    dims = shape
    if not isinstance(shape, (list, tuple, tf.TensorShape)):
        dims = [shape]
    for dim in dims:
        if isinstance(dim, (tf.Tensor, tf.Variable)):
            continue
        if (
            isinstance(dim, bool)
            or not isinstance(dim, numbers.Integral)
            or dim < 0
        ):
            raise ValueError(
                "`shape` must be an int >= 0 or a list of them (or a 1-D "
                f"int tensor); received {shape!r}."
            )
    return shape


def as_seed(seed):
    """Converts a seed to a stateless seed: an int32 tensor of shape `[2]`.

    Args:
        seed: a Python int, a pair of ints, or an integer tensor of shape
            `[2]`.

    Returns:
        An int32 tensor of shape `[2]`.

    Raises:
        ValueError: for anything else.
    """
    if isinstance(seed, bool):
        raise ValueError(f"`seed` must be an int or a pair; received {seed!r}.")
    if isinstance(seed, numbers.Integral):
        return tf.constant([0, int(seed) % (2**31)], tf.int32)
    seed = tf.convert_to_tensor(seed)
    if not seed.dtype.is_integer or seed.shape != (2,):
        raise ValueError(
            "`seed` must be an int or an integer tensor of shape [2]; "
            f"received dtype {seed.dtype.name} and shape {seed.shape}."
        )
    return tf.cast(seed, tf.int32)


def split_seed(seed, count=2):
    """Splits one stateless seed into `count` independent ones."""
    return tf.unstack(tf.random.experimental.stateless_split(seed, count))


def sample_lambda(shape, alpha, seed, *, inputs_only=False, dtype="float32"):
    """Draws mixing coefficients lam ~ Beta(alpha, alpha).

    With `inputs_only=True`, lam ~ Beta(alpha + 1, alpha): the form that
    mixes inputs only and keeps the first example's label, equal to mixup
    in expectation for losses linear in the label (cross-entropy).

    The draw is `tfp.distributions.Beta(...).sample(shape, seed=seed)`, a
    stateless log-space sampler: correct for alpha from 0.01 to 64 and
    beyond, with no NaN, no value outside [0, 1] and no pile-up at 0.5.
    Outside XLA it is TFP's CPU implementation written out (see
    `_beta_log_space`), so it runs at kernel speed in `Dataset.map` too;
    under XLA it is TFP's rejection sampler. The two differ in their
    random streams: a seed gives the same draw within one of them.
    Exact 0.0 and 1.0 do occur for small alpha: that is float32 rounding of
    values within 1e-7 of the ends, not a bug.

    Args:
        shape: the shape of the draw (an int, a list, or a 1-D int tensor).
        alpha: the Beta concentration, a Python number > 0, or a scalar
            float `tf.Variable` or tensor (its value can then change without
            retracing; an invalid value raises `InvalidArgumentError` at run
            time).
        seed: a stateless seed: an int, a pair of ints or an int tensor of
            shape `[2]`. The same seed gives the same draw.
        inputs_only: draw from Beta(alpha + 1, alpha) instead. Defaults to
            `False`.
        dtype: `"float32"` or `"float64"`. Defaults to `"float32"`.

    Returns:
        A tensor of the given shape and dtype with values in [0, 1].

    Raises:
        ValueError: if `alpha` is not a finite number > 0, `shape` has a
            negative or non-integer dimension, or `dtype` is not float32 or
            float64.

    Example:

    ```python
    lam = keras_mixup.sample_lambda([4], alpha=0.2, seed=42)
    assert lam.shape == (4,) and lam.dtype == tf.float32
    ```
    """
    dtype = check_lambda_dtype(dtype)
    alpha = check_alpha(alpha)
    shape = check_shape(shape)
    seed = as_seed(seed)
    if isinstance(alpha, float):
        concentration = tf.constant(alpha, dtype)
    else:
        concentration = tf.cast(tf.convert_to_tensor(alpha), dtype)
        concentration = tf.debugging.assert_all_finite(
            concentration, "`alpha` must be a finite number > 0"
        )
        with tf.control_dependencies(
            [
                tf.debugging.assert_positive(
                    concentration, message="`alpha` must be a finite number > 0"
                )
            ]
        ):
            concentration = tf.identity(concentration)
    concentration1 = concentration + 1 if inputs_only else concentration
    if implementation_selection.is_xla():
        beta = tfp.distributions.Beta(concentration1, concentration)
        lam = beta.sample(shape, seed=seed)
    else:
        lam = _beta_log_space(shape, concentration1, concentration, seed)
    # Guard the closed interval against any rounding of the sampler.
    return tf.clip_by_value(lam, tf.zeros([], dtype), tf.ones([], dtype))


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


class SeedSource:
    """Hands out a fresh stateless seed for every batch.

    Backed by a `tf.random.Generator` whose state lives in a variable, so
    the next seed is drawn inside the graph (in `Dataset.map`, in a
    `tf.function`, under XLA) without retracing. Drawing a seed reads and
    advances the state atomically: under a parallel `Dataset.map` every
    batch still gets its own seed, and with `seed=None` or sequential
    mapping the sequence is reproducible for a fixed integer seed.

    Under `tf.distribute`, every draw made in a replica context (inside
    `strategy.run`, as in a model's train step) folds in
    `replica_id_in_sync_group`, so replicas never share a seed, whether the
    source was created inside or outside `strategy.scope()`. Input
    pipelines run outside any replica context: give each its own source
    with `input_pipeline_id` (from `tf.distribute.InputContext`), or two
    pipelines with the same integer seed draw the same stream.

    Args:
        seed: an int for a reproducible stream, or `None` for a
            non-deterministic one. Defaults to `None`.
        input_pipeline_id: an int folded into every seed, to tell input
            pipelines with the same `seed` apart, or `None`. Defaults to
            `None`.
    """

    def __init__(self, seed=None, *, input_pipeline_id=None):
        if seed is not None and (
            isinstance(seed, bool) or not isinstance(seed, numbers.Integral)
        ):
            raise ValueError(
                f"`seed` must be an int or None; received {seed!r}."
            )
        if input_pipeline_id is not None and (
            isinstance(input_pipeline_id, bool)
            or not isinstance(input_pipeline_id, numbers.Integral)
            or input_pipeline_id < 0
        ):
            raise ValueError(
                "`input_pipeline_id` must be an int >= 0 or None; received "
                f"{input_pipeline_id!r}."
            )
        self.seed = seed
        self.input_pipeline_id = (
            None if input_pipeline_id is None else int(input_pipeline_id)
        )
        with tf.init_scope():
            generators = tf.random.Generator
            if seed is None:
                self.generator = generators.from_non_deterministic_state()
            else:
                self.generator = generators.from_seed(int(seed))

    def next_seed(self):
        """Returns the next seed, an int32 tensor of shape `[2]`."""
        seed = self.generator.uniform_full_int([2], dtype=tf.int64)
        seed = tf.cast(seed % (2**31 - 1), tf.int32)
        if self.input_pipeline_id is not None:
            seed = tf.random.experimental.stateless_fold_in(
                seed, tf.constant(self.input_pipeline_id, tf.int32)
            )
        replica_id = _replica_id()
        if replica_id is not None:
            seed = tf.random.experimental.stateless_fold_in(
                seed, tf.cast(replica_id, tf.int32)
            )
        return seed


def _replica_id():
    """`replica_id_in_sync_group` inside `strategy.run`, else `None`."""
    if not tf.distribute.has_strategy():
        return None
    if tf.distribute.in_cross_replica_context():
        return None
    context = tf.distribute.get_replica_context()
    if context is None:
        return None
    return context.replica_id_in_sync_group


def check_prob(prob, name="prob"):
    """Validates a probability given as a Python number in [0, 1].

    Args:
        prob: the value to check.
        name: the argument name used in the error message. Defaults to
            `"prob"`.

    Returns:
        `prob` as a Python float.

    Raises:
        ValueError: if `prob` is not a number in [0, 1].
    """
    if isinstance(prob, bool) or not isinstance(prob, numbers.Real):
        raise ValueError(
            f"`{name}` must be a number in [0, 1] (the probability that a "
            f"batch is mixed); received {prob!r} of type "
            f"{type(prob).__name__}."
        )
    prob = float(prob)
    if not 0.0 <= prob <= 1.0:  # also refuses NaN
        raise ValueError(
            f"`{name}` must be a number in [0, 1] (the probability that a "
            f"batch is mixed); received {prob!r}."
        )
    return prob


class MixingState:
    """Whether an object mixes, and with which alpha: the state that
    `keras_mixup.MixupSchedule` changes.

    Every mixing object holds one (`Mixup` builds it; `MixupLayer` and
    `MixupModel` reach it through their `Mixup`; `MixupGAN` holds its own)
    and exposes it as `mixing_state`. The switch and alpha live in
    variables that the traced graph reads, so a change applies from the
    next batch on, without retracing: in `tf.data` pipelines (which capture
    variables by reference), in `tf.function` and under XLA. `prob` is a
    constructor argument and never changes.

    The current switch and alpha are not part of any config, so they are
    not saved: a loaded object starts active with its constructor alpha,
    and a `MixupSchedule` passed to `fit` sets them again for the epoch
    it starts at.

    Args:
        alpha: the constructor alpha, a finite number > 0.
        prob: the probability that a batch is mixed, in [0, 1]. Defaults
            to `1.0`.

    Attributes:
        initial_alpha: the constructor alpha, a Python float.
        prob: the probability that a batch is mixed, a Python float.
        alpha: a scalar float32 `tf.Variable`, the alpha lam is drawn with.
        active: a scalar bool `tf.Variable`; while false, nothing is mixed.
    """

    def __init__(self, alpha, prob=1.0):
        self.initial_alpha = check_alpha(alpha)
        if not isinstance(self.initial_alpha, float):
            raise ValueError(
                f"`alpha` must be a Python number > 0; received {alpha!r}."
            )
        self.prob = check_prob(prob)
        with tf.init_scope():
            self.alpha = tf.Variable(
                self.initial_alpha,
                dtype=tf.float32,
                trainable=False,
                name="mixup_alpha",
            )
            self.active = tf.Variable(
                True, dtype=tf.bool, trainable=False, name="mixup_active"
            )

    def set(self, *, active=None, alpha=None):
        """Changes the switch and/or alpha (`None` leaves it as it is).

        Raises:
            ValueError: if `active` is not a bool or `alpha` is invalid.
        """
        if active is not None and not isinstance(active, bool):
            raise ValueError(
                f"`active` must be True or False; received {active!r}."
            )
        if alpha is not None:
            alpha = check_alpha(alpha)
            if not isinstance(alpha, float):
                raise ValueError(
                    f"`alpha` must be a Python number > 0; received {alpha!r}."
                )
            self.alpha.assign(alpha)
        if active is not None:
            self.active.assign(active)

    def reset(self):
        """Back to the constructor state: active, constructor alpha."""
        self.set(active=True, alpha=self.initial_alpha)

    def decide(self, seed):
        """Whether this batch is mixed: active, and a draw below `prob`.

        Args:
            seed: a stateless seed for the draw (unused when `prob` is 1).

        Returns:
            A scalar bool tensor.
        """
        active = tf.convert_to_tensor(self.active)
        if self.prob == 1.0:
            return active
        draw = tf.random.stateless_uniform([], as_seed(seed))
        return tf.logical_and(active, draw < self.prob)
