"""What changes while a mixing object runs: its seeds, its switch and alpha.

`SeedSource` hands out a fresh stateless seed for every batch; `MixingState`
holds whether the object mixes and with which alpha (what
`keras_mixup.MixupSchedule` changes). Both live in variables that the traced
graph reads, so nothing retraces when they change.
"""

import numbers

from keras_mixup import checks
from keras_mixup.backend import tf

__all__ = ["MixingState", "SeedSource", "as_seed", "split_seed"]


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


def split_seed(seed, *, count=2):
    """Splits one stateless seed into `count` independent ones.

    The first two seeds of a 3-way split are those of a 2-way one.
    """
    return tf.unstack(tf.random.experimental.stateless_split(seed, count))


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


class SeedSource:
    """Hands out a fresh stateless seed for every batch.

    Backed by a `tf.random.Generator` whose state lives in a variable, so
    the next seed is drawn inside the graph (in `Dataset.map`, in a
    `tf.function`, under XLA) without retracing. Drawing a seed reads and
    advances the state atomically: under a parallel `Dataset.map` every
    batch still gets its own seed, and with sequential mapping the sequence
    is reproducible for a fixed integer seed.

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

    Raises:
        ValueError: for a `seed` that is not an int or `None`, or an
            `input_pipeline_id` that is not an int >= 0 or `None`.
    """

    def __init__(self, seed=None, *, input_pipeline_id=None):
        self.seed = checks.check_seed(seed)
        if input_pipeline_id is not None:
            input_pipeline_id = checks.check_int(
                input_pipeline_id,
                "input_pipeline_id",
                minimum=0,
                meaning=" or None",
            )
        self.input_pipeline_id = input_pipeline_id
        with tf.init_scope():
            if seed is None:
                self.generator = (
                    tf.random.Generator.from_non_deterministic_state()
                )
            else:
                self.generator = tf.random.Generator.from_seed(int(seed))

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


class MixingState:
    """Whether an object mixes, and with which alpha: the state that
    `keras_mixup.MixupSchedule` changes.

    Every mixing engine holds one, and every mixing object exposes it as
    `mixing_state`. The switch and alpha live in variables that the traced
    graph reads, so a change applies from the next batch on, without
    retracing: in `tf.data` pipelines (which capture variables by
    reference), in `tf.function` and under XLA. `prob` never changes.

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
        self.initial_alpha = checks.check_alpha(alpha)
        self.prob = checks.check_prob(prob)
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
        if active is not None:
            checks.check_bool(active, "active")
        if alpha is not None:
            self.alpha.assign(checks.check_alpha(alpha))
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
