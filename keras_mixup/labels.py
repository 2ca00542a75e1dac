"""Labels: checking them, one-hot encoding class ids, smoothing, and reading
classes back for the same-class pairings."""

import keras

from keras_mixup import checks
from keras_mixup.backend import tf

__all__ = ["class_ids", "encode_labels", "smooth_labels"]


def smooth_labels(labels, label_smoothing):
    """Applies label smoothing to float labels.

    Labels whose last dimension is greater than 1 are treated as
    categorical (`y * (1 - eps) + eps / num_classes`, as
    `keras.losses.CategoricalCrossentropy`); rank-1 labels or a last
    dimension of 1 as binary (`y * (1 - eps) + eps / 2`, as
    `keras.losses.BinaryCrossentropy`).
    """
    if not label_smoothing:
        return labels
    if labels.shape.rank == 1 or labels.shape[-1] == 1:
        num_classes = 2
    else:
        num_classes = labels.shape[-1]
        if num_classes is None:
            num_classes = tf.cast(tf.shape(labels)[-1], labels.dtype)
    return labels * (1 - label_smoothing) + label_smoothing / num_classes


def _one_hot(labels, num_classes):
    """Class ids `[B]` or `[B, 1]` as one-hot rows, range checked."""
    if labels.shape.rank == 2 and labels.shape[1] == 1:
        labels = tf.squeeze(labels, axis=1)
    if labels.shape.rank != 1:
        raise ValueError(
            "Integer labels must be class ids of shape [batch] or "
            f"[batch, 1]; received shape {labels.shape}. Pass one-hot "
            "or multi-hot labels as floats."
        )
    ids = tf.cast(labels, tf.int32)
    outside = tf.logical_or(ids < 0, ids >= num_classes)
    check = tf.debugging.Assert(
        tf.logical_not(tf.reduce_any(outside)),
        [
            f"Labels must be in [0, {num_classes}) (num_classes="
            f"{num_classes}); received the class id",
            tf.boolean_mask(ids, outside)[:1],
        ],
    )
    with tf.control_dependencies([check]):
        return tf.one_hot(ids, num_classes, dtype=keras.config.floatx())


def _check_float_labels(labels, num_classes):
    """With `num_classes` set, float labels must be rows of that width."""
    if num_classes is None:
        return
    if labels.shape.rank == 1 or (
        labels.shape.rank == 2 and labels.shape[1] == 1
    ):
        raise ValueError(
            f"`num_classes={num_classes}` one-hot encodes class ids, but the "
            f"labels are floats of shape {labels.shape} (dtype "
            f"{labels.dtype.name}): cast class ids to an integer dtype "
            "(such as `tf.cast(y, tf.int32)`), or pass one-hot labels of "
            f"shape [batch, {num_classes}]."
        )
    width = labels.shape[-1]
    if width is not None and width != num_classes:
        raise ValueError(
            f"The labels have {width} values per example (shape "
            f"{labels.shape}), but `num_classes={num_classes}`: one-hot or "
            "soft labels must have `num_classes` values in their last "
            "dimension. Fix `num_classes`, or the labels."
        )


def encode_labels(labels, num_classes=None, label_smoothing=0.0):
    """Turns labels into the float targets that mixup blends.

    Integer class ids of shape `[B]` or `[B, 1]` are one-hot encoded into
    `[B, num_classes]` (an id outside `[0, num_classes)` raises
    `InvalidArgumentError` at run time, naming it); float labels (one-hot,
    soft, multi-label, regression) are kept as they are, and must have
    `num_classes` values per example when `num_classes` is set. Label
    smoothing is applied last (see `smooth_labels`).

    Args:
        labels: a batch-first tensor of class ids or float labels.
        num_classes: the number of classes, or `None`. Defaults to `None`.
        label_smoothing: in [0, 1). Defaults to `0.0`.

    Returns:
        A float tensor: `[B, num_classes]` for class ids, else the labels.

    Raises:
        ValueError: for integer labels without `num_classes` or of another
            shape, and, with `num_classes` set, for float labels of shape
            `[B]` or `[B, 1]` (class ids stored as floats) or whose last
            dimension is not `num_classes`.
    """
    labels = checks.check_tensor(labels, "y")
    if not labels.dtype.is_integer:
        _check_float_labels(labels, num_classes)
        return smooth_labels(labels, label_smoothing)
    if num_classes is None:
        raise ValueError(
            "Integer labels (class ids) need `num_classes` to be one-hot "
            "encoded before mixing; pass `num_classes=...`, or pass "
            f"float labels to blend them as they are. Received labels "
            f"of dtype {labels.dtype.name} and shape {labels.shape}."
        )
    return smooth_labels(_one_hot(labels, num_classes), label_smoothing)


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


def encode_masks(masks, num_classes, *, one_hot, channel_axis=-1):
    """Segmentation masks as mixing needs them.

    Integer masks (class ids, with a channel axis of size 1) are one-hot
    encoded along the channel axis when `one_hot` (a blend needs
    probabilities), else kept (a CutMix paste keeps them integer); float
    masks (one-hot or soft) are kept.

    Raises:
        ValueError: for integer masks to one-hot encode without
            `num_classes`, or whose channel axis is not of size 1.
    """
    masks = checks.check_tensor(masks, "segmentation_masks")
    if not one_hot or masks.dtype.is_floating:
        return masks
    if num_classes is None:
        raise ValueError(
            "Integer segmentation masks are one-hot encoded with "
            "`num_classes` before mixup blends them; pass `num_classes`, or "
            "one-hot masks as floats. Received masks of dtype "
            f"{masks.dtype.name} and shape {masks.shape}."
        )
    if masks.shape[channel_axis] != 1:
        raise ValueError(
            "Integer segmentation masks must hold one class id per pixel "
            f"(a channel axis of size 1); received shape {masks.shape}."
        )
    ids = tf.cast(tf.squeeze(masks, axis=channel_axis), tf.int32)
    return tf.one_hot(
        ids, num_classes, axis=channel_axis, dtype=keras.config.floatx()
    )
