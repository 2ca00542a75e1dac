"""Mixing a batch with a partner batch (`keras_mixup.mix_with`).

The batch and the partner batch are concatenated, the partner rows are
their own partners (not mixed), and the batch's rows are sliced back out of
one mix. `tf.data` only, so TensorFlow throughout.
"""

import keras

from keras_mixup import sequences
from keras_mixup.backend import tf
from keras_mixup.engine import float_weights

__all__ = ["mix_with_partner"]


def mix_with_partner(
    engine, x, y, sample_weight, *, partner_x, partner_y, partner_weight
):
    """Mixes a batch with a partner batch with `engine`'s options.

    Returns:
        `(x, y, sample_weight)` of the batch, mixed; `None` entries kept.
    """
    x, y, sample_weight, size = sequences.check_batch(x, y, sample_weight)
    partner_x, partner_y, partner_weight, partner_size = sequences.check_batch(
        partner_x, partner_y, partner_weight, prefix="partner_"
    )
    _check_partner(x, partner_x, "x")
    mix_labels = engine.options["mix_labels"]
    if mix_labels and y is not None:
        _require_partner_labels(partner_y)
        _check_partner(y, partner_y, "y")
    draw = engine.draw(size, x, y, partner_x=partner_x, partner_y=partner_y)
    own = tf.range(size, size + partner_size)
    if draw.partner_index.shape.rank == 2:  # a variant of several partners
        own = tf.tile(own[:, None], [1, tf.shape(draw.partner_index)[1]])
    index = tf.concat([draw.partner_index, own], 0)
    draw = engine.variant.pad(draw._replace(partner_index=index), partner_size)
    both = _concat(x, partner_x)
    labels = weights = None
    if mix_labels:
        labels = None if y is None else _concat(y, partner_y)
        weights = _concat_weights(
            sample_weight, partner_weight, size, partner_size
        )
    mixed = _apply(engine, draw, both, labels, weights, mix_labels)
    mixed = tuple(None if part is None else _head(part, size) for part in mixed)
    return mixed if mix_labels else (mixed[0], y, sample_weight)


def _apply(engine, draw, x, y, sample_weight, mix_labels):
    """`engine.apply`, or its padded form for a dict of inputs holding a
    `"padding_mask"` (the combined mask returned under that key)."""
    if not sequences.is_padded(x):
        return engine.apply(draw, x, y, sample_weight, mix_labels=mix_labels)
    rest, mask = sequences.split_dict(x)
    rest, y, sample_weight, mask = engine.apply_padded(
        draw, rest, mask, y, sample_weight, mix_labels=mix_labels
    )
    return {**rest, sequences.PADDING_MASK: mask}, y, sample_weight


def _concat(structure, partner):
    return tf.nest.map_structure(
        lambda a, b: tf.concat([a, b], axis=0), structure, partner
    )


def _head(structure, size):
    return tf.nest.map_structure(lambda t: t[:size], structure)


def _require_partner_labels(partner_y):
    if partner_y is None:
        raise ValueError(
            "`mix_labels=True` blends labels, so the partner batch needs "
            "labels too; received partner labels None. Use "
            "`mix_labels=False` (the inputs-only form) for unlabelled "
            "partners."
        )


def _check_partner(structure, partner, name):
    """Checks that a partner structure matches the batch's one."""
    try:
        tf.nest.assert_same_structure(structure, partner)
    except (ValueError, TypeError) as error:
        raise ValueError(
            f"`partner_{name}` must have the structure of `{name}`; "
            f"received {tf.nest.map_structure(lambda t: t.shape, partner)} "
            f"for {tf.nest.map_structure(lambda t: t.shape, structure)}."
        ) from error
    for ours, theirs in zip(
        tf.nest.flatten(structure), tf.nest.flatten(partner), strict=True
    ):
        if ours.dtype != theirs.dtype:
            raise ValueError(
                f"`partner_{name}` must have the dtype of `{name}`; received "
                f"{theirs.dtype.name} for {ours.dtype.name}."
            )
        if ours.shape.rank != theirs.shape.rank or not ours.shape[
            1:
        ].is_compatible_with(theirs.shape[1:]):
            raise ValueError(
                f"`partner_{name}` must have the shape of `{name}` apart "
                f"from the batch size; received {theirs.shape} for "
                f"{ours.shape}."
            )


def _concat_weights(weight, partner_weight, size, partner_size):
    """Both sides' sample weights, a missing side counting as 1."""
    if weight is None and partner_weight is None:
        return None
    weights = [
        tf.ones([rows], keras.config.floatx())
        if w is None
        else float_weights(w)
        for w, rows in ((weight, size), (partner_weight, partner_size))
    ]
    weights[1] = tf.cast(weights[1], weights[0].dtype)
    _check_partner(weights[0], weights[1], "sample_weight")
    return tf.concat(weights, axis=0)
