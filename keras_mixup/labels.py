"""Labels: checking them, one-hot encoding class ids, smoothing, and reading
classes back for the same-class pairings.

Written against `keras_mixup.backend.ops()`: the same code runs on
TensorFlow (in `tf.data`, graphs, the TensorFlow backend), JAX and PyTorch
tensors. Class ids outside `[0, num_classes)` are refused on every backend:
by a `tf.debugging.Assert` on TensorFlow, eagerly on PyTorch and on
concrete JAX arrays, and by a host callback (`jax.debug.callback`) inside a
jitted JAX function, whose values are only known when it runs (see
`keras_mixup.checks.require`; `MixupModel` checks its batches itself on JAX,
so that `fit` raises). Integer segmentation masks are checked alike.
"""

import functools

import keras

from keras_mixup import backend, checks

__all__ = [
    "NONFINITE_MESSAGE",
    "class_ids",
    "encode_labels",
    "encode_masks",
    "nonfinite_labels",
    "outside_ids",
    "outside_message",
    "smooth_labels",
]

#: What `encode_labels` refuses in float labels (no quote marks: TensorFlow
#: escapes them in the message of a failed graph assertion).
NONFINITE_MESSAGE = (
    "Float labels (one-hot, soft or continuous targets) must be finite "
    "(mixup blends the labels of each example with those of its partner, "
    "so a NaN or an inf would spread to the partner); received the label"
)


def _shape(tensor):
    """A tensor's static shape, printed alike on every backend: `(4, 3)`."""
    shape = tensor.shape
    return tuple(shape) if isinstance(shape, tuple) else shape


def smooth_labels(labels, label_smoothing):
    """Applies label smoothing to float labels.

    Labels whose last dimension is greater than 1 are treated as
    categorical (`y * (1 - eps) + eps / num_classes`, as
    `keras.losses.CategoricalCrossentropy`); rank-1 labels or a last
    dimension of 1 as binary (`y * (1 - eps) + eps / 2`, as
    `keras.losses.BinaryCrossentropy`).

    Args:
        labels: a float tensor of the backend the math runs on.
        label_smoothing: eps, in [0, 1); 0 returns `labels` as they are.

    Returns:
        The smoothed labels, of the shape and dtype of `labels`.

    Example:

    ```python
    from keras_mixup.labels import smooth_labels

    smoothed = smooth_labels(tf.constant([[0.0, 1.0, 0.0, 0.0]]), 0.2)
    np.testing.assert_allclose(smoothed, [[0.05, 0.85, 0.05, 0.05]])
    ```
    """
    if not label_smoothing:
        return labels
    if backend.rank(labels) == 1 or labels.shape[-1] == 1:
        num_classes = 2
    else:
        num_classes = labels.shape[-1]
        if num_classes is None:  # a dynamic dimension (TensorFlow)
            ops = backend.ops()
            num_classes = ops.core.cast(
                ops.core.shape(labels)[-1], backend.dtype_name(labels)
            )
    return labels * (1 - label_smoothing) + label_smoothing / num_classes


def outside_ids(ids, num_classes):
    """Whether any of the integer `ids` is outside `[0, num_classes)`, and
    the first that is: `(found, first)`, two scalar tensors (`first` is
    meaningless when `found` is false)."""
    outside = backend.ops().numpy.logical_or(ids < 0, ids >= num_classes)
    return checks.first_bad(ids, outside)


@functools.lru_cache(maxsize=64)
def outside_message(num_classes, name="labels"):
    """The message refusing a class id out of range, for `name` (made once
    per `num_classes` and name: every check asks for it)."""
    what = "Labels" if name == "labels" else f"`{name}`"
    return (
        f"{what} must be in [0, {num_classes}) (num_classes={num_classes}); "
        "received the class id"
    )


def nonfinite_labels(labels):
    """Whether any of the float `labels` is a NaN or an inf, and the first
    that is: `(found, first)`, as `outside_ids`."""
    numpy = backend.ops().numpy
    return checks.first_bad(labels, numpy.logical_not(numpy.isfinite(labels)))


def _checked_finite(labels, check_values=True):
    """Float labels, with NaN and infinite values refused (see
    `keras_mixup.checks.require`)."""
    if not check_values:
        return labels
    if backend.name() == "torch":  # one reduction, one read to the host
        if not bool(labels.isfinite().all()):
            first = labels[~labels.isfinite()].flatten()[0]
            raise checks.value_error(NONFINITE_MESSAGE, first)
        return labels
    found, first = nonfinite_labels(labels)
    return checks.require(labels, found, first, NONFINITE_MESSAGE)


