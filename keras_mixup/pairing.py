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
- `"label_kernel"` (C-Mixup): a partner drawn with probability
  proportional to a Gaussian kernel on the label distance, for regression
  (Gumbel-max sampling over a `[B, B]` log-kernel).

Every strategy passes an empty batch through. The nearest-neighbour
pairings compare `keras_mixup.knn_features.features(inputs)`; see that
module for cheap `knn_features`.
"""

import functools
import inspect

import numpy as np

from keras_mixup import checks
from keras_mixup.backend import tf
from keras_mixup.knn_features import CountSketch, MeanPool, features
from keras_mixup.labels import class_ids

__all__ = [
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


def _not_self(batch_size):
    """`[B, B]` True off the diagonal: anyone but the example itself."""
    return tf.logical_not(tf.eye(batch_size, dtype=tf.bool))


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
        admissible = tf.logical_and(_not_self(batch_size), same)
    else:
        num_candidates, offset = _rows(partner_labels), batch_size
        admissible = same
    keys = tf.random.stateless_uniform([batch_size, num_candidates], seed=seed)
    scores = tf.where(admissible, keys, -tf.ones_like(keys))
    # A last column below every score keeps the argmax defined when there
    # are no candidates (an empty batch); it is never an admissible pick.
    scores = tf.pad(scores, [[0, 0], [0, 1]], constant_values=-2.0)
    choice = tf.argmax(scores, axis=1, output_type=tf.int32) + offset
    found = tf.reduce_any(admissible, axis=1)
    return tf.where(found, choice, tf.range(batch_size, dtype=tf.int32))


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
    centre = candidates[:1]
    candidates = candidates - centre
    if within:
        products = tf.matmul(candidates, candidates, transpose_b=True)
        squares = tf.linalg.diag_part(products)
    else:
        products = tf.matmul(query - centre, candidates, transpose_b=True)
        squares = tf.reduce_sum(tf.square(candidates), axis=1)
    return products - 0.5 * squares[None, :]


def _minimum(a, b):
    if isinstance(a, int) and isinstance(b, int):
        return min(a, b)
    return tf.minimum(a, b)


def _maximum(a, b):
    if isinstance(a, int) and isinstance(b, int):
        return max(a, b)
    return tf.maximum(a, b)


def _draw_among(nearest, count, batch_size, seed, offset):
    """`offset` plus column `draw` of `nearest`, `draw` uniform in
    `[0, count)` per row; rows with `count == 0` get themselves."""
    uniform = tf.random.stateless_uniform([batch_size], seed=seed)
    draw = tf.cast(uniform * tf.cast(count, tf.float32), tf.int32)
    draw = tf.clip_by_value(draw, 0, _maximum(count - 1, 0))
    choice = tf.gather(nearest, draw[:, None], batch_dims=1)[:, 0] + offset
    if isinstance(count, int):
        return choice
    return tf.where(count > 0, choice, tf.range(batch_size, dtype=tf.int32))


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
    scores = _scores(query, candidates, within=within)
    num_candidates = _rows(candidates)
    minus_inf = tf.cast(-float("inf"), scores.dtype)
    if within:
        scores = tf.linalg.set_diag(
            scores, tf.fill(tf.shape(scores)[:1], minus_inf)
        )
    reachable = num_candidates - 1 if within else num_candidates
    k = _minimum(_maximum(_minimum(knn_k, reachable), 1), num_candidates)
    if admissible is None:
        # Every candidate but the example itself: the same number of
        # admissible neighbours in every row.
        count = _maximum(_minimum(knn_k, reachable), 0)
    else:
        scores = tf.where(admissible, scores, minus_inf)
        if within:
            admissible = tf.logical_and(_not_self(batch_size), admissible)
        count = tf.minimum(
            tf.reduce_sum(tf.cast(admissible, tf.int32), axis=1), k
        )
    if isinstance(count, int) and count == 0:
        return tf.range(batch_size, dtype=tf.int32)  # nobody to pair with
    # Sorted: the admissible neighbours come first.
    _, nearest = tf.math.top_k(scores, k=k)
    return _draw_among(nearest, count, batch_size, seed, offset)


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
        batch_size: the number of examples, an int or a scalar int tensor.
        seed: a stateless seed, an int tensor of shape `[2]`.
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
        if candidates.dtype != query.dtype:
            query = tf.cast(query, tf.float64)
            candidates = tf.cast(candidates, tf.float64)
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

#: What `label_bandwidth` means, for error messages.
LABEL_BANDWIDTH_MEANING = (
    " (sigma, the width of the label kernel exp(-|y_i - y_j|^2 / "
    "(2 sigma^2)), in the units of the labels)"
)


def _continuous_labels(labels, name):
    """Labels flattened per example, `[B, D]` floats; class ids refused."""
    for leaf in tf.nest.flatten(labels):
        leaf = tf.convert_to_tensor(leaf)
        if not leaf.dtype.is_floating:
            raise ValueError(
                "`pairing='label_kernel'` (C-Mixup) compares continuous "
                f"labels, such as regression targets; received `{name}` of "
                f"dtype {leaf.dtype.name} (class ids). Pass float targets, "
                "or use `pairing='same_class'` for classes."
            )
    return features(labels)


def _log_kernel(query, candidates, within, sigma):
    """`[B, C]` logits -|q_i - c_j|^2 / (2 sigma^2) up to a constant per
    row (each row's nearest at 0), -inf on the diagonal `within` a batch."""
    scores = _scores(query, candidates, within=within)
    if within:
        minus_inf = tf.cast(-float("inf"), scores.dtype)
        scores = tf.linalg.set_diag(
            scores, tf.fill(tf.shape(scores)[:1], minus_inf)
        )
    top = tf.reduce_max(scores, axis=1, keepdims=True)
    top = tf.where(top > -float("inf"), top, tf.zeros_like(top))
    # Clamped so that a tiny sigma gives -inf far away, never 0 * inf.
    scale = min(1.0 / sigma**2, float(np.finfo(np.float32).max))
    return (scores - top) * tf.cast(scale, scores.dtype)


def _gumbel_max(logits, seed):
    """One column per row, drawn with probability softmax(logits) (the
    Gumbel-max trick), or -1 for a row that is all -inf or empty."""
    tiny = np.finfo(logits.dtype.as_numpy_dtype).tiny
    uniform = tf.random.stateless_uniform(
        tf.shape(logits), seed=seed, minval=tiny, maxval=1.0, dtype=logits.dtype
    )
    scores = logits - tf.math.log(-tf.math.log(uniform))
    # A last column below every score keeps the argmax defined when there
    # are no candidates (an empty batch); it is never a possible pick.
    scores = tf.pad(scores, [[0, 0], [0, 1]], constant_values=-float("inf"))
    choice = tf.argmax(scores, axis=1, output_type=tf.int32)
    found = tf.reduce_any(logits > -float("inf"), axis=1)
    return tf.where(found, choice, -1)


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
        batch_size: the number of examples, an int or a scalar int tensor.
        seed: a stateless seed, an int tensor of shape `[2]`.
        inputs: unused; accepted for the common strategy signature.
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
        if candidates.dtype != query.dtype:
            query = tf.cast(query, tf.float64)
            candidates = tf.cast(candidates, tf.float64)
    choice = _gumbel_max(_log_kernel(query, candidates, within, sigma), seed)
    offset = 0 if within else batch_size
    itself = tf.range(batch_size, dtype=tf.int32)
    return tf.where(choice >= 0, choice + offset, itself)


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

#: The pairings that look at the labels.
LABEL_PAIRINGS = ("same_class", "same_class_knn", "label_kernel")


_COMMON = ("inputs", "labels", "same_class")


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
            `knn_k`, `knn_features`, `label_bandwidth`.

    Returns:
        An int32 tensor of shape `[batch_size]`.

    Raises:
        ValueError: for an unknown pairing or option, or a strategy's own
            errors (labels missing, invalid `knn_k` or
            `label_bandwidth`, class ids for `"label_kernel"`).
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
    return tf.cast(index, tf.int32)
