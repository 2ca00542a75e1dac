"""Every argument check of the package, and the checks of a batch's tensors.

Python arguments (constructor options, schedule values) are checked here
once, with one message format: the argument's name, the value received and
what is accepted. Tensors are checked at trace time by `check_structure`,
`check_batch` and `batch_size`.
"""

import math
import numbers
import re

import keras

from keras_mixup import backend
from keras_mixup.backend import tf

__all__ = [
    "batch_size",
    "check_alpha",
    "check_axes",
    "check_box_format",
    "check_batch",
    "check_bool",
    "check_boxes",
    "check_choice",
    "check_constructed",
    "check_fused",
    "check_int",
    "check_label_smoothing",
    "check_lambda_dtype",
    "check_minmax",
    "check_optional_alpha",
    "check_num_classes",
    "check_number",
    "check_optional_callable",
    "check_prob",
    "check_seed",
    "check_shape",
    "check_structure",
    "check_tensor",
    "check_weights",
    "first_bad",
    "from_tensorflow_error",
    "refused_weights",
    "require",
    "to_tensor",
    "is_int",
    "value_error",
    "WEIGHTS_MESSAGE",
]

#: Dtypes lam may be drawn in. Half precision is refused: Beta draws for
#: small alpha need the exponent range and mantissa of float32.
LAMBDA_DTYPES = ("float32", "float64")

_ALPHA_HINT = "mixup uses 0.1 to 0.4 on ImageNet, 1 on CIFAR"