def _checked_ids(ids, num_classes, check_range=True, name="labels"):
    """int32 class ids, with ids outside `[0, num_classes)` refused (see
    `keras_mixup.checks.require`)."""
    if not check_range:
        return ids
    if backend.name() == "torch":
        return _checked_torch_ids(ids, num_classes, name)
    found, first = outside_ids(ids, num_classes)
    return checks.require(ids, found, first, outside_message(num_classes, name))


def _checked_torch_ids(ids, num_classes, name):
    """`_checked_ids` on PyTorch: the smallest and largest id in one read
    back to the host (two small ops); the first id outside is looked for
    only when there is one."""
    import torch

    if ids.numel():
        low, high = torch.stack(torch.aminmax(ids)).tolist()
        if low < 0 or high >= num_classes:
            first = ids[(ids < 0) | (ids >= num_classes)][0]
            raise checks.value_error(outside_message(num_classes, name), first)
    return ids


def _torch_one_hot(ids, num_classes):
    """One-hot rows of checked int ids `[B]` on PyTorch: one scatter of
    ones into zeros (Keras's `one_hot` converts and checks its arguments
    on every call)."""
    import torch

    dtype = getattr(torch, keras.config.floatx())
    rows = torch.zeros(
        (ids.shape[0], num_classes), dtype=dtype, device=ids.device
    )
    return rows.scatter_(1, ids.long().unsqueeze(1), 1.0)


def _one_hot(labels, num_classes, check_range=True):
    """Class ids `[B]` or `[B, 1]` as one-hot rows, range checked."""
    ops = backend.ops()
    if backend.rank(labels) == 2 and labels.shape[1] == 1:
        labels = ops.numpy.squeeze(labels, axis=1)
    if backend.rank(labels) != 1:
        raise ValueError(
            "Integer labels must be class ids of shape [batch] or "
            f"[batch, 1]; received shape {_shape(labels)}. Pass one-hot "
            "or multi-hot labels as floats."
        )
    if backend.name() == "torch" and check_range:  # ids all in range
        return _torch_one_hot(_checked_ids(labels, num_classes), num_classes)
    ids = ops.core.cast(labels, "int32")
    ids = _checked_ids(ids, num_classes, check_range)
    return ops.nn.one_hot(ids, num_classes, dtype=keras.config.floatx())


def _check_float_labels(labels, num_classes):
    """With `num_classes` set, float labels must be rows of that width."""
    if num_classes is None:
        return
    if backend.rank(labels) == 1 or (
        backend.rank(labels) == 2 and labels.shape[1] == 1
    ):
        raise ValueError(
            f"`num_classes={num_classes}` one-hot encodes class ids, but the "
            f"labels are floats of shape {_shape(labels)} (dtype "
            f"{backend.dtype_name(labels)}): cast class ids to an integer "
            "dtype (such as int32), or pass one-hot labels of shape "
            f"[batch, {num_classes}]."
        )
    width = labels.shape[-1]
    if width is not None and width != num_classes:
        raise ValueError(
            f"The labels have {width} values per example (shape "
            f"{_shape(labels)}), but `num_classes={num_classes}`: one-hot or "
            "soft labels must have `num_classes` values in their last "
            "dimension. Fix `num_classes`, or the labels."
        )


