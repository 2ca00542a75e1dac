"""Who is mixed with whom: the partner index of every example in a batch.

A pairing strategy is a function

    strategy(batch_size, seed, *, inputs=None, labels=None,
             partner_inputs=None, partner_labels=None, **options)

returning an int32 tensor of shape `[batch_size]` whose entry `i` is the row
that example `i` is mixed with. Without `partner_inputs` the partners come
from the batch itself and the index points into it. With `partner_inputs`
(a second batch, as in `keras_mixup.mix_with`) the partners come from that
batch and the index points into the concatenation `[batch; partner batch]`:
entries `>= batch_size` are partner rows, and an entry equal to `i` means
that example `i` found no admissible partner and is left unmixed (the
mixing core returns it bit for bit).

Strategies are registered by name in `PAIRINGS`; `partner_index` is the one
entry point the rest of the package calls. Every strategy is pure
TensorFlow with static shapes given a static batch size (no Python loop
over examples, no `tf.unique`): it runs in `tf.data`, in a `tf.function`
and under XLA.

- `"random"`: a random permutation (the paper's pairing, "AC + RP").
- `"same_class"`: a partner of the same class, uniformly among the other
  members of that class (masked random keys and an argmax over a
  `[B, B]` score matrix).
- `"knn"`: a partner drawn uniformly among the `knn_k` nearest neighbours
  (squared Euclidean distance on the flattened inputs or on
  `knn_features(inputs)`, the example itself excluded, `top_k`).
- `"same_class_knn"`: the same, among the members of the same class.

The nearest-neighbour pairings cost a `[B, D] x [D, B]` matrix product per
batch: on raw images (D = 3,072 for 32x32x3) several times the rest of the
mixing step. `MeanPool` (block means: a thumbnail, for images and signals)
and `CountSketch` (a seeded Johnson-Lindenstrauss sketch, for any input)
are cheap, serialisable `knn_features` that bring D down to a few dozen
first; the neighbours they find are near ones, mostly the exact ones.
"""

import inspect

import keras
import numpy as np
import tensorflow as tf

from keras_mixup import sampling


def check_knn_k(knn_k):
    """Validates `knn_k`: an int >= 1.

    Raises:
        ValueError: for anything else.
    """
    return sampling.check_int(
        knn_k,
        "knn_k",
        1,
        " (the number of nearest neighbours a partner is drawn from)",
    )


def check_knn_features(knn_features):
    """Validates `knn_features`: `None` or a callable.

    Raises:
        ValueError: for anything else.
    """
    if knn_features is not None and not callable(knn_features):
        raise ValueError(
            "`knn_features` must be None (distances on the flattened "
            "inputs) or a callable mapping a batch of inputs to feature "
            f"vectors; received {knn_features!r}."
        )
    return knn_features


