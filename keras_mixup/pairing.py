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
entry point the rest of the package calls. Every strategy is written once
against `keras_mixup.backend.ops()`, with static shapes given a static batch
size (no Python loop over examples, no `unique`): it runs in `tf.data`, in a
`tf.function` and under XLA on TensorFlow (with a dynamic batch size too),
and inside a JAX (under `jax.jit`) or PyTorch model. The random draws come
from `keras_mixup.backend.uniform`: a stateless TensorFlow seed gives the
same partners as ever, a `keras.random.SeedGenerator` advances with each
draw.

- `"random"`: a random permutation (the paper's pairing, "AC + RP").
- `"same_class"`: a partner of the same class, uniformly among the other
  members of that class (masked random keys and an argmax over a
  `[B, B]` score matrix).
- `"knn"`: a partner drawn uniformly among the `knn_k` nearest neighbours
  (squared Euclidean distance on the flattened inputs or on
  `knn_features(inputs)`, the example itself excluded, `top_k`).
- `"same_class_knn"`: the same, among the members of the same class.
- `"label_kernel"` (C-Mixup): a partner drawn with probability
  proportional to a Gaussian kernel on the label distance, for regression
  (Gumbel-max sampling over a `[B, B]` log-kernel).

Every strategy passes an empty batch through. The nearest-neighbour
pairings compare `keras_mixup.knn_features.features(inputs)`; see that
module for cheap `knn_features`.

Every check is made on what is known when the call is traced (the
arguments, the dtypes and the static shapes): the same `ValueError` on every
backend, eagerly on PyTorch, when a `tf.function` or `tf.data` map is traced
and when `jax.jit` traces a JAX step. No check reads the values in a batch,
so none is left for run time: values are not validated on any backend (a
NaN in the inputs or labels is not reported), and on TensorFlow with a
dynamic batch size the batch size is taken as given (the entry points
compare the sizes of a batch's parts first, with `checks.check_batch`).
"""

import functools
import inspect

import keras
import numpy as np

from keras_mixup import backend, checks
from keras_mixup.knn_features import CountSketch, MeanPool, features
from keras_mixup.labels import class_ids

__all__ = [
    "KNN_PAIRINGS",
    "LABEL_PAIRINGS",
    "NAMES",
    "PAIRINGS",
    "CountSketch",
    "MeanPool",
    "knn_partner",
    "label_kernel_partner",
    "partner_index",
    "random_partner",
    "same_class_knn_partner",
    "same_class_partner",
]

#: What `knn_k` means, for error messages.
KNN_K_MEANING = " (the number of nearest neighbours a partner is drawn from)"


def _rows(structure):
    """The static number of rows of a structure's first leaf, else (on
    TensorFlow) a scalar int32 tensor."""
    ops = backend.ops()
    leaf = ops.core.convert_to_tensor(keras.tree.flatten(structure)[0])
    return ops.core.shape(leaf)[0]


def _positions(batch_size):
    """`[0, 1, ..., batch_size - 1]`, int32: every example as its own
    partner."""
    return backend.ops().numpy.arange(batch_size, dtype="int32")


def _int32(tensor):
    return backend.ops().core.cast(tensor, "int32")


def _require(value, pairing, what):
    if value is None:
        raise ValueError(
            f"`pairing={pairing!r}` needs {what}; received None. Pass the "
            "labels (or use `pairing='random'` or `'knn'`)."
        )


#: The first two `Args:` entries of every strategy and of `partner_index`,
#: for the `{batch_size_and_seed}` line of their docstrings.
_BATCH_SIZE_AND_SEED = """\
        batch_size: the number of examples, an int (or on TensorFlow a
            scalar int tensor, for a dynamic batch size).
        seed: a stateless TensorFlow seed (an int tensor of shape `[2]`)
            or a `keras.random.SeedGenerator`.
"""


def _documented(function):
    """`function` with the `{batch_size_and_seed}` line of its docstring
    filled in."""
    if function.__doc__:  # None under python -OO
        function.__doc__ = function.__doc__.replace(
            "        {batch_size_and_seed}\n", _BATCH_SIZE_AND_SEED
        )
    return function


@_documented
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
        {batch_size_and_seed}
        inputs: unused; accepted for the common strategy signature.
            Defaults to `None`.
        labels: unused; accepted for the common strategy signature.
            Defaults to `None`.
        partner_inputs: the partner batch, or `None`. Defaults to `None`.
        partner_labels: unused; accepted for the common strategy
            signature. Defaults to `None`.

    Returns:
        An int32 tensor of shape `[batch_size]`.
    """
    del inputs, labels, partner_labels
    numpy = backend.ops().numpy
    if partner_inputs is None:
        return backend.permutation(batch_size, seed)
    partner_size = _rows(partner_inputs)
    order = backend.permutation(partner_size, seed)
    cycled = numpy.take(order, _positions(batch_size) % partner_size)
    return _int32(cycled) + batch_size


def _not_self(batch_size):
    """`[B, B]` True off the diagonal: anyone but the example itself."""
    numpy = backend.ops().numpy
    return numpy.logical_not(numpy.eye(batch_size, dtype="bool"))


def _without_self(scores):
    """`[B, B]` scores with -inf on the diagonal: nobody is their own
    partner."""
    numpy = backend.ops().numpy
    itself = numpy.eye(_rows(scores), dtype="bool")
    return numpy.where(itself, float("-inf"), scores)


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
    return backend.ops().numpy.equal(query[:, None], candidates[None, :])


@_documented
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
        {batch_size_and_seed}
        inputs: unused; accepted for the common strategy signature.
            Defaults to `None`.
        labels: the batch's labels. Required.
        partner_inputs: the partner batch, or `None`. Defaults to `None`.
        partner_labels: the partner batch's labels; required with
            `partner_inputs`. Defaults to `None`.

    Returns:
        An int32 tensor of shape `[batch_size]`.

    Raises:
        ValueError: if the labels needed are missing.
    """
    del inputs
    same = _same_class_mask(
        "same_class", batch_size, labels, partner_inputs, partner_labels
    )
    numpy = backend.ops().numpy
    if partner_inputs is None:
        num_candidates, offset = batch_size, 0
        admissible = numpy.logical_and(_not_self(batch_size), same)
    else:
        num_candidates, offset = _rows(partner_labels), batch_size
        admissible = same
    keys = backend.uniform([batch_size, num_candidates], seed)
    scores = numpy.where(admissible, keys, -1.0)
    # A last column below every score keeps the argmax defined when there
    # are no candidates (an empty batch); it is never an admissible pick.
    scores = numpy.pad(scores, [[0, 0], [0, 1]], constant_values=-2.0)
    choice = _int32(numpy.argmax(scores, axis=1)) + offset
    found = numpy.any(admissible, axis=1)
    return numpy.where(found, choice, _positions(batch_size))


def _scores(query, candidates, *, within):
    """`[B, C]` scores ranking each row's candidates, nearest highest.

    Row i ranks |q_i - c_j|^2 = |q_i|^2 + |c_j|^2 - 2 q_i.c_j over j;
    |q_i|^2 is the same along the row, so the score `q_i.c_j - |c_j|^2 / 2`
    leaves it out. One `[B, D] x [D, C]` product, which dominates for raw
    high-dimensional inputs; nothing else reads the features twice.
    """
    if query.shape[-1] is not None and candidates.shape[-1] is not None:
        if query.shape[-1] != candidates.shape[-1]:
            raise ValueError(
                "The nearest-neighbour pairings need the batch and the "
                "partner batch to have features of the same size; received "
                f"{query.shape[-1]} and {candidates.shape[-1]}."
            )
    # Centre on the first candidate: distances are unchanged, and the
    # |a|^2 + |b|^2 - 2 a.b form loses little precision when the data sit
    # far from the origin (one subtraction serves both sides in a batch).
    numpy = backend.ops().numpy
    centre = candidates[:1]
    candidates = candidates - centre
    if within:
        products = numpy.matmul(candidates, numpy.transpose(candidates))
        squares = numpy.diagonal(products)
    else:
        products = numpy.matmul(query - centre, numpy.transpose(candidates))
        squares = numpy.sum(numpy.square(candidates), axis=1)
    return products - 0.5 * squares[None, :]


def _minimum(a, b):
    if isinstance(a, int) and isinstance(b, int):
        return min(a, b)
    return backend.ops().numpy.minimum(a, b)


def _maximum(a, b):
    if isinstance(a, int) and isinstance(b, int):
        return max(a, b)
    return backend.ops().numpy.maximum(a, b)


def _draw_among(nearest, count, batch_size, seed, offset):
    """`offset` plus column `draw` of `nearest`, `draw` uniform in
    `[0, count)` per row; rows with `count == 0` get themselves."""
    ops = backend.ops()
    uniform = backend.uniform([batch_size], seed)
    draw = _int32(uniform * ops.core.cast(count, "float32"))
    draw = ops.numpy.clip(draw, 0, _maximum(count - 1, 0))
    # Row i's pick is entry `i * k + draw_i` of the flattened `[B, k]`.
    picks = _positions(batch_size) * ops.core.shape(nearest)[1] + draw
    choice = ops.numpy.take(ops.numpy.reshape(nearest, [-1]), picks)
    choice = _int32(choice) + offset
    if isinstance(count, int):
        return choice
    return ops.numpy.where(count > 0, choice, _positions(batch_size))


def _nearest_partner(
    batch_size, seed, query, candidates, *, admissible, within, knn_k, offset
):
    """Draws uniformly among the `knn_k` nearest admissible candidates.

    `query` is `[B, D]`, `candidates` `[C, D]` (the same tensor for a draw
    within the batch, `within`, which excludes each example itself),
    `admissible` a `[B, C]` bool mask or `None` (all admissible). Returns
    indices into the candidates; examples with no admissible candidate
    (and every example of an empty batch) get their own index.
    """
    numpy = backend.ops().numpy
    scores = _scores(query, candidates, within=within)
    num_candidates = _rows(candidates)
    if within:
        scores = _without_self(scores)
    reachable = num_candidates - 1 if within else num_candidates
    k = _minimum(_maximum(_minimum(knn_k, reachable), 1), num_candidates)
    if admissible is None:
        # Every candidate but the example itself: the same number of
        # admissible neighbours in every row.
        count = _maximum(_minimum(knn_k, reachable), 0)
    else:
        scores = numpy.where(admissible, scores, float("-inf"))
        if within:
            admissible = numpy.logical_and(_not_self(batch_size), admissible)
        count = numpy.minimum(numpy.sum(_int32(admissible), axis=1), k)
    if any(isinstance(n, int) and n == 0 for n in (count, k)):
        return _positions(batch_size)  # nobody to pair with
    # Sorted: the admissible neighbours come first.
    _, nearest = backend.ops().math.top_k(scores, k)
    return _draw_among(nearest, count, batch_size, seed, offset)


def _common_dtype(query, candidates):
    """Both in float64 if either is (features are float32 or float64)."""
    if backend.dtype_name(candidates) == backend.dtype_name(query):
        return query, candidates
    cast = backend.ops().core.cast
    return cast(query, "float64"), cast(candidates, "float64")


@_documented
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
    same_class=False,
):
    """A partner drawn uniformly among the `knn_k` nearest neighbours.

    Distances are squared Euclidean between flattened inputs (every leaf of
    a nested structure, concatenated), or between `knn_features(inputs)`.
    The example itself is excluded; `knn_k` is clamped to the number of
    candidates (batch size - 1), so a batch of one comes back unmixed. With
    `same_class` (the `"same_class_knn"` pairing) the neighbours are those
    of the same class (see `same_class_partner`), and an example alone in
    its class comes back unmixed.

    Args:
        {batch_size_and_seed}
        inputs: the batch's inputs. Required.
        labels: the batch's labels; required with `same_class`. Defaults
            to `None`.
        partner_inputs: the partner batch, or `None`. Defaults to `None`.
        partner_labels: the partner batch's labels; required with
            `same_class` and `partner_inputs`. Defaults to `None`.
        knn_k: the number of nearest neighbours to draw from, an int >= 1.
            Defaults to `5`.
        knn_features: a callable mapping inputs to feature vectors (such
            as `MeanPool(64)` or `CountSketch(64)`, cheap for large
            inputs), or `None`. Defaults to `None`.
        same_class: draw among the neighbours of the same class only.
            Defaults to `False`.

    Returns:
        An int32 tensor of shape `[batch_size]`.

    Raises:
        ValueError: for missing inputs (or labels with `same_class`), an
            invalid `knn_k`, or features of different sizes.
    """
    name = "same_class_knn" if same_class else "knn"
    admissible = None
    if same_class:
        admissible = _same_class_mask(
            name, batch_size, labels, partner_inputs, partner_labels
        )
    knn_k = checks.check_int(knn_k, "knn_k", minimum=1, meaning=KNN_K_MEANING)
    if inputs is None:
        raise ValueError(f"`pairing={name!r}` needs the inputs; received None.")
    query = features(inputs, knn_features)
    candidates = query
    if partner_inputs is not None:
        candidates = features(partner_inputs, knn_features)
        query, candidates = _common_dtype(query, candidates)
    # Partner rows follow the batch's in the index.
    return _nearest_partner(
        batch_size,
        seed,
        query,
        candidates,
        admissible=admissible,
        within=partner_inputs is None,
        knn_k=knn_k,
        offset=0 if partner_inputs is None else batch_size,
    )


#: The `"same_class_knn"` pairing: `knn_partner` among the same class.
same_class_knn_partner = functools.partial(knn_partner, same_class=True)
same_class_knn_partner.__doc__ = """`knn_partner` with `same_class=True`: a
partner drawn uniformly among the `knn_k` nearest neighbours of the same
class (the `"same_class_knn"` pairing)."""

#: What `label_bandwidth` means, for error messages.
LABEL_BANDWIDTH_MEANING = (
    " (sigma, the width of the label kernel exp(-|y_i - y_j|^2 / "
    "(2 sigma^2)), in the units of the labels)"
)


def _continuous_labels(labels, name):
    """Labels flattened per example, `[B, D]` floats; class ids refused."""
    for leaf in keras.tree.flatten(labels):
        leaf = backend.ops().core.convert_to_tensor(leaf)
        if not backend.is_floating(leaf):
            raise ValueError(
                "`pairing='label_kernel'` (C-Mixup) compares continuous "
                f"labels, such as regression targets; received `{name}` of "
                f"dtype {backend.dtype_name(leaf)} (class ids). Pass float "
                "targets, "
                "or use `pairing='same_class'` for classes."
            )
    return features(labels)


def _log_kernel(query, candidates, within, sigma):
    """`[B, C]` logits -|q_i - c_j|^2 / (2 sigma^2) up to a constant per
    row (each row's nearest at 0), -inf on the diagonal `within` a batch."""
    ops = backend.ops()
    scores = _scores(query, candidates, within=within)
    if within:
        scores = _without_self(scores)
    top = _row_max(scores)
    top = ops.numpy.where(top > -float("inf"), top, 0.0)
    # Clamped so that a tiny sigma gives -inf far away, never 0 * inf.
    scale = min(1.0 / sigma**2, float(np.finfo(np.float32).max))
    return (scores - top) * ops.core.cast(scale, backend.dtype_name(scores))


def _row_max(scores):
    """`[B, 1]`: the largest score of each row, -inf for a row without
    candidates."""
    numpy = backend.ops().numpy
    padded = numpy.pad(scores, [[0, 0], [0, 1]], constant_values=-np.inf)
    if padded.shape[0] == 0:
        # An empty batch: Keras refuses the max of an empty tensor.
        return padded[:, :1]
    return numpy.max(padded, axis=1, keepdims=True)


def _gumbel_max(logits, seed):
    """One column per row, drawn with probability softmax(logits) (the
    Gumbel-max trick), or -1 for a row that is all -inf or empty."""
    ops = backend.ops()
    numpy = ops.numpy
    dtype = backend.dtype_name(logits)
    uniform = backend.uniform(
        ops.core.shape(logits),
        seed,
        minval=float(np.finfo(dtype).tiny),
        maxval=1.0,
        dtype=dtype,
    )
    scores = logits - numpy.log(-numpy.log(uniform))
    # A last column below every score keeps the argmax defined when there
    # are no candidates (an empty batch); it is never a possible pick.
    scores = numpy.pad(scores, [[0, 0], [0, 1]], constant_values=-np.inf)
    choice = _int32(numpy.argmax(scores, axis=1))
    found = numpy.any(logits > -float("inf"), axis=1)
    return numpy.where(found, choice, -1)


@_documented
def label_kernel_partner(
    batch_size,
    seed,
    *,
    inputs=None,
    labels=None,
    partner_inputs=None,
    partner_labels=None,
    label_bandwidth=1.0,
):
    """A partner with a similar label (C-Mixup, Yao et al., NeurIPS 2022).

    The partner of example i is drawn from the batch with probability
    proportional to `exp(-|y_i - y_j|^2 / (2 sigma^2))`, `sigma` the
    `label_bandwidth` and labels flattened per example (every leaf of a
    nested structure, concatenated). The example itself is excluded, so a
    batch of one comes back unmixed. With a partner batch, partners are
    drawn from it by the same kernel. The draw is exact categorical
    sampling in the graph (the Gumbel-max trick over the log-kernel).
    As `sigma` grows the partners become uniform; as it shrinks, each
    example is mixed with its nearest label.

    Args:
        {batch_size_and_seed}
        inputs: unused; accepted for the common strategy signature.
            Defaults to `None`.
        labels: the batch's labels, floats (regression targets, or soft or
            one-hot rows). Required.
        partner_inputs: the partner batch, or `None`. Defaults to `None`.
        partner_labels: the partner batch's labels; required with
            `partner_inputs`. Defaults to `None`.
        label_bandwidth: sigma, a finite number > 0. Defaults to `1.0`.

    Returns:
        An int32 tensor of shape `[batch_size]`.

    Raises:
        ValueError: for missing labels, integer labels (class ids), an
            invalid `label_bandwidth`, or labels of different sizes.
    """
    del inputs
    sigma = checks.check_number(
        label_bandwidth, "label_bandwidth", LABEL_BANDWIDTH_MEANING
    )
    _require(labels, "label_kernel", "labels (continuous targets)")
    query = _continuous_labels(labels, "labels")
    within = partner_inputs is None
    candidates = query
    if not within:
        _require(partner_labels, "label_kernel", "labels on the partner batch")
        candidates = _continuous_labels(partner_labels, "partner_labels")
        query, candidates = _common_dtype(query, candidates)
    choice = _gumbel_max(_log_kernel(query, candidates, within, sigma), seed)
    offset = 0 if within else batch_size
    where = backend.ops().numpy.where
    return where(choice >= 0, choice + offset, _positions(batch_size))


#: Pairing strategies by name.
PAIRINGS = {
    "random": random_partner,
    "same_class": same_class_partner,
    "knn": knn_partner,
    "same_class_knn": same_class_knn_partner,
    "label_kernel": label_kernel_partner,
}

#: The accepted values of `pairing`.
NAMES = sorted(PAIRINGS)

#: The pairings that look for nearest neighbours (`knn_k`, `knn_features`).
KNN_PAIRINGS = ("knn", "same_class_knn")

#: The pairings that look at the labels.
LABEL_PAIRINGS = ("same_class", "same_class_knn", "label_kernel")


_COMMON = ("inputs", "labels", "same_class")


@functools.cache
def _options_of(strategy):
    """The option names a strategy of `PAIRINGS` takes, or `None` if it
    takes any; read once per strategy (PyTorch runs the pairing eagerly
    every step, and reading a signature costs as much as the draw)."""
    parameters = inspect.signature(strategy).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    return frozenset(
        p.name
        for p in parameters
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in _COMMON
    )


@_documented
def partner_index(
    pairing, batch_size, seed, *, inputs=None, labels=None, **options
):
    """Draws the partner of every example with the named strategy.

    Options that the chosen strategy does not take (such as `knn_k` for
    `"random"`) are ignored, so one set of options serves every strategy;
    an option that no registered strategy takes raises.

    Args:
        pairing: the strategy's name, a key of `PAIRINGS`.
        {batch_size_and_seed}
        inputs: the batch's inputs, for strategies that look at them.
            Defaults to `None`.
        labels: the batch's labels, for strategies that look at them.
            Defaults to `None`.
        **options: strategy-specific options: `partner_inputs` and
            `partner_labels` (a second batch to draw partners from; the
            index then points into the concatenation of the two batches),
            `knn_k`, `knn_features`, `label_bandwidth`.

    Returns:
        An int32 tensor of shape `[batch_size]`.

    Raises:
        ValueError: for an unknown pairing or option, or a strategy's own
            errors (labels missing, invalid `knn_k` or
            `label_bandwidth`, class ids for `"label_kernel"`).

    Example:

    ```python
    from keras_mixup.pairing import partner_index

    labels = tf.constant([0, 0, 1, 1, 2, 2])
    seed = tf.constant([1, 2])
    partners = partner_index("same_class", 6, seed, labels=labels)
    np.testing.assert_array_equal(tf.gather(labels, partners), labels)
    ```
    """
    strategy = PAIRINGS[checks.check_choice(pairing, "pairing", NAMES)]
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
    return _int32(index)
