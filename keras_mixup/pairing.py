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
"""

import inspect
import numbers

import tensorflow as tf


def check_knn_k(knn_k):
    """Validates `knn_k`: an int >= 1.

    Raises:
        ValueError: for anything else.
    """
    if (
        isinstance(knn_k, bool)
        or not isinstance(knn_k, numbers.Integral)
        or knn_k < 1
    ):
        raise ValueError(
            f"`knn_k` must be an int >= 1 (the number of nearest neighbours "
            f"a partner is drawn from); received {knn_k!r}."
        )
    return int(knn_k)


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
        tf.float64 if any(t.dtype == tf.float64 for t in leaves)
        else tf.float32
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
    return tf.logical_not(
        tf.eye(batch_size, num_candidates, dtype=tf.bool)
    )


def _and(mask, other):
    if mask is None:
        return other
    if other is None:
        return mask
    return tf.logical_and(mask, other)


def _same_class_mask(pairing, batch_size, labels, partner_inputs,
                     partner_labels):
    _require(labels, pairing, "labels (class ids or one-hot labels)")
    if partner_inputs is not None:
        _require(
            partner_labels,
            pairing,
            "labels on the partner batch too (a labelled partner dataset)",
        )
    query = class_ids(labels, "labels")
    candidates = (
        query if partner_inputs is None
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
    keys = tf.random.stateless_uniform(
        [batch_size, num_candidates], seed=seed
    )
    scores = tf.where(admissible, keys, -tf.ones_like(keys))
    choice = tf.argmax(scores, axis=1, output_type=tf.int32) + offset
    found = tf.reduce_any(admissible, axis=1)
    return tf.where(found, choice, tf.range(batch_size, dtype=tf.int32))


def _nearest_partner(batch_size, seed, query, candidates, admissible,
                     exclude_self, offset, knn_k):
    """Draws uniformly among the `knn_k` nearest admissible candidates.

    `query` is `[B, D]`, `candidates` `[C, D]`, `admissible` a `[B, C]`
    bool mask or `None` (all admissible). Examples with no admissible
    candidate get themselves.
    """
    if query.shape[-1] is not None and candidates.shape[-1] is not None:
        if query.shape[-1] != candidates.shape[-1]:
            raise ValueError(
                "The nearest-neighbour pairings need the batch and the "
                "partner batch to have features of the same size; received "
                f"{query.shape[-1]} and {candidates.shape[-1]}."
            )
    num_candidates = candidates.shape[0]
    if num_candidates is None:
        num_candidates = tf.shape(candidates, out_type=tf.int32)[0]
    # Centre on the candidates' mean: distances are unchanged and the
    # |a|^2 + |b|^2 - 2 a.b form loses less precision.
    centre = tf.reduce_mean(candidates, axis=0, keepdims=True)
    query = query - centre
    candidates = candidates - centre
    distances = (
        tf.reduce_sum(tf.square(query), axis=1)[:, None]
        + tf.reduce_sum(tf.square(candidates), axis=1)[None, :]
        - 2 * tf.matmul(query, candidates, transpose_b=True)
    )
    distances = tf.maximum(distances, 0)
    admissible = _and(
        _self_mask(batch_size, num_candidates, exclude_self), admissible
    )
    if admissible is None:
        admissible = tf.ones_like(distances, dtype=tf.bool)
    scores = tf.where(
        admissible, -distances, tf.cast(-float("inf"), distances.dtype)
    )
    reachable = num_candidates - 1 if exclude_self else num_candidates
    if isinstance(reachable, int):
        k = max(min(knn_k, reachable), 1)
    else:
        k = tf.maximum(tf.minimum(knn_k, reachable), 1)
    _, nearest = tf.math.top_k(scores, k=k)
    # The admissible neighbours come first; draw among the first
    # min(k, count) of each row.
    count = tf.minimum(
        tf.reduce_sum(tf.cast(admissible, tf.int32), axis=1), k
    )
    uniform = tf.random.stateless_uniform([batch_size], seed=seed)
    draw = tf.cast(uniform * tf.cast(count, tf.float32), tf.int32)
    draw = tf.clip_by_value(draw, 0, tf.maximum(count - 1, 0))
    choice = tf.gather(nearest, draw[:, None], batch_dims=1)[:, 0]
    choice = tf.cast(choice, tf.int32) + offset
    return tf.where(count > 0, choice, tf.range(batch_size, dtype=tf.int32))


def _knn(pairing, batch_size, seed, inputs, partner_inputs, admissible,
         knn_k, knn_features):
    """The nearest-neighbour pairings, within the batch or across two."""
    knn_k = check_knn_k(knn_k)
    knn_features = check_knn_features(knn_features)
    if inputs is None:
        raise ValueError(
            f"`pairing={pairing!r}` needs the inputs; received None."
        )
    query = features(inputs, knn_features)
    if partner_inputs is None:
        return _nearest_partner(batch_size, seed, query, query, admissible,
                                True, 0, knn_k)
    candidates = features(partner_inputs, knn_features)
    if candidates.dtype != query.dtype:
        dtype = tf.float64
        query, candidates = tf.cast(query, dtype), tf.cast(candidates, dtype)
    return _nearest_partner(batch_size, seed, query, candidates, admissible,
                            False, batch_size, knn_k)


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
        knn_features: a callable mapping inputs to feature vectors, or
            `None`. Defaults to `None`.

    Returns:
        An int32 tensor of shape `[batch_size]`.
    """
    del labels, partner_labels
    return _knn("knn", batch_size, seed, inputs, partner_inputs, None,
                knn_k, knn_features)


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
    return _knn("same_class_knn", batch_size, seed, inputs, partner_inputs,
                same, knn_k, knn_features)


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
        p.name for p in parameters
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in _COMMON
    }


def partner_index(pairing, batch_size, seed, *, inputs=None, labels=None,
                  **options):
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