def class_ids(labels, name="labels"):
    """The class of every example, for the same-class pairings.

    Integer class ids of shape `[B]` or `[B, 1]` are taken as they are;
    float labels of that shape are rounded (binary labels, or class ids
    stored as floats); labels with more than one value per example
    (one-hot, soft, multi-hot) give their argmax.

    Args:
        labels: a batch-first tensor.
        name: the argument name used in error messages. Defaults to
            `"labels"`.

    Returns:
        An int32 tensor of shape `[B]`.

    Raises:
        ValueError: if `labels` is not a single numeric tensor of rank >= 1.
    """
    if tf.nest.is_nested(labels):
        raise ValueError(
            f"The same-class pairings need `{name}` to be a single tensor of "
            f"class ids or one-hot labels; received a nested structure "
            f"{tf.nest.map_structure(lambda t: t.shape, labels)}."
        )
    labels = tf.convert_to_tensor(labels)
    if not (labels.dtype.is_integer or labels.dtype.is_floating):
        raise ValueError(
            f"`{name}` must be numeric for the same-class pairings; received "
            f"dtype {labels.dtype.name}."
        )
    if labels.shape.rank == 0:
        raise ValueError(
            f"`{name}` must be batch-first with rank >= 1; received a scalar."
        )
    if labels.shape.rank == 2 and labels.shape[1] == 1:
        labels = tf.squeeze(labels, axis=1)
    if labels.shape.rank == 1:
        if labels.dtype.is_floating:
            labels = tf.round(labels)
        return tf.cast(labels, tf.int32)
    flat = tf.reshape(labels, [tf.shape(labels)[0], -1])
    return tf.argmax(flat, axis=1, output_type=tf.int32)


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
    leaves = [tf.convert_to_tensor(t) for t in tf.nest.flatten(inputs)]
    dtype = (
        tf.float64 if any(t.dtype == tf.float64 for t in leaves) else tf.float32
    )
    flat = []
    for leaf in leaves:
        if leaf.shape.rank == 0:
            raise ValueError(
                "The nearest-neighbour pairings need batch-first features "
                "of rank >= 1; received a scalar."
            )
        rows = leaf.shape[0] if leaf.shape[0] is not None else -1
        size = 1
        for dim in leaf.shape[1:]:
            size = size * dim if size is not None and dim is not None else None
        if size is None:
            leaf = tf.reshape(leaf, [tf.shape(leaf)[0], -1])
        else:
            leaf = tf.reshape(leaf, [rows, size])
        flat.append(tf.cast(leaf, dtype))
    return tf.stop_gradient(tf.concat(flat, axis=1))


def _check_dim(dim):
    return sampling.check_int(dim, "dim", 1, " (the number of output features)")


def _static_features(inputs, name):
    """`features(inputs)` and its static size, or a clear error."""
    flat = features(inputs)
    if flat.shape[-1] is None:
        shapes = tf.nest.map_structure(lambda t: t.shape, inputs)
        raise ValueError(
            f"`{name}` needs inputs with a static feature size (all but the "
            f"batch dimension known); received inputs of shape {shapes}."
        )
    return flat, flat.shape[-1]