def is_int(value):
    """Whether `value` is an integer (a bool is not)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_number(value, name, meaning="", *, minimum=0.0, inclusive=False):
    """Validates a finite Python number above a bound.

    Args:
        value: the value to check.
        name: the argument name used in the error message.
        meaning: what the number means or a hint, appended to the bound in
            the message (e.g. `" (the label kernel's width)"`). Defaults to
            `""`.
        minimum: the bound. Defaults to `0.0`.
        inclusive: accept `minimum` itself. Defaults to `False`.

    Returns:
        `value` as a Python float.

    Raises:
        ValueError: for a bool, a non-number, a NaN or an infinity, or a
            value below the bound (or equal to it, unless `inclusive`).
    """
    bound = f"{'>=' if inclusive else '>'} {minimum:g}{meaning}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(
            f"`{name}` must be a finite number {bound}; received "
            f"{value!r} of type {type(value).__name__}."
        )
    number = float(value)
    below = number < minimum if inclusive else number <= minimum
    if not math.isfinite(number) or below:
        raise ValueError(
            f"`{name}` must be a finite number {bound}; received {number!r}."
        )
    return number


def check_alpha(alpha, name="alpha"):
    """Validates a Beta concentration given as a Python number.

    Args:
        alpha: the value to check.
        name: the argument name used in the error message. Defaults to
            `"alpha"`.

    Returns:
        `alpha` as a Python float.

    Raises:
        ValueError: if `alpha` is not a finite Python number greater than 0.
    """
    return check_number(alpha, name, f" ({_ALPHA_HINT})")


def check_int(value, name, *, minimum, meaning=""):
    """Validates an int argument: returns `value` as an int >= `minimum`.

    Args:
        value: the value to check.
        name: the argument name used in the error message.
        minimum: the smallest accepted value.
        meaning: what the number means, appended to the message after
            the bound (e.g. `" (an epoch index)"`). Defaults to `""`.

    Returns:
        `value` as a Python int.

    Raises:
        ValueError: for a bool, a non-integer or a value below `minimum`.
    """
    if not is_int(value) or value < minimum:
        raise ValueError(
            f"`{name}` must be an int >= {minimum}{meaning}; received "
            f"{value!r}."
        )
    return int(value)


def check_bool(value, name):
    """Validates a flag: returns `value` if it is `True` or `False`.

    Raises:
        ValueError: for anything else (`0` and `1` included).
    """
    if not isinstance(value, bool):
        raise ValueError(f"`{name}` must be True or False; received {value!r}.")
    return value


def check_choice(value, name, choices, meaning=""):
    """Validates a value that must be one of `choices`.

    Args:
        value: the value to check.
        name: the argument name used in the error message.
        choices: the accepted values, a tuple.
        meaning: what the choice means, appended to the message. Defaults
            to `""`.

    Returns:
        `value`.

    Raises:
        ValueError: if `value` is not one of `choices`.
    """
    if not any(type(value) is type(c) and value == c for c in choices):
        raise ValueError(
            f"`{name}` must be one of {choices!r}{meaning}; received {value!r}."
        )
    return value


#: Values of the `fused` argument of `blend`, `mix_batch` and `Mixup`.
FUSED_OPTIONS = (True, False, "auto")


def check_fused(fused):
    """Validates `fused`: `True`, `False` or `"auto"`.

    Raises:
        ValueError: for anything else.
    """
    if not (fused is True or fused is False or fused == "auto"):
        raise ValueError(
            f"`fused` must be True (compile the blend with XLA), False "
            f'(plain ops) or "auto" (XLA where available); '
            f"received {fused!r}."
        )
    return fused


def check_prob(
    prob, name="prob", meaning="(the probability that a batch is mixed)"
):
    """Validates a probability given as a Python number in [0, 1].

    Returns:
        `prob` as a Python float.

    Raises:
        ValueError: if `prob` is not a number in [0, 1]; the message says
            what the probability is (`meaning`).
    """
    if isinstance(prob, bool) or not isinstance(prob, numbers.Real):
        raise ValueError(
            f"`{name}` must be a number in [0, 1] {meaning}; received "
            f"{prob!r} of type {type(prob).__name__}."
        )
    value = float(prob)
    if not 0.0 <= value <= 1.0:  # also refuses NaN
        raise ValueError(
            f"`{name}` must be a number in [0, 1] {meaning}; received "
            f"{value!r}."
        )
    return value


def check_num_classes(num_classes):
    """Validates `num_classes`: `None` or an int >= 2.

    Raises:
        ValueError: for anything else.
    """
    if num_classes is None:
        return None
    if not is_int(num_classes) or num_classes < 2:
        raise ValueError(
            f"`num_classes` must be an int >= 2 (or None for float labels); "
            f"received {num_classes!r}."
        )
    return int(num_classes)


def check_label_smoothing(label_smoothing):
    """Validates `label_smoothing`: a number in [0, 1).

    Raises:
        ValueError: for anything else.
    """
    if (
        isinstance(label_smoothing, bool)
        or not isinstance(label_smoothing, numbers.Real)
        or not 0 <= label_smoothing < 1
    ):
        raise ValueError(
            f"`label_smoothing` must be a number in [0, 1); received "
            f"{label_smoothing!r}."
        )
    return float(label_smoothing)


def check_seed(seed, name="seed"):
    """Validates a seed given as a Python value: an int or `None`.

    Raises:
        ValueError: for anything else.
    """
    if seed is not None and not is_int(seed):
        raise ValueError(f"`{name}` must be an int or None; received {seed!r}.")
    return seed


def check_optional_callable(value, name, meaning):
    """Validates an argument that is `None` or a callable.

    Raises:
        ValueError: for anything else; `meaning` says what is accepted.
    """
    if value is not None and not callable(value):
        raise ValueError(
            f"`{name}` must be None or {meaning}; received {value!r}."
        )
    return value


def check_lambda_dtype(dtype):
    """Returns the name of `dtype` (`"float32"` or `"float64"`) if lam may
    be drawn in it.

    Raises:
        ValueError: for anything but float32 and float64.
    """
    try:
        name = backend.standard_dtype(dtype)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"`dtype` must be one of {LAMBDA_DTYPES}; received {dtype!r}."
        ) from error
    if name not in LAMBDA_DTYPES:
        raise ValueError(
            f"`dtype` must be one of {LAMBDA_DTYPES}: lam is never drawn in "
            f"half precision (cast the blended inputs instead); received "
            f"{name}."
        )
    return name


def _is_tensor(value):
    """Whether `value` is a tensor or variable (of any backend)."""
    return hasattr(value, "dtype") and hasattr(value, "shape")


def check_shape(shape):
    """Validates the shape of a draw given as Python ints.

    An int, or a list or tuple of ints and scalar int tensors (a dynamic
    batch size); a 1-D int tensor is accepted as it is.

    Raises:
        ValueError: for a negative or non-integer dimension.
    """
    if _is_tensor(shape):
        return shape
    dims = shape
    if not isinstance(shape, (list, tuple)):
        dims = list(shape) if type(shape).__name__ == "TensorShape" else [shape]
    for dim in dims:
        if _is_tensor(dim):
            continue
        if not is_int(dim) or dim < 0:
            raise ValueError(
                "`shape` must be an int >= 0 or a list of them (or a 1-D "
                f"int tensor); received {shape!r}."
            )
    return shape


def check_constructed(owner, args):
    """Refuses a class called on a batch: `ds.map(keras_mixup.Mixup)`
    calls the class itself with each element's tensors.

    Raises:
        ValueError: if a positional argument is a tensor or a dict.
    """
    if any(_is_tensor(a) or isinstance(a, dict) for a in args):
        raise ValueError(
            f"{owner} was called with a batch's tensors in place of its "
            f"options, as `Dataset.map({owner})` does: {owner} is a class; "
            f"build it, then map the object: "
            f"`ds.batch(...).map(keras_mixup.{owner}(alpha=...))`."
        )


def _refuse_composite(tensor, name):
    """Refuses TensorFlow's ragged and sparse tensors by name (TensorFlow
    is not imported to ask: only it makes them)."""
    kind = type(tensor).__name__
    if kind == "RaggedTensor":
        raise ValueError(
            f"`{name}` is a tf.RaggedTensor, which mixup does not support: "
            "pad it to a dense tensor first (for example with "
            "`.to_tensor()`, or `padded_batch` in tf.data)."
        )
    if kind == "SparseTensor":
        raise ValueError(
            f"`{name}` is a tf.SparseTensor, which mixup does not support: "
            "convert it with `tf.sparse.to_dense` first."
        )


def to_tensor(value):
    """`value` as a tensor of the backend the mixing math runs on (see
    `keras_mixup.backend.name`), keeping its dtype."""
    name = backend.name()
    if name == "tensorflow":
        return tf.convert_to_tensor(value)
    core = backend.ops().core
    if name == "torch" and core.is_tensor(value):
        return value  # Keras's conversion: tens of microseconds a call
    return core.convert_to_tensor(value)


def check_tensor(tensor, name):
    """Converts one batch leaf to a dense numeric tensor of rank >= 1.

    Raises:
        ValueError: for a ragged, sparse, non-numeric or rank-0 tensor.
    """
    _refuse_composite(tensor, name)
    tensor = to_tensor(tensor)
    if getattr(tensor.dtype, "is_quantized", False) or not (
        backend.is_floating(tensor) or backend.is_integer(tensor)
    ):
        raise ValueError(
            f"`{name}` must hold numbers (float, int or uint8) to be mixed; "
            f"received dtype {backend.dtype_name(tensor)}."
        )
    if backend.rank(tensor) == 0:
        raise ValueError(
            f"`{name}` must be batch-first with rank >= 1; received a scalar "
            "(rank 0). A dataset mapped before `batch` gives one example at "
            "a time: batch first, `ds.batch(n).map(...)`."
        )
    return tensor


def _leaf_paths(structure):
    if isinstance(structure, dict):
        for key in sorted(structure):
            for rest in _leaf_paths(structure[key]):
                yield (key, *rest)
    elif isinstance(structure, (list, tuple)):
        for index, value in enumerate(structure):
            for rest in _leaf_paths(value):
                yield (index, *rest)
    else:
        yield ()


def check_structure(structure, name):
    """Converts every leaf of a nested structure to a checked tensor.

    Raises:
        ValueError: for a leaf that is ragged, sparse, not numeric or of
            rank 0, or an empty structure; the message names the leaf
            (`x['image']`).
    """
    if backend.ops().core.is_tensor(structure):  # no walk of a lone tensor
        return check_tensor(structure, name)
    flat = keras.tree.flatten(structure)
    if not flat:
        raise ValueError(f"`{name}` is empty; it must hold at least a tensor.")
    paths = [
        name + "".join(f"[{p!r}]" for p in path)
        for path in _leaf_paths(structure)
    ]
    checked = [check_tensor(t, p) for t, p in zip(flat, paths, strict=True)]
    return keras.tree.pack_sequence_as(structure, checked)


def batch_size(*structures):
    """The batch size shared by every leaf of the given structures.

    Static sizes are compared at trace time; otherwise an assertion checks
    them at run time.

    Returns:
        The batch size, a Python int if it is static, else a scalar int32
        tensor.

    Raises:
        ValueError: if two static batch sizes differ.
        tf.errors.InvalidArgumentError: if two dynamic ones differ.
    """
    is_tensor = backend.ops().core.is_tensor
    leaves = [
        t
        for s in structures
        if s is not None
        for t in ([s] if is_tensor(s) else keras.tree.flatten(s))
    ]
    static = {t.shape[0] for t in leaves if t.shape[0] is not None}
    message = (
        "Every input, label and sample weight must have the same batch "
        "size (first dimension)"
    )
    if len(static) > 1:
        raise ValueError(
            f"{message}; received batch sizes {sorted(static)}. (A dataset "
            "mapped before `batch` gives one example at a time, whose first "
            "dimension is not a batch: batch first, `ds.batch(n).map(...)`.)"
        )
    if static:
        return static.pop()
    sizes = [tf.shape(t, out_type=tf.int32)[0] for t in leaves]
    checks = [
        tf.debugging.assert_equal(sizes[0], size, message=message)
        for size in sizes[1:]
    ]
    with tf.control_dependencies(checks):
        return tf.identity(sizes[0])


def check_batch(x, y=None, sample_weight=None, *, prefix="", check_values=True):
    """Checks a batch's inputs, labels and weights and finds its size.

    Args:
        x: the inputs, a tensor or nested structure of batch-first tensors.
        y: the labels, or `None`. Defaults to `None`.
        sample_weight: per-example weights, or `None`. Defaults to `None`.
        prefix: prepended to the argument names in error messages (such as
            `"partner_"`). Defaults to `""`.
        check_values: whether to check the sample weights' values; `False`
            for a caller that checked them. Defaults to `True`.

    Returns:
        `(x, y, sample_weight, batch_size)`: the structures with every leaf
        a checked tensor (`None` kept), and the batch size as
        `batch_size` returns it.

    Raises:
        ValueError: as `check_structure` and `batch_size` do, and for a
            NaN, infinite or negative sample weight (see `check_weights`;
            `InvalidArgumentError` when a TensorFlow graph runs).
    """
    x = check_structure(x, f"{prefix}x")
    if y is not None:
        y = check_structure(y, f"{prefix}y")
    if sample_weight is not None:
        sample_weight = check_structure(sample_weight, f"{prefix}sample_weight")
        if check_values:
            sample_weight = check_weights(sample_weight)
    return x, y, sample_weight, batch_size(x, y, sample_weight)


# --- values -----------------------------------------------------------------

# A tensor's values are checked where a wrong value would give a silent
# result (a label row of zeros, a weight spread to a partner): with a
# `tf.debugging.Assert` on TensorFlow (an `InvalidArgumentError` when the
# graph runs, which `MixupModel` raises as the `ValueError` of the other
# backends), eagerly on PyTorch and on concrete JAX arrays, and by a host
# callback inside a jitted JAX function (which `MixupModel` avoids: it
# checks its batches itself and reports them from `fit`).

#: What `check_weights` refuses.
WEIGHTS_MESSAGE = (
    "`sample_weight` must hold finite weights >= 0 (mixup blends the "
    "weights of the examples it mixes, so a NaN, an inf or a negative "
    "weight would spread to the partner); received the weight"
)


def _shown(value):
    """A scalar as the error messages print it, alike on every backend."""
    value = float(value)
    return str(int(value)) if value.is_integer() else f"{value:.6g}"


def value_error(message, value):
    """The `ValueError` of a failed value check: `message` (which ends
    naming what was received) followed by the offending `value`."""
    return ValueError(f"{message} {_shown(value)}.")


def _raise_unless(ok, value, message):
    if not bool(ok):
        raise value_error(message, value)


def first_bad(values, bad):
    """`(found, first)`: whether `bad` (a bool tensor shaped as `values`)
    holds anywhere, and the first value where it does (meaningless when
    `found` is false)."""
    ops = backend.ops().numpy
    # One good value appended: an empty batch has a first value too.
    flat = ops.concatenate([ops.reshape(values, [-1]), ops.zeros([1], "int32")])
    bad = ops.concatenate([ops.reshape(bad, [-1]), ops.zeros([1], "bool")])
    return ops.any(bad), ops.take(flat, ops.argmax(bad))


def require(tensor, found, first, message):
    """`tensor`, once a value check passed: `found` (a scalar bool tensor)
    must be false, else the check fails naming `first` (see
    `first_bad`)."""
    if backend.name() == "tensorflow" and not tf.executing_eagerly():
        check = tf.debugging.Assert(tf.logical_not(found), [message, first])
        with tf.control_dependencies([check]):
            return tf.identity(tensor)
    ok = backend.ops().numpy.logical_not(found)
    if backend.name() == "jax" and _is_jax_tracer(ok):
        import jax

        jax.debug.callback(_raise_unless, ok, first, message)
    else:
        _raise_unless(ok, first, message)
    return tensor


def _is_jax_tracer(tensor):
    import jax

    return isinstance(tensor, jax.core.Tracer)


def from_tensorflow_error(error, messages):
    """The `ValueError` for a TensorFlow `InvalidArgumentError` raised by
    `require` with one of `messages`, or `None` for another error."""
    for message in messages:
        found = re.search(
            r"\[" + re.escape(message) + r"\] \[([^\]]*)\]", error.message
        )
        if found is not None:
            return value_error(message, float(found.group(1).split()[0]))
    return None


def refused_weights(weights):
    """Where float `weights` are NaN, infinite or negative, or integer
    ones negative (a bool tensor)."""
    ops = backend.ops().numpy
    if backend.is_integer(weights):
        return weights < 0
    return ops.logical_or(ops.logical_not(ops.isfinite(weights)), weights < 0)


def check_weights(sample_weight):
    """Every numeric leaf of `sample_weight`, with NaN, infinite and
    negative weights refused (see `WEIGHTS_MESSAGE`)."""

    def checked(weights):
        if not (backend.is_floating(weights) or backend.is_integer(weights)):
            return weights
        found, first = first_bad(weights, refused_weights(weights))
        return require(weights, found, first, WEIGHTS_MESSAGE)

    return keras.tree.map_structure(checked, sample_weight)


# --- the variants' options ----------------------------------------------------


def check_optional_alpha(alpha, name):
    """Validates `None` or a Beta concentration (see `check_alpha`)."""
    return None if alpha is None else check_alpha(alpha, name)


def check_minmax(
    minmax,
    name="minmax",
    *,
    meaning="the range of the box's side fractions",
    optional=True,
):
    """Validates a range of fractions (a cutting variant's `minmax`):
    `None` or `(lo, hi)`, 0 < lo <= hi <= 1 (`meaning` says what the range
    is, `optional` whether `None` is accepted).

    Returns:
        `None`, or `(lo, hi)` as a tuple of Python floats.

    Raises:
        ValueError: for anything else.
    """
    if minmax is None and optional:
        return None
    accepted = (
        "None or " * optional
        + f"a pair (lo, hi) with 0 < lo <= hi <= 1 ({meaning})"
    )
    if (
        not isinstance(minmax, (list, tuple))
        or len(minmax) != 2
        or not all(
            isinstance(v, numbers.Real) and not isinstance(v, bool)
            for v in minmax
        )
        or not 0 < minmax[0] <= minmax[1] <= 1
    ):
        raise ValueError(f"`{name}` must be {accepted}; received {minmax!r}.")
    return (float(minmax[0]), float(minmax[1]))


def check_axes(axes):
    """Validates the axes a cutting variant cuts along: `None`, or 1 to 3
    distinct ints, none of them the batch axis (0).

    Returns:
        `None`, or the axes as a tuple of ints.

    Raises:
        ValueError: for anything else.
    """
    if axes is None:
        return None
    if is_int(axes):
        axes = (axes,)
    if (
        not isinstance(axes, (list, tuple))
        or not 1 <= len(axes) <= 3
        or not all(is_int(a) and a != 0 for a in axes)
        or len(set(axes)) != len(axes)
    ):
        raise ValueError(
            "`axes` must be None or 1 to 3 distinct ints, the axes of the "
            "batched inputs to cut (such as (1, 2) for [B, H, W]; never 0, "
            f"the batch axis); received {axes!r}."
        )
    return tuple(int(a) for a in axes)


def check_box_format(value, formats):
    """Validates `bounding_box_format`: `None` or one of `formats`.

    Raises:
        ValueError: for anything else.
    """
    if value is None:
        return None
    return check_choice(value, "bounding_box_format", formats)


#: Per box format: how to read each box's low and high corners (x and y
#: in either order) from its four values `a, b, c, d`.
_BOX_CORNERS = {
    "xyxy": lambda a, b, c, d: ((a, b), (c, d)),
    "yxyx": lambda a, b, c, d: ((a, b), (c, d)),
    "xywh": lambda a, b, c, d: ((a, b), (a + c, b + d)),
    "center_xywh": lambda a, b, c, d: (
        (a - c / 2, b - d / 2),
        (a + c / 2, b + d / 2),
    ),
    "center_yxhw": lambda a, b, c, d: (
        (a - c / 2, b - d / 2),
        (a + c / 2, b + d / 2),
    ),
}

#: The slack of the range check of relative boxes (float rounding).
_RELATIVE_SLACK = 1e-6


def _box_message(what, box_format):
    return (
        f"`bounding_boxes['boxes']` {what}, in `bounding_box_format="
        f"{box_format!r}`; received a box with the value"
    )


def _check_box_shapes(boxes, labels):
    """Static checks: boxes `[B, N, 4]`, labels `[B, N]`."""
    shape, label_shape = tuple(boxes.shape), tuple(labels.shape)
    if len(shape) != 3 or shape[-1] != 4:
        raise ValueError(
            "`bounding_boxes['boxes']` must be of shape [B, N, 4] (four "
            "coordinates per box, in `bounding_box_format`, padded with -1); "
            f"received shape {shape}."
        )
    if len(label_shape) != 2 or any(
        a is not None and b is not None and a != b
        for a, b in zip(shape[:2], label_shape, strict=True)
    ):
        raise ValueError(
            "`bounding_boxes['labels']` must be of shape [B, N], one class "
            f"id per box of `bounding_boxes['boxes']` (shape {shape}); "
            f"received shape {label_shape}."
        )


def check_boxes(bounding_boxes, box_format):
    """Keras's `bounding_boxes` dict, checked: boxes `[B, N, 4]` and labels
    `[B, N]`; every box that is not padding (a label >= 0) finite and,
    with `box_format` given, its high corner at or past its low corner
    (`x_max >= x_min`, or a width >= 0) and, for a `rel_` format, inside
    `[0, 1]`.

    Args:
        bounding_boxes: `{"boxes": ..., "labels": ...}`.
        box_format: the `bounding_box_format`, or `None` (only the shapes
            and NaNs are checked).

    Returns:
        The dict, its tensors checked (see `require`).

    Raises:
        ValueError: for a shape that is not `[B, N, 4]` / `[B, N]`, and for
            a box that is NaN or contradicts `box_format` (when the values
            are checked: at run time in a graph).
    """
    boxes = to_tensor(bounding_boxes["boxes"])
    labels = to_tensor(bounding_boxes["labels"])
    _check_box_shapes(boxes, labels)
    ops = backend.ops().numpy
    real = (labels >= 0)[..., None]
    values = backend.ops().core.cast(boxes, "float32")
    bad = ops.logical_and(real, ops.logical_not(ops.isfinite(values)))
    found, first = first_bad(values, bad)
    message = _box_message("must hold finite numbers", box_format)
    boxes = require(boxes, found, first, message)
    if box_format is not None:
        boxes = _check_box_values(boxes, values, real, box_format)
    return {**bounding_boxes, "boxes": boxes, "labels": labels}


def _check_box_values(boxes, values, real, box_format):
    """The order and (relative formats) range checks of `check_boxes`."""
    ops = backend.ops().numpy
    name = box_format.removeprefix("rel_")
    a, b, c, d = (values[..., i] for i in range(4))
    low, high = _BOX_CORNERS[name](a, b, c, d)
    low, high = ops.stack(low, axis=-1), ops.stack(high, axis=-1)
    order = ops.logical_and(real, high < low)
    found, first = first_bad(values[..., 2:], order)
    what = "must have x_max >= x_min and y_max >= y_min"
    if name != "xyxy" and name != "yxyx":
        what = "must have a width and a height >= 0"
    boxes = require(boxes, found, first, _box_message(what, box_format))
    if box_format.startswith("rel_"):
        outside = ops.logical_or(
            low < -_RELATIVE_SLACK, high > 1 + _RELATIVE_SLACK
        )
        outside = ops.logical_and(real, outside)
        corners = ops.concatenate([low, high], axis=-1)
        found, first = first_bad(
            corners, ops.concatenate([outside, outside], axis=-1)
        )
        what = "must lie in [0, 1] (fractions of the image size)"
        boxes = require(boxes, found, first, _box_message(what, box_format))
    return boxes


def check_range(value, name, *, integer=False, maximum=None, meaning=""):
    """Validates a number or a range `(lo, hi)` to draw uniformly from
    (GridMix's options): numbers above 0 (ints >= 1 with `integer`), lo <=
    hi, at most `maximum` where given.

    Returns:
        `(lo, hi)`, a tuple of Python floats (ints with `integer`); a single
        number as `(value, value)`.

    Raises:
        ValueError: naming `name`, the value received and what is accepted.
    """
    kind = "an int >= 1" if integer else "a finite number > 0"
    if maximum is not None:
        kind += f" and <= {maximum:g}"
    accepted = f"{kind}, or a pair (lo, hi) of them with lo <= hi{meaning}"
    pair = value if isinstance(value, (list, tuple)) else (value, value)

    def fits(v):
        if integer:
            return is_int(v) and v >= 1
        return (
            isinstance(v, numbers.Real)
            and not isinstance(v, bool)
            and math.isfinite(v)
            and v > 0
            and (maximum is None or v <= maximum)
        )

    if len(pair) != 2 or not all(fits(v) for v in pair) or pair[0] > pair[1]:
        raise ValueError(f"`{name}` must be {accepted}; received {value!r}.")
    cast = int if integer else float
    return (cast(pair[0]), cast(pair[1]))
