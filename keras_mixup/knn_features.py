"""Feature vectors for the nearest-neighbour pairings: the flattened inputs,
or cheap serialisable projections of them (`MeanPool`, `CountSketch`), and
how a `knn_features` callable is saved in a config.

The nearest-neighbour pairings cost a `[B, D] x [D, B]` matrix product per
batch: on raw images (D = 3,072 for 32x32x3) several times the rest of the
mixing step. `MeanPool` (block means: a thumbnail, for images and signals)
and `CountSketch` (a seeded Johnson-Lindenstrauss sketch, for any input)
bring D down to a few dozen first; the neighbours they find are near ones,
mostly the exact ones.
"""

import keras
import numpy as np

from keras_mixup import backend, checks

__all__ = ["CountSketch", "MeanPool", "deserialize", "features", "serialize"]


def deserialize(config):
    """Inverse of `serialize`: a callable, or `None`."""
    if isinstance(config, dict):
        return keras.saving.deserialize_keras_object(config)
    return config


def serialize(knn_features):
    """`knn_features` for a config: `None`, or a registered function or
    an instance of a registered class with `get_config`.

    Raises:
        ValueError: for lambdas, unregistered functions, layers and models,
            rather than save something that would not come back the same.
    """
    if knn_features is None:
        return None
    registered = False
    if not isinstance(knn_features, keras.Layer):
        try:
            name = keras.saving.get_registered_name(knn_features)
            registered = (
                keras.saving.get_registered_object(name) is knn_features
            )
        except (AttributeError, TypeError):
            registered = False
        if not registered and hasattr(knn_features, "get_config"):
            # An instance of a registered class, such as
            # `keras_mixup.CountSketch`.
            kind = type(knn_features)
            name = keras.saving.get_registered_name(kind)
            registered = keras.saving.get_registered_object(name) is kind
    if registered:
        return keras.saving.serialize_keras_object(knn_features)
    raise ValueError(
        "`knn_features` can only be saved in a config when it is a function "
        "registered with `@keras.saving.register_keras_serializable()` (a "
        "registered function may call a model) or an instance of a "
        "registered class with `get_config` (such as "
        "`keras_mixup.CountSketch`); lambdas, unregistered "
        "functions, layers and models (whose weights a config would not "
        f"carry) are not serialised. Received {knn_features!r}."
    )


def features(inputs, knn_features=None):
    """The feature vectors the nearest-neighbour pairings compare.

    Args:
        inputs: a batch-first tensor or nested structure of them.
        knn_features: a callable mapping `inputs` to feature vectors, or
            `None` to use the inputs themselves. Defaults to `None`.

    Returns:
        A float tensor of shape `[B, D]`: every leaf flattened per example
        and concatenated, in float64 if any leaf is float64, else float32.
        No gradient flows through it.
    """
    if knn_features is not None:
        inputs = knn_features(inputs)
    ops = backend.ops()
    leaves = [ops.core.convert_to_tensor(t) for t in keras.tree.flatten(inputs)]
    wide = any(backend.dtype_name(t) == "float64" for t in leaves)
    dtype = "float64" if wide else "float32"
    flat = [ops.core.cast(_per_example(leaf), dtype) for leaf in leaves]
    return ops.core.stop_gradient(ops.numpy.concatenate(flat, axis=1))


def _per_example(leaf):
    """A batch-first tensor reshaped to `[B, D]`, `D` its features."""
    ops = backend.ops()
    shape = tuple(leaf.shape)
    if not shape:
        raise ValueError(
            "The nearest-neighbour pairings need batch-first features "
            "of rank >= 1; received a scalar."
        )
    size = 1
    for dim in shape[1:]:
        size = size * dim if size is not None and dim is not None else None
    if size is None:
        return ops.numpy.reshape(leaf, [ops.core.shape(leaf)[0], -1])
    rows = shape[0] if shape[0] is not None else -1
    return ops.numpy.reshape(leaf, [rows, size])


def _check_dim(dim):
    return checks.check_int(
        dim, "dim", minimum=1, meaning=" (the number of output features)"
    )


def _static_features(inputs, name):
    """`features(inputs)` and its static size, or a clear error."""
    flat = features(inputs)
    if flat.shape[-1] is None:
        shapes = keras.tree.map_structure(lambda t: t.shape, inputs)
        raise ValueError(
            f"`{name}` needs inputs with a static feature size (all but the "
            f"batch dimension known); received inputs of shape {shapes}."
        )
    return flat, flat.shape[-1]