def encode_labels(
    labels, num_classes=None, label_smoothing=0.0, *, check_range=True
):
    """Turns labels into the float targets that mixup blends.

    Integer class ids of shape `[B]` or `[B, 1]` are one-hot encoded into
    `[B, num_classes]`; an id outside `[0, num_classes)` is refused,
    naming it: `ValueError` eagerly (every backend), `InvalidArgumentError`
    when a TensorFlow graph runs, an error raised by a host callback when
    a jitted JAX function runs (`MixupModel` raises the `ValueError` from
    `fit` on every backend). Float labels (one-hot,
    soft, multi-label, regression) are kept as they are, must be finite
    (a NaN or an inf is refused alike) and must have `num_classes` values
    per example when `num_classes` is set. Label smoothing is applied last
    (see `smooth_labels`).

    Args:
        labels: a batch-first tensor of class ids or float labels.
        num_classes: the number of classes, or `None`. Defaults to `None`.
        label_smoothing: in [0, 1). Defaults to `0.0`.
        check_range: whether to refuse class ids outside
            `[0, num_classes)` and float labels that are NaN or infinite;
            `False` for a caller that checks them itself (see
            `outside_ids` and `nonfinite_labels`): such ids one-hot encode
            to rows of zeros. Defaults to `True`.

    Returns:
        A float tensor: `[B, num_classes]` for class ids, else the labels.

    Raises:
        ValueError: for integer labels without `num_classes` or of another
            shape, for float labels holding a NaN or an inf (when the
            values are checked), and, with `num_classes` set, for float
            labels of shape `[B]` or `[B, 1]` (class ids stored as floats)
            or whose last dimension is not `num_classes`.

    Example:

    ```python
    from keras_mixup.labels import encode_labels

    encoded = encode_labels(tf.constant([2, 0]), num_classes=3)
    np.testing.assert_array_equal(encoded, [[0, 0, 1], [1, 0, 0]])
    ```
    """
    labels = checks.check_tensor(labels, "y")
    if not backend.is_integer(labels):
        _check_float_labels(labels, num_classes)
        labels = _checked_finite(labels, check_range)
        return smooth_labels(labels, label_smoothing)
    if num_classes is None:
        raise ValueError(
            "Integer labels (class ids) need `num_classes` to be one-hot "
            "encoded before mixing; pass `num_classes=...`, or pass "
            f"float labels to blend them as they are. Received labels "
            f"of dtype {backend.dtype_name(labels)} and shape "
            f"{_shape(labels)}."
        )
    return smooth_labels(
        _one_hot(labels, num_classes, check_range), label_smoothing
    )


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

    Example:

    ```python
    from keras_mixup.labels import class_ids

    soft = tf.constant([[0.2, 0.8], [0.7, 0.3]])
    np.testing.assert_array_equal(class_ids(soft), [1, 0])
    ```
    """
    if keras.tree.is_nested(labels):
        raise ValueError(
            f"The same-class pairings need `{name}` to be a single tensor of "
            f"class ids or one-hot labels; received a nested structure "
            f"{keras.tree.map_structure(_shape, labels)}."
        )
    ops = backend.ops()
    labels = ops.core.convert_to_tensor(labels)
    if not (backend.is_integer(labels) or backend.is_floating(labels)):
        raise ValueError(
            f"`{name}` must be numeric for the same-class pairings; received "
            f"dtype {backend.dtype_name(labels)}."
        )
    if backend.rank(labels) == 0:
        raise ValueError(
            f"`{name}` must be batch-first with rank >= 1; received a scalar."
        )
    if backend.rank(labels) == 2 and labels.shape[1] == 1:
        labels = ops.numpy.squeeze(labels, axis=1)
    if backend.rank(labels) == 1:
        if backend.is_floating(labels):
            labels = ops.numpy.round(labels)
        return ops.core.cast(labels, "int32")
    size = ops.core.shape(labels)[0]
    flat = ops.numpy.reshape(labels, [size, -1])
    return ops.core.cast(ops.numpy.argmax(flat, axis=1), "int32")


def encode_masks(masks, num_classes, *, one_hot, channel_axis=-1):
    """Segmentation masks as mixing needs them.

    Integer masks (class ids, with a channel axis of size 1) are one-hot
    encoded along the channel axis when `one_hot` (a blend needs
    probabilities), else kept (a paste keeps them integer); float
    masks (one-hot or soft) are kept.

    Class ids outside `[0, num_classes)` are refused (they would one-hot
    encode to rows of zeros), as for labels (see `encode_labels`); masks
    with an "ignore" id (such as 255) must be one-hot encoded by the user,
    as floats, with the ignored pixels' rows as they mean them.

    Raises:
        ValueError: for integer masks to one-hot encode without
            `num_classes`, whose channel axis is not of size 1, or (when
            the values are checked) with a class id out of range.
    """
    masks = checks.check_tensor(masks, "segmentation_masks")
    if backend.is_floating(masks):
        return masks
    if not one_hot:  # a paste keeps the ids: checked when they can be
        if num_classes is None:
            return masks
        ids = backend.ops().core.cast(masks, "int32")
        return _checked_ids(ids, num_classes, name="segmentation_masks")
    if num_classes is None:
        raise ValueError(
            "Integer segmentation masks are one-hot encoded with "
            "`num_classes` before mixup blends them; pass `num_classes`, or "
            "one-hot masks as floats. Received masks of dtype "
            f"{backend.dtype_name(masks)} and shape {_shape(masks)}."
        )
    if masks.shape[channel_axis] != 1:
        raise ValueError(
            "Integer segmentation masks must hold one class id per pixel "
            f"(a channel axis of size 1); received shape {_shape(masks)}."
        )
    ops = backend.ops()
    ids = ops.core.cast(ops.numpy.squeeze(masks, axis=channel_axis), "int32")
    ids = _checked_ids(ids, num_classes, name="segmentation_masks")
    return ops.nn.one_hot(
        ids, num_classes, axis=channel_axis, dtype=keras.config.floatx()
    )
