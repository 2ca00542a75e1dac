"""What changes while a mixing object runs: its seeds, its switch and alpha.

`SeedSource` hands out a fresh stateless seed for every batch; `MixingState`
holds whether the object mixes and with which alpha (what
`keras_mixup.MixupSchedule` changes). Both live in variables that the traced
graph reads, so nothing retraces when they change.
"""

import numbers
import random

import keras

from keras_mixup import backend, checks, compat
from keras_mixup.backend import tf

__all__ = [
    "MixingState",
    "SeedSource",
    "as_seed",
    "load_seed_state",
    "save_seed_state",
]

#: The weights-store key of each kind of seed stream: a `SeedSource`'s
#: generator (TensorFlow) and a `keras.random.SeedGenerator` (JAX, PyTorch).
#: A file saved on one backend loads on another, which ignores the key it
#: has no stream for (and starts from the constructor seed).
SEED_KEYS = {
    "source": "tensorflow_seed_state",
    "generator": "keras_seed_state",
    # PyTorch draws advance a torch.Generator kept with the seed generator.
    "torch": "torch_generator_state",
}


def as_seed(seed):
    """Converts a seed to a stateless seed: an int32 tensor of shape `[2]`.

    Args:
        seed: a Python int, a pair of ints, or an integer tensor of shape
            `[2]`.

    Returns:
        An int32 tensor of shape `[2]`.

    Raises:
        ValueError: for anything else.

    Example:

    ```python
    from keras_mixup.state import as_seed

    np.testing.assert_array_equal(as_seed(7), [0, 7])
    np.testing.assert_array_equal(as_seed((3, 4)), [3, 4])
    ```
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
        seed: an int for a reproducible stream, or `None` for one drawn
            from Python's `random`, as `keras.random.SeedGenerator(None)`
            does (so `keras.utils.set_random_seed` makes it reproducible,
            on every backend alike). Defaults to `None`.
        input_pipeline_id: an int folded into every seed, to tell input
            pipelines with the same `seed` apart, or `None`. Defaults to
            `None`.

    Raises:
        ValueError: for a `seed` that is not an int or `None`, or an
            `input_pipeline_id` that is not an int >= 0 or `None`.

    Example:

    ```python
    from keras_mixup.state import SeedSource

    first, second = SeedSource(1), SeedSource(1)
    a, b = first.next_seed(), first.next_seed()
    assert not np.array_equal(a, b)  # a fresh seed every batch
    np.testing.assert_array_equal(second.next_seed(), a)  # reproducible
    ```
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
        if seed is None:  # as keras.random.SeedGenerator(None) does
            seed = random.randint(1, int(1e9))
        with tf.init_scope():
            self.generator = tf.random.Generator.from_seed(int(seed))

    def next_seed(self):
        """Returns the next seed, an int32 tensor of shape `[2]`."""
        seed = self.generator.uniform_full_int([2], dtype=tf.int64)
        seed = tf.cast(seed % (2**31 - 1), tf.int32)
        if self.input_pipeline_id is not None:
            seed = backend.fold_in(
                seed, tf.constant(self.input_pipeline_id, tf.int32)
            )
        replica_id = _replica_id()
        if replica_id is not None:
            seed = backend.fold_in(seed, tf.cast(replica_id, tf.int32))
        return seed


def _variables(make, alpha, active):
    """`(alpha, active)` as non-trainable variables made by `make`
    (`tf.Variable` or `keras.Variable`)."""
    return (
        make(alpha, dtype="float32", trainable=False, name="mixup_alpha"),
        make(active, dtype="bool", trainable=False, name="mixup_active"),
    )


class MixingState:
    """Whether an object mixes, and with which alpha: the state that
    `keras_mixup.MixupSchedule` changes.

    Every mixing object exposes one as `mixing_state`. The switch and
    alpha live in variables that the traced step reads, so a change
    applies from the next batch on, without retracing, in `tf.data`,
    `tf.function`, XLA and JAX or PyTorch steps. `prob` never changes.
    The current switch and alpha are not saved: a loaded object starts
    active with its constructor alpha. See the guide "Schedules".

    Args:
        alpha: the constructor alpha, a finite number > 0.
        prob: the probability that a batch is mixed, in [0, 1]. Defaults
            to `1.0`.

    Attributes:
        initial_alpha: the constructor alpha, a Python float.
        prob: the probability that a batch is mixed, a Python float.

    Example:

    ```python
    mixup = keras_mixup.Mixup(alpha=0.2, num_classes=3)
    mixup.mixing_state.set(active=False, alpha=0.5)
    assert mixup.mixing_state.values() == (0.5, False)
    mixup.mixing_state.reset()
    assert mixup.mixing_state.values() == (0.2, True)
    ```
    """

    def __init__(self, alpha, prob=1.0):
        self.initial_alpha = checks.check_alpha(alpha)
        self.prob = checks.check_prob(prob)
        self._tensorflow = None
        self._keras = None
        if backend.keras_backend() == "tensorflow":
            self.tensorflow_variables()
        else:
            self._keras = _variables(keras.Variable, self.initial_alpha, True)

    def tensorflow_variables(self):
        """`(alpha, active)` as TensorFlow variables, made on first use with
        the current values."""
        if self._tensorflow is None:
            with tf.init_scope():
                self._tensorflow = _variables(tf.Variable, *self.values())
        return self._tensorflow

    @property
    def variables(self):
        """The Keras variables a layer or model holding the object tracks
        (none on the TensorFlow backend, whose variables `tf.data` and the
        step capture by reference)."""
        return list(self._keras or ())

    def _current(self):
        if backend.name() == "tensorflow":
            return self.tensorflow_variables()
        return self._keras

    @property
    def alpha(self):
        """A scalar float32 variable, the alpha lam is drawn with."""
        return self._current()[0]

    @property
    def active(self):
        """A scalar bool variable; while false, nothing is mixed."""
        return self._current()[1]

    def values(self):
        """`(alpha, active)` as Python values: a float, a bool."""
        pair = self._tensorflow or self._keras
        if pair is None:
            return self.initial_alpha, True
        alpha, active = (keras.ops.convert_to_numpy(v) for v in pair)
        return float(str(alpha)), bool(active)

    def set(self, *, active=None, alpha=None):
        """Changes the switch and/or alpha, in every variable pair.

        Args:
            active: whether the object mixes, a bool, or `None` to leave
                it. Defaults to `None`.
            alpha: the alpha to draw with, a finite number > 0, or `None`
                to leave it. Defaults to `None`.

        Raises:
            ValueError: if `active` is not a bool or `alpha` is invalid.
        """
        if active is not None:
            checks.check_bool(active, "active")
        if alpha is not None:
            alpha = checks.check_alpha(alpha)
        for pair in (self._tensorflow, self._keras):
            if pair is None:
                continue
            if alpha is not None:
                pair[0].assign(alpha)
            if active is not None:
                pair[1].assign(active)

    def reset(self):
        """Back to the constructor state: active, constructor alpha."""
        self.set(active=True, alpha=self.initial_alpha)

    def decide(self, seed):
        """Whether this batch is mixed: active, and a draw below `prob`.

        Args:
            seed: a seed for the draw (unused when `prob` is 1), as
                `keras_mixup.backend.uniform` takes it.

        Returns:
            A scalar bool tensor.
        """
        ops = backend.ops()
        if backend.name() == "torch":  # the tensor, not Keras's conversion
            active = self.active.value
        else:
            active = ops.core.convert_to_tensor(self.active)
        if self.prob == 1.0:
            return active
        draw = backend.uniform([], seed)
        return ops.numpy.logical_and(active, draw < self.prob)


def save_seed_state(store, *, seed_source=None, seed_generator=None):
    """Writes where the seed streams are into a Keras weights store (what
    `save_own_variables` receives), so that a loaded model draws the
    same next lam and partners as the saved one.

    Args:
        store: the dict-like weights store.
        seed_source: a `SeedSource`, or `None`. Defaults to `None`.
        seed_generator: a `keras.random.SeedGenerator`, or `None`.
            Defaults to `None`.
    """
    if seed_source is not None:
        store[SEED_KEYS["source"]] = seed_source.generator.state.numpy()
    if seed_generator is not None:
        store[SEED_KEYS["generator"]] = keras.ops.convert_to_numpy(
            seed_generator.state.value
        )
        if backend.keras_backend() == "torch":
            torch_state = compat.torch_generator_state(seed_generator)
            if torch_state is not None:
                store[SEED_KEYS["torch"]] = torch_state


def load_seed_state(store, *, seed_source=None, seed_generator=None):
    """Sets the seed streams from a Keras weights store written by
    `save_seed_state`; a stream whose key the store lacks (a file from
    another backend, or from before seeds were saved) is left as it is.

    Args:
        store: the dict-like weights store.
        seed_source: a `SeedSource`, or `None`. Defaults to `None`.
        seed_generator: a `keras.random.SeedGenerator`, or `None`.
            Defaults to `None`.
    """
    keys = set(store.keys())
    if seed_source is not None and SEED_KEYS["source"] in keys:
        seed_source.generator.state.assign(store[SEED_KEYS["source"]])
    if seed_generator is not None and SEED_KEYS["generator"] in keys:
        seed_generator.state.assign(store[SEED_KEYS["generator"]])
        if backend.keras_backend() == "torch" and SEED_KEYS["torch"] in keys:
            compat.set_torch_generator_state(
                seed_generator, store[SEED_KEYS["torch"]]
            )