def _blocks(flat, size, dim, layout):
    """`flat` `[B, size]` zero-padded to a multiple of `dim` and reshaped to
    `[B, dim, rows]` (contiguous blocks) or `[B, rows, dim]` (interleaved)."""
    rows = -(-size // dim)
    numpy = backend.ops().numpy
    if rows * dim != size:
        flat = numpy.pad(flat, [[0, 0], [0, rows * dim - size]])
    shape = [-1, dim, rows] if layout == "contiguous" else [-1, rows, dim]
    return numpy.reshape(flat, shape)


#: The call arguments and return value of every `_Features`, for their
#: docstrings (their `{call}` line).
_CALL = """\
    Call arguments:
        inputs: a batch-first tensor or nested structure of tensors with
            static feature sizes.

    Returns:
        A float tensor of shape `[B, dim]` (float64 for float64 inputs,
        else float32), without gradient.
"""


class _Features:
    """What `MeanPool` and `CountSketch` share: equality, hashing, `repr`
    and `from_config`, all from `get_config()`, the constructor
    arguments; and the call's documentation."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__doc__:  # None under python -OO
            cls.__doc__ = cls.__doc__.replace("    {call}\n", _CALL)

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __eq__(self, other):
        return type(other) is type(self) and (
            other.get_config() == self.get_config()
        )

    def __hash__(self):
        return hash((type(self), *sorted(self.get_config().items())))

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


@keras.saving.register_keras_serializable(package="keras_mixup")
class MeanPool(_Features):
    """Cheap `knn_features`: the flattened inputs averaged in `dim` blocks.

    The flattened inputs (every leaf of a nested structure, concatenated),
    zero-padded to a multiple of `dim`, are cut into `dim` contiguous
    blocks, each averaged: for images, a thumbnail. For inputs whose
    neighbouring features are unrelated, use `CountSketch`. See the guide
    "Pairing and semi-supervised partners".

    Args:
        dim: the number of output features, an int >= 1; at least the
            feature size, the output is the input, zero-padded. Defaults
            to `64`.

    {call}

    Raises:
        ValueError: for a bad `dim`, at construction, or inputs whose
            feature size is not static, at trace time.

    Example:

    ```python
    pool = keras_mixup.MeanPool(dim=2)
    x = np.array([[1.0, 3.0, 5.0, 7.0]], "float32")
    np.testing.assert_array_equal(pool(x), [[2.0, 6.0]])
    mixup = keras_mixup.Mixup(alpha=0.2, num_classes=10, pairing="knn",
                              knn_features=keras_mixup.MeanPool(64))
    images = np.random.default_rng(0).uniform(size=(32, 32, 32, 3))
    dataset = tf.data.Dataset.from_tensor_slices(
        (images.astype("float32"), np.arange(32) % 10)).batch(16).map(mixup)
    x, y = next(iter(dataset))
    assert x.shape == (16, 32, 32, 3) and y.shape == (16, 10)
    ```
    """

    def __init__(self, dim=64):
        self.dim = _check_dim(dim)

    def __call__(self, inputs):
        flat, size = _static_features(inputs, "MeanPool")
        rows = -(-size // self.dim)
        blocks = _blocks(flat, size, self.dim, "contiguous")
        return backend.ops().numpy.sum(blocks, axis=2) * (1.0 / rows)

    def get_config(self):
        """The constructor arguments: `{"dim": ...}`.

        Example:

        ```python
        pool = keras_mixup.MeanPool(dim=32)
        assert pool.get_config() == {"dim": 32}
        ```
        """
        return {"dim": self.dim}


@keras.saving.register_keras_serializable(package="keras_mixup")
class CountSketch(_Features):
    """Cheap `knn_features`: a seeded count sketch to `dim` dimensions.

    Feature `i` of the flattened inputs (every leaf of a nested structure,
    concatenated) is added, with a random sign `s_i = +-1`, to output
    `i mod dim`. It is linear and preserves squared Euclidean distances in
    expectation, so the neighbours it finds are near ones, not always the
    exact `knn_k` nearest. The signs come from `seed`, so the sketch is the
    same in every process and after `get_config` / `from_config`. See the
    guide "Pairing and semi-supervised partners".

    Args:
        dim: the number of output features, an int >= 1; at least the
            feature size, the sketch is a signed, zero-padded copy.
            Defaults to `64`.
        seed: the seed of the signs, an int >= 0. Defaults to `0`.

    {call}

    Raises:
        ValueError: for a bad `dim` or `seed`, at construction, or inputs
            whose feature size is not static, at trace time.

    Example:

    ```python
    sketch = keras_mixup.CountSketch(dim=64, seed=0)
    images = np.random.default_rng(0).uniform(size=(32, 32, 32, 3))
    assert sketch(images.astype("float32")).shape == (32, 64)
    mixup = keras_mixup.Mixup(alpha=0.2, num_classes=10, pairing="knn",
                              knn_features=sketch)
    same = keras_mixup.Mixup.from_config(mixup.get_config())
    assert same.knn_features == sketch
    ```
    """

    def __init__(self, dim=64, seed=0):
        self.dim = _check_dim(dim)
        self.seed = checks.check_int(seed, "seed", minimum=0)

    def signs(self, size):
        """The `+-1` sign of each of `size` input features, a NumPy array.

        Args:
            size: the flattened feature size, an int >= 1.

        Returns:
            A float32 array of shape `[size]`.

        Example:

        ```python
        sketch = keras_mixup.CountSketch(dim=2, seed=3)
        signs = sketch.signs(4)
        x = np.array([[1.0, 2.0, 3.0, 4.0]], "float32")
        expected = [signs[0] * 1 + signs[2] * 3, signs[1] * 2 + signs[3] * 4]
        np.testing.assert_array_equal(sketch(x)[0], expected)
        ```
        """
        rng = np.random.default_rng(self.seed)
        return (2 * rng.integers(0, 2, size) - 1).astype("float32")

    def __call__(self, inputs):
        flat, size = _static_features(inputs, "CountSketch")
        ops = backend.ops()
        signs = self.signs(size).astype(backend.dtype_name(flat))
        signed = flat * ops.core.convert_to_tensor(signs)
        blocks = _blocks(signed, size, self.dim, "interleaved")
        return ops.numpy.sum(blocks, axis=1)

    def get_config(self):
        """The constructor arguments: `{"dim": ..., "seed": ...}`.

        Example:

        ```python
        sketch = keras_mixup.CountSketch(dim=32, seed=1)
        assert sketch.get_config() == {"dim": 32, "seed": 1}
        ```
        """
        return {"dim": self.dim, "seed": self.seed}