def _blocks(flat, size, dim, layout):
    """`flat` `[B, size]` zero-padded to a multiple of `dim` and reshaped to
    `[B, dim, rows]` (contiguous blocks) or `[B, rows, dim]` (interleaved)."""
    rows = -(-size // dim)
    if rows * dim != size:
        flat = tf.pad(flat, [[0, 0], [0, rows * dim - size]])
    shape = [-1, dim, rows] if layout == "contiguous" else [-1, rows, dim]
    return tf.reshape(flat, shape)


class _Features:
    """What `MeanPool` and `CountSketch` share: equality, hashing, `repr`
    and `from_config`, all from `get_config()`, the constructor
    arguments."""

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

    The nearest-neighbour pairings on raw high-dimensional inputs cost a
    `[B, D] x [D, B]` matrix product per batch; this brings the inputs down
    to `dim` numbers per example in one pass over them: the flattened
    inputs (every leaf of a nested structure, concatenated; see
    `features`), zero-padded to a multiple of `dim`, are cut into `dim`
    contiguous blocks and each block is averaged. For images (flattened
    row by row) the blocks are runs of neighbouring pixels, so this is a
    thumbnail, and neighbours among thumbnails are a classic proxy for
    neighbours among images: distances between block means are at most
    the full distances (divided by the block size), and a pair that
    differs only in fine detail within blocks looks closer than it is.
    For inputs whose neighbouring features are unrelated (tabular data,
    embeddings) use `CountSketch`, which preserves distances in
    expectation on any input.

    It needs a static feature size; it runs in `tf.data`, in a
    `tf.function` and under XLA, and returns float64 for float64 inputs,
    else float32, without gradient.

    Args:
        dim: the number of output features, an int >= 1; when it is at
            least the feature size, the output is the input, zero-padded,
            and distances are exact. Defaults to `64`.

    Call arguments:
        inputs: a batch-first tensor or nested structure of tensors with
            static feature sizes.

    Returns:
        A float tensor of shape `[B, dim]`.

    Raises:
        ValueError: for a bad `dim`, at construction, or inputs whose
            feature size is not static, at trace time.

    Example:

    ```python
    pool = keras_mixup.pairing.MeanPool(dim=2)
    x = np.array([[1.0, 3.0, 5.0, 7.0]], "float32")
    np.testing.assert_array_equal(pool(x), [[2.0, 6.0]])
    mixup = keras_mixup.Mixup(alpha=0.2, num_classes=10, pairing="knn",
                              knn_features=keras_mixup.pairing.MeanPool(64))
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
        return tf.reduce_sum(blocks, axis=2) * (1.0 / rows)

    def get_config(self):
        """The constructor arguments: `{"dim": ...}`.

        Example:

        ```python
        pool = keras_mixup.pairing.MeanPool(dim=32)
        assert pool.get_config() == {"dim": 32}
        ```
        """
        return {"dim": self.dim}


@keras.saving.register_keras_serializable(package="keras_mixup")
class CountSketch(_Features):
    """Cheap `knn_features`: a seeded count sketch to `dim` dimensions.

    The nearest-neighbour pairings on raw high-dimensional inputs cost a
    `[B, D] x [D, B]` matrix product per batch (for a batch of 256 images
    of 32x32x3, several times the rest of the mixing step). This sketch
    brings the inputs down to `dim` dimensions in one pass, so that the
    distances cost little: feature `i` of the flattened inputs (every leaf
    of a nested structure, concatenated; see `features`) is added, with a
    random sign `s_i = +-1`, to output `i mod dim`:

        sketch(x)_j = sum over i with i mod dim == j of s_i * x_i

    It is linear, so the sketch of a difference is the difference of the
    sketches, and squared Euclidean distances are preserved in expectation
    (the random signs make the cross terms vanish on average), with a
    relative spread of about `sqrt(2 / dim)` when a difference is spread
    over many features (a Johnson-Lindenstrauss sketch, as feature hashing
    is, with the interleaved bucket layout instead of a hashed one so that
    no gather is needed). The neighbours it finds are near ones, not
    always the exact `knn_k` nearest: use it when the pairing should be
    local and cheap, and exact distances (`knn_features=None`) when it
    must be exact.

    The signs are drawn with NumPy from `seed` when the sketch is first
    applied to a feature size (at trace time: a constant in the graph),
    so the sketch is the same in every process and after
    `get_config`/`from_config`. It needs a static feature size; it runs
    in `tf.data`, in a `tf.function` and under XLA, and returns float64
    for float64 inputs, else float32, without gradient.

    Args:
        dim: the number of output features, an int >= 1. When it is at
            least the feature size the sketch is a signed copy (padded
            with zeros) and the distances are exact. Defaults to `64`.
        seed: the seed of the signs, an int >= 0. Defaults to `0`.

    Call arguments:
        inputs: a batch-first tensor or nested structure of tensors with
            static feature sizes.

    Returns:
        A float tensor of shape `[B, dim]`.

    Raises:
        ValueError: for a bad `dim` or `seed`, at construction, or inputs
            whose feature size is not static, at trace time.

    Example:

    ```python
    sketch = keras_mixup.pairing.CountSketch(dim=64, seed=0)
    images = np.random.default_rng(0).uniform(size=(32, 32, 32, 3))
    assert sketch(images.astype("float32")).shape == (32, 64)
    mixup = keras_mixup.Mixup(alpha=0.2, num_classes=10, pairing="knn",
                              knn_features=sketch)
    labels = np.arange(32) % 10
    dataset = tf.data.Dataset.from_tensor_slices(
        (images.astype("float32"), labels)).batch(16).map(mixup)
    x, y = next(iter(dataset))
    assert x.shape == (16, 32, 32, 3) and y.shape == (16, 10)
    same = keras_mixup.Mixup.from_config(mixup.get_config())
    assert same.knn_features == sketch
    ```
    """

    def __init__(self, dim=64, seed=0):
        self.dim = _check_dim(dim)
        self.seed = sampling.check_int(seed, "seed", 0)

    def signs(self, size):
        """The `+-1` sign of each of `size` input features, a NumPy array.

        Args:
            size: the flattened feature size, an int >= 1.

        Returns:
            A float32 array of shape `[size]`.

        Example:

        ```python
        sketch = keras_mixup.pairing.CountSketch(dim=2, seed=3)
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
        signed = flat * tf.constant(self.signs(size), flat.dtype)
        blocks = _blocks(signed, size, self.dim, "interleaved")
        return tf.reduce_sum(blocks, axis=1)

    def get_config(self):
        """The constructor arguments: `{"dim": ..., "seed": ...}`.

        Example:

        ```python
        sketch = keras_mixup.pairing.CountSketch(dim=32, seed=1)
        assert sketch.get_config() == {"dim": 32, "seed": 1}
        ```
        """
        return {"dim": self.dim, "seed": self.seed}


def _rows(structure):
    """The static number of rows of a structure's first leaf, else a
    scalar int32 tensor."""
    leaf = tf.convert_to_tensor(tf.nest.flatten(structure)[0])
    if leaf.shape.rank and leaf.shape[0] is not None:
        return leaf.shape[0]
    return tf.shape(leaf, out_type=tf.int32)[0]


def _require(value, pairing, what):
    if value is None:
        raise ValueError(
            f"`pairing={pairing!r}` needs {what}; received None. Pass the "
            "labels (or use `pairing='random'` or `'knn'`)."
        )


def random_partner(
    batch_size,
    seed,
    *,
    inputs=None,
    labels=None,
    partner_inputs=None,
    partner_labels=None,
):
    """A uniformly random permutation of the batch (the paper's pairing).

    With a partner batch, the partners are a random permutation of the
    partner batch, cycled when it is smaller than the batch and trimmed
    when it is larger.

    Args:
        batch_size: the number of examples, an int or a scalar int tensor.
        seed: a stateless seed, an int tensor of shape `[2]`.
        inputs: unused; accepted for the common strategy signature.
        labels: unused; accepted for the common strategy signature.
        partner_inputs: the partner batch, or `None`. Defaults to `None`.
        partner_labels: unused; accepted for the common strategy signature.

    Returns:
        An int32 tensor of shape `[batch_size]`.
    """
    del inputs, labels, partner_labels
    if partner_inputs is None:
        keys = tf.random.stateless_uniform([batch_size], seed=seed)
        return tf.argsort(keys, stable=True, direction="ASCENDING")
    partner_size = _rows(partner_inputs)
    keys = tf.random.stateless_uniform([partner_size], seed=seed)
    order = tf.argsort(keys, stable=True, direction="ASCENDING")
    cycled = tf.gather(order, tf.range(batch_size) % partner_size)
    return tf.cast(cycled, tf.int32) + batch_size


def _self_mask(batch_size, num_candidates, exclude_self):
    """`[B, C]` True where a candidate may be chosen, self excluded."""
    if not exclude_self:
        return None
    return tf.logical_not(tf.eye(batch_size, num_candidates, dtype=tf.bool))


def _and(mask, other):
    if mask is None:
        return other
    if other is None:
        return mask
    return tf.logical_and(mask, other)


def _same_class_mask(
    pairing, batch_size, labels, partner_inputs, partner_labels
):
    _require(labels, pairing, "labels (class ids or one-hot labels)")
    if partner_inputs is not None:
        _require(
            partner_labels,
            pairing,
            "labels on the partner batch too (a labelled partner dataset)",
        )
    query = class_ids(labels, "labels")
    candidates = (
        query
        if partner_inputs is None
        else class_ids(partner_labels, "partner_labels")
    )
    return tf.equal(query[:, None], candidates[None, :])


def same_class_partner(
    batch_size,
    seed,
    *,
    inputs=None,
    labels=None,
    partner_inputs=None,
    partner_labels=None,
):
    """A partner of the same class (the paper's "SC" pairing).

    Each example's partner is drawn uniformly among the other examples of
    its class (independently per example, so a partner may serve twice).
    An example alone in its class in the batch is paired with itself and
    comes back unmixed. Classes are the integer ids, or the argmax of
    one-hot or soft labels (see `class_ids`).

    Args:
        batch_size: the number of examples, an int or a scalar int tensor.
        seed: a stateless seed, an int tensor of shape `[2]`.
        inputs: unused; accepted for the common strategy signature.
        labels: the batch's labels. Required.
        partner_inputs: the partner batch, or `None`. Defaults to `None`.
        partner_labels: the partner batch's labels; required with
            `partner_inputs`.

    Returns:
        An int32 tensor of shape `[batch_size]`.

    Raises:
        ValueError: if the labels needed are missing.
    """
    del inputs
    same = _same_class_mask(
        "same_class", batch_size, labels, partner_inputs, partner_labels
    )
    if partner_inputs is None:
        num_candidates, offset = batch_size, 0
        admissible = _and(_self_mask(batch_size, batch_size, True), same)
    else:
        num_candidates, offset = _rows(partner_labels), batch_size
        admissible = same
    keys = tf.random.stateless_uniform([batch_size, num_candidates], seed=seed)
    scores = tf.where(admissible, keys, -tf.ones_like(keys))
    choice = tf.argmax(scores, axis=1, output_type=tf.int32) + offset
    found = tf.reduce_any(admissible, axis=1)
    return tf.where(found, choice, tf.range(batch_size, dtype=tf.int32))


def _nearest_partner(
    batch_size, seed, query, candidates, admissible, exclude_self, offset, knn_k
):
    """Draws uniformly among the `knn_k` nearest admissible candidates.

    `query` is `[B, D]`, `candidates` `[C, D]` (the same tensor for a draw
    within the batch, `exclude_self`), `admissible` a `[B, C]` bool mask or
    `None` (all admissible). Examples with no admissible candidate get
    themselves.

    The cost is one `[B, D] x [D, C]` matrix product, which dominates for
    raw high-dimensional inputs, plus a few `[B, C]` passes and a `top_k`;
    nothing else touches the `[B, D]` features more than once.
    """
    if query.shape[-1] is not None and candidates.shape[-1] is not None:
        if query.shape[-1] != candidates.shape[-1]:
            raise ValueError(
                "The nearest-neighbour pairings need the batch and the "
                "partner batch to have features of the same size; received "
                f"{query.shape[-1]} and {candidates.shape[-1]}."
            )
    within = query is candidates
    num_candidates = candidates.shape[0]
    if num_candidates is None:
        num_candidates = tf.shape(candidates, out_type=tf.int32)[0]
    # Centre on the first candidate: distances are unchanged, and the
    # |a|^2 + |b|^2 - 2 a.b form loses little precision when the data sit
    # far from the origin (any point near the data serves; this one costs
    # no reduction, and one subtraction serves both sides within a batch).
    centre = candidates[:1]
    candidates = candidates - centre
    if within:
        products = tf.matmul(candidates, candidates, transpose_b=True)
        squares = tf.linalg.diag_part(products)
    else:
        query = query - centre
        products = tf.matmul(query, candidates, transpose_b=True)
        squares = tf.reduce_sum(tf.square(candidates), axis=1)
    # Row i ranks |q_i - c_j|^2 = |q_i|^2 + |c_j|^2 - 2 q_i.c_j over j;
    # |q_i|^2 is the same along the row, so the scores (minus half the
    # distance, up to that constant) leave it out.
    scores = products - 0.5 * squares[None, :]
    minus_inf = tf.cast(-float("inf"), scores.dtype)
    if exclude_self:
        scores = tf.linalg.set_diag(
            scores, tf.fill(tf.shape(scores)[:1], minus_inf)
        )
    reachable = num_candidates - 1 if exclude_self else num_candidates
    if isinstance(reachable, int):
        k = max(min(knn_k, reachable), 1)
    else:
        k = tf.maximum(tf.minimum(knn_k, reachable), 1)
    if admissible is None:
        # Every candidate but the example itself: the same number of
        # admissible neighbours in every row, min(knn_k, reachable).
        count = (
            min(knn_k, reachable)
            if isinstance(reachable, int)
            else tf.minimum(knn_k, reachable)
        )
    else:
        scores = tf.where(admissible, scores, minus_inf)
        admissible = _and(
            _self_mask(batch_size, num_candidates, exclude_self), admissible
        )
        count = tf.minimum(
            tf.reduce_sum(tf.cast(admissible, tf.int32), axis=1), k
        )
    if isinstance(count, int) and count == 0:
        return tf.range(batch_size, dtype=tf.int32)  # nobody to pair with
    # Sorted: the admissible neighbours come first; draw among the first
    # `count` of each row.
    _, nearest = tf.math.top_k(scores, k=k)
    uniform = tf.random.stateless_uniform([batch_size], seed=seed)
    draw = tf.cast(uniform * tf.cast(count, tf.float32), tf.int32)
    if isinstance(count, int):
        draw = tf.minimum(draw, count - 1)
    else:
        draw = tf.clip_by_value(draw, 0, tf.maximum(count - 1, 0))
    choice = tf.gather(nearest, draw[:, None], batch_dims=1)[:, 0]
    if not isinstance(offset, int) or offset:
        choice = choice + offset
    if isinstance(count, int):
        return choice
    return tf.where(count > 0, choice, tf.range(batch_size, dtype=tf.int32))


def _knn(
    pairing,
    batch_size,
    seed,
    inputs,
    partner_inputs,
    admissible,
    knn_k,
    knn_features,
):
    """The nearest-neighbour pairings, within the batch or across two."""
    knn_k = check_knn_k(knn_k)
    knn_features = check_knn_features(knn_features)
    if inputs is None:
        raise ValueError(
            f"`pairing={pairing!r}` needs the inputs; received None."
        )
    query = features(inputs, knn_features)
    if partner_inputs is None:
        return _nearest_partner(
            batch_size, seed, query, query, admissible, True, 0, knn_k
        )
    candidates = features(partner_inputs, knn_features)
    if candidates.dtype != query.dtype:
        dtype = tf.float64
        query, candidates = tf.cast(query, dtype), tf.cast(candidates, dtype)
    return _nearest_partner(
        batch_size,
        seed,
        query,
        candidates,
        admissible,
        False,
        batch_size,
        knn_k,
    )


def knn_partner(
    batch_size,
    seed,
    *,
    inputs=None,
    labels=None,
    partner_inputs=None,
    partner_labels=None,
    knn_k=5,
    knn_features=None,
):
    """A partner drawn uniformly among the `knn_k` nearest neighbours.

    Distances are squared Euclidean between flattened inputs (every leaf of
    a nested structure, concatenated), or between `knn_features(inputs)`.
    The example itself is excluded; `knn_k` is clamped to the number of
    candidates (batch size - 1), so a batch of one comes back unmixed.

    Args:
        batch_size: the number of examples, an int or a scalar int tensor.
        seed: a stateless seed, an int tensor of shape `[2]`.
        inputs: the batch's inputs. Required.
        labels: unused; accepted for the common strategy signature.
        partner_inputs: the partner batch, or `None`. Defaults to `None`.
        partner_labels: unused; accepted for the common strategy signature.
        knn_k: the number of nearest neighbours to draw from, an int >= 1.
            Defaults to `5`.
        knn_features: a callable mapping inputs to feature vectors (such
            as `MeanPool(64)` or `CountSketch(64)`, cheap for large
            inputs), or `None`. Defaults to `None`.

    Returns:
        An int32 tensor of shape `[batch_size]`.
    """
    del labels, partner_labels
    return _knn(
        "knn",
        batch_size,
        seed,
        inputs,
        partner_inputs,
        None,
        knn_k,
        knn_features,
    )


def same_class_knn_partner(
    batch_size,
    seed,
    *,
    inputs=None,
    labels=None,
    partner_inputs=None,
    partner_labels=None,
    knn_k=5,
    knn_features=None,
):
    """A partner among the `knn_k` nearest neighbours of the same class.

    As `knn_partner`, restricted to examples of the same class (see
    `same_class_partner`); an example alone in its class comes back
    unmixed.

    Args:
        batch_size: the number of examples, an int or a scalar int tensor.
        seed: a stateless seed, an int tensor of shape `[2]`.
        inputs: the batch's inputs. Required.
        labels: the batch's labels. Required.
        partner_inputs: the partner batch, or `None`. Defaults to `None`.
        partner_labels: the partner batch's labels; required with
            `partner_inputs`.
        knn_k: the number of nearest neighbours to draw from, an int >= 1.
            Defaults to `5`.
        knn_features: a callable mapping inputs to feature vectors, or
            `None`. Defaults to `None`.

    Returns:
        An int32 tensor of shape `[batch_size]`.
    """
    same = _same_class_mask(
        "same_class_knn", batch_size, labels, partner_inputs, partner_labels
    )
    return _knn(
        "same_class_knn",
        batch_size,
        seed,
        inputs,
        partner_inputs,
        same,
        knn_k,
        knn_features,
    )


#: Pairing strategies by name.
PAIRINGS = {
    "random": random_partner,
    "same_class": same_class_partner,
    "knn": knn_partner,
    "same_class_knn": same_class_knn_partner,
}

#: The pairings that look at the labels.
LABEL_PAIRINGS = ("same_class", "same_class_knn")


def check_pairing(pairing):
    """Validates a pairing name.

    Raises:
        ValueError: if `pairing` is not one of `PAIRINGS`.
    """
    if not isinstance(pairing, str) or pairing not in PAIRINGS:
        raise ValueError(
            f"`pairing` must be one of {sorted(PAIRINGS)}; received "
            f"{pairing!r}."
        )
    return pairing


_COMMON = ("inputs", "labels")


def _options_of(strategy):
    """The option names a strategy takes, or `None` if it takes any."""
    parameters = inspect.signature(strategy).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    return {
        p.name
        for p in parameters
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in _COMMON
    }


def partner_index(
    pairing, batch_size, seed, *, inputs=None, labels=None, **options
):
    """Draws the partner of every example with the named strategy.

    Options that the chosen strategy does not take (such as `knn_k` for
    `"random"`) are ignored, so one set of options serves every strategy;
    an option that no registered strategy takes raises.

    Args:
        pairing: the strategy's name, a key of `PAIRINGS`.
        batch_size: the number of examples, an int or a scalar int tensor.
        seed: a stateless seed, an int tensor of shape `[2]`.
        inputs: the batch's inputs, for strategies that look at them.
        labels: the batch's labels, for strategies that look at them.
        **options: strategy-specific options: `partner_inputs` and
            `partner_labels` (a second batch to draw partners from; the
            index then points into the concatenation of the two batches),
            `knn_k`, `knn_features`.

    Returns:
        An int32 tensor of shape `[batch_size]`.

    Raises:
        ValueError: for an unknown pairing or option, or a strategy's own
            errors (labels missing, invalid `knn_k`).
    """
    strategy = PAIRINGS[check_pairing(pairing)]
    known = set()
    for other in PAIRINGS.values():
        names = _options_of(other)
        if names is None:
            known = None
            break
        known |= names
    if known is not None:
        unknown = sorted(set(options) - known)
        if unknown:
            raise ValueError(
                f"Unknown pairing option(s) {unknown}; the strategies take "
                f"{sorted(known)}."
            )
    accepted = _options_of(strategy)
    if accepted is not None:
        options = {k: v for k, v in options.items() if k in accepted}
    index = strategy(batch_size, seed, inputs=inputs, labels=labels, **options)
    return tf.cast(index, tf.int32)
