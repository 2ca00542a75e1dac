"""The single mixing core: blending nested batches, labels and weights.

Every blend in the package happens here, in `blend_pair`:

    mixed[i] = x[partner_index[i]] + lam[i] * (x[i] - x[partner_index[i]])

which is `lam * x_i + (1 - lam) * x_partner`, written so that an example
paired with itself comes back bit for bit unchanged (equal values, +-inf
included, are returned as they are). `lam` is drawn by
`sampling.py` and `partner_index` by `pairing.py`; this module only applies
them, so tests can inject both. In graphs the blend of a whole structure runs
as one XLA computation where XLA is available (`fused`, see `use_fused`),
else as plain TensorFlow ops; both compute this formula.
"""

import numbers

import keras
import tensorflow as tf
from tensorflow_probability.python.internal import implementation_selection


def check_num_classes(num_classes):
    """Validates `num_classes`: `None` or an int >= 2.

    Raises:
        ValueError: for anything else.
    """
    if num_classes is None:
        return None
    if (
        isinstance(num_classes, bool)
        or not isinstance(num_classes, numbers.Integral)
        or num_classes < 2
    ):
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


def _check_tensor(tensor, name):
    """Converts one leaf to a dense numeric tensor of rank >= 1."""
    if isinstance(tensor, tf.RaggedTensor):
        raise ValueError(
            f"`{name}` is a tf.RaggedTensor, which mixup does not support: "
            "pad it to a dense tensor first (for example with "
            "`.to_tensor()`, or `padded_batch` in tf.data)."
        )
    if isinstance(tensor, tf.SparseTensor):
        raise ValueError(
            f"`{name}` is a tf.SparseTensor, which mixup does not support: "
            "convert it with `tf.sparse.to_dense` first."
        )
    tensor = tf.convert_to_tensor(tensor)
    dtype = tensor.dtype
    if not (dtype.is_floating or dtype.is_integer) or dtype.is_quantized:
        raise ValueError(
            f"`{name}` must hold numbers (float, int or uint8) to be mixed; "
            f"received dtype {dtype.name}."
        )
    if tensor.shape.rank == 0:
        raise ValueError(
            f"`{name}` must be batch-first with rank >= 1; received a scalar "
            "(rank 0). Batch the dataset before mapping Mixup."
        )
    return tensor


def check_structure(structure, name):
    """Converts every leaf of a nested structure to a checked tensor.

    Raises:
        ValueError: for a leaf that is ragged, sparse, not numeric or of
            rank 0, or an empty structure.
    """
    flat = tf.nest.flatten(structure)
    if not flat:
        raise ValueError(f"`{name}` is empty; it must hold at least a tensor.")
    paths = [f"{name}{_path(p)}" for p in _leaf_paths(structure)]
    checked = [_check_tensor(t, p) for t, p in zip(flat, paths, strict=True)]
    return tf.nest.pack_sequence_as(structure, checked)


def check_batch(x, y=None, sample_weight=None, prefix=""):
    """Checks a batch's inputs, labels and weights and finds its size.

    Args:
        x: the inputs, a tensor or nested structure of batch-first tensors.
        y: the labels, or `None`. Defaults to `None`.
        sample_weight: per-example weights, or `None`. Defaults to `None`.
        prefix: prepended to the argument names in error messages (such as
            `"partner_"`). Defaults to `""`.

    Returns:
        `(x, y, sample_weight, batch_size)`: the structures with every leaf
        a checked tensor (`None` kept), and the batch size as
        `batch_size` returns it.

    Raises:
        ValueError: as `check_structure` and `batch_size` do.
    """
    x = check_structure(x, f"{prefix}x")
    if y is not None:
        y = check_structure(y, f"{prefix}y")
    if sample_weight is not None:
        sample_weight = check_structure(sample_weight, f"{prefix}sample_weight")
    return x, y, sample_weight, batch_size(x, y, sample_weight)


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


def _path(path):
    return "".join(f"[{p!r}]" for p in path)


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
    leaves = [
        t for s in structures if s is not None for t in tf.nest.flatten(s)
    ]
    static = {t.shape[0] for t in leaves if t.shape[0] is not None}
    if len(static) > 1:
        raise ValueError(
            "Every input, label and sample weight must have the same batch "
            f"size (first dimension); received batch sizes {sorted(static)}."
        )
    if static:
        return static.pop()
    sizes = [tf.shape(t, out_type=tf.int32)[0] for t in leaves]
    checks = [
        tf.debugging.assert_equal(
            sizes[0],
            size,
            message="Every input, label and sample weight must have the "
            "same batch size (first dimension)",
        )
        for size in sizes[1:]
    ]
    with tf.control_dependencies(checks):
        return tf.identity(sizes[0])


#: Values of the `fused` argument of `blend`, `mix_batch` and `Mixup`.
FUSED_OPTIONS = (True, False, "auto")

_xla_available = None


def check_fused(fused):
    """Validates `fused`: `True`, `False` or `"auto"`.

    Raises:
        ValueError: for anything else.
    """
    if not (fused is True or fused is False or fused == "auto"):
        raise ValueError(
            f"`fused` must be True (compile the blend with XLA), False "
            f'(plain TensorFlow ops) or "auto" (XLA where available); '
            f"received {fused!r}."
        )
    return fused


def xla_available():
    """Whether XLA can compile on this platform (probed once, cached).

    Compiles a one-op `tf.function(jit_compile=True)` on the default device;
    TensorFlow builds without XLA, or devices it does not support, fail the
    probe.
    """
    global _xla_available
    if _xla_available is None:
        try:
            with tf.init_scope():
                probe = tf.function(lambda v: v + 1, jit_compile=True)
                probe(tf.constant(1.0))
            _xla_available = True
        except (tf.errors.OpError, RuntimeError, ValueError):
            _xla_available = False
    return _xla_available


def use_fused(fused):
    """Resolves `fused` to a bool.

    `"auto"` fuses when a graph is being built (a `Dataset.map`, a
    `tf.function`, a Keras train step), which compiles the blend once and
    runs it every batch, and XLA is available; it does not when executing
    eagerly (a first call per input shape would spend ~0.1 s compiling for
    one blend), nor inside a computation XLA already compiles
    (`jit_compile=True`), whose plain ops XLA fuses anyway.

    Raises:
        ValueError: for an invalid `fused`, or `True` without XLA.
    """
    fused = check_fused(fused)
    if fused == "auto":
        return (
            not tf.executing_eagerly()
            and not implementation_selection.is_xla()
            and xla_available()
        )
    if fused and not xla_available():
        raise ValueError(
            "`fused=True` needs XLA, which this TensorFlow build or device "
            'does not provide; use fused="auto" or fused=False.'
        )
    return fused


def _blend_leaf(tensor, lam, partner_index, float_dtype):
    """The blend of one tensor with its partners; see `blend_tensor`."""
    if not tensor.dtype.is_floating:
        tensor = tf.cast(tensor, float_dtype)
    return blend_pair(tensor, tf.gather(tensor, partner_index), lam)


def _blend_leaves(leaves, lam, partner_index, float_dtype):
    return [_blend_leaf(t, lam, partner_index, float_dtype) for t in leaves]


# All leaves in one XLA cluster: the cast of integer inputs, the gather of
# the partners, the multiply and the add fuse into one pass over each
# tensor (one read of the batch, one write of the result), and the whole
# structure costs one kernel launch. Traced once per structure and dtypes
# (`reduce_retracing` relaxes differing shapes to unknown dimensions): in a
# `Dataset.map` or a `tf.function`, once per pipeline. XLA still compiles
# once per concrete shape, such as a smaller last batch, and caches it.
_fused_blend_leaves = tf.function(
    _blend_leaves, jit_compile=True, autograph=False, reduce_retracing=True
)


def _lam_for(tensor, lam):
    """lam cast to `tensor`'s dtype and shaped to broadcast against it."""
    lam = tf.cast(lam, tensor.dtype)
    if lam.shape.rank == 0:
        return lam
    rank = tensor.shape.rank
    if rank is None:  # a relaxed trace of a fused function
        shape = tf.concat(
            [[-1], tf.ones([tf.rank(tensor) - 1], tf.int32)], axis=0
        )
    else:
        shape = [-1] + [1] * (rank - 1)
    return tf.reshape(lam, shape)


def _blend_grads(grads, lam, partner_index):
    """The gradients of `_blend_leaves` with respect to its leaves.

    Output row `i` is `lam[i] * x[i] + (1 - lam[i]) * x[p[i]]`, so row `j`
    of the input receives `lam[j] * g[j]` plus `(1 - lam[i]) * g[i]` from
    every `i` with `p[i] == j`. When the partners form a permutation (random
    pairing) that sum is a gather by the inverse permutation, one pass;
    otherwise (the k-nearest-neighbour and same-class pairings, where a row
    can be the partner of several) a segment sum. Automatic differentiation
    would turn the gather into a scatter-add, several times slower on CPU.
    Half precision is computed in float32 and rounded once.
    """
    size = tf.size(partner_index)
    counts = tf.math.unsorted_segment_sum(
        tf.ones_like(partner_index), partner_index, size
    )
    wide = [
        tf.cast(g, tf.float32) if g.dtype in (tf.float16, tf.bfloat16) else g
        for g in grads
    ]
    own = [_lam_for(g, lam) * g for g in wide]
    # (1 - lam) * g, what each output sends to its partner.
    to_partners = [g - o for g, o in zip(wide, own, strict=True)]
    sums = tf.cond(
        tf.reduce_all(tf.equal(counts, 1)),
        lambda: [
            tf.gather(t, tf.math.invert_permutation(partner_index))
            for t in to_partners
        ],
        lambda: [
            tf.math.unsorted_segment_sum(t, partner_index, size)
            for t in to_partners
        ],
    )
    return [
        tf.cast(o + s, g.dtype)
        for g, o, s in zip(grads, own, sums, strict=True)
    ]


_fused_blend_grads = tf.function(
    _blend_grads, jit_compile=True, autograph=False, reduce_retracing=True
)


def _lam_grad(leaves, grads, lam, partner_index, float_dtype):
    """The gradient of the blend with respect to lam: the sum of
    `g * (x - x[p])` over each example's values (0 where they are equal).
    Plain ops, so a graph that does not use it prunes it."""
    total = tf.zeros_like(lam, tf.float32)
    for leaf, grad in zip(leaves, grads, strict=True):
        if grad is None:
            continue
        if not leaf.dtype.is_floating:
            leaf = tf.cast(leaf, float_dtype)
        first = tf.cast(leaf, tf.float32)
        second = tf.gather(first, partner_index)
        terms = tf.where(
            tf.equal(first, second),
            tf.zeros([], tf.float32),
            tf.cast(grad, tf.float32) * (first - second),
        )
        if lam.shape.rank == 0:
            total += tf.reduce_sum(terms)
        else:
            total += tf.reduce_sum(
                tf.reshape(terms, [tf.shape(terms)[0], -1]), axis=1
            )
    return tf.cast(total, lam.dtype)


def blend_tensor(tensor, lam, partner_index, float_dtype=None, *, fused="auto"):
    """Blends one batch-first tensor with its partners.

    Computes `x[p] + lam * (x - x[p])`, which is `lam * x + (1 - lam) *
    x[p]` written so that an example paired with itself comes back bit for
    bit unchanged.

    Differentiable in the inputs and in lam, with the gradient of `lam * x
    + (1 - lam) * x[p]` everywhere: example `j` receives `lam[j] * g[j]`
    plus `(1 - lam[i]) * g[i]` from every `i` it is the partner of. That
    sum is one gather by the inverse permutation when the partners form a
    permutation (random pairing) and a segment sum otherwise, not the
    scatter-add automatic differentiation would make of the gather (several
    times slower on CPU): mixing hidden states (`MixupModel(mix_at=
    "latent")`) costs about as much backward as forward.

    Args:
        tensor: a numeric tensor of shape `[B, ...]`.
        lam: a float tensor of shape `[B]` (or a scalar) in [0, 1].
        partner_index: an int tensor of shape `[B]`.
        float_dtype: the dtype integer tensors are blended in. Defaults to
            the Keras compute dtype of the global dtype policy.
        fused: `True` to compile the blend with XLA
            (`tf.function(jit_compile=True)`: cast, gather, multiply and
            add fused into one pass over the batch), `False` for plain
            TensorFlow ops, `"auto"` for XLA in graphs where XLA is
            available (see `use_fused`). Both paths compute the same
            formula. Defaults to `"auto"`.

    Returns:
        The blended tensor: float tensors keep their dtype; integer ones are
        returned in `float_dtype`. float16 and bfloat16 are blended in
        float32 and rounded once, so float16 cannot overflow; finite
        bfloat16, float32 and float64 values below half the largest value
        (1.7e38 for float32) give finite results.
    """
    return blend(tensor, lam, partner_index, float_dtype, fused=fused)


def blend_pair(first, second, lam):
    """Blends two batches example by example: `lam * first + (1 - lam) *
    second`.

    The one blend formula of the package, written `second + lam * (first -
    second)`; where the two values are equal the value itself is returned,
    so an example blended with an identical one (or paired with itself)
    comes back bit for bit unchanged, even where it holds +-inf.
    `blend_tensor` calls it with a batch and its partners; `MixupGAN` with
    real and generated samples.

    Args:
        first: a float tensor of shape `[B, ...]`.
        second: a float tensor of the same shape and dtype.
        lam: a float tensor of shape `[B]` (or a scalar) in [0, 1], the
            weight of `first`; cast to the dtype of `first`.

    Returns:
        The blended tensor, of the shape and dtype of `first`.

    Raises:
        ValueError: if `first` and `second` differ in dtype or in static
            shape.
    """
    if first.dtype != second.dtype:
        raise ValueError(
            "The two tensors to blend must have the same dtype; received "
            f"{first.dtype.name} and {second.dtype.name}."
        )
    if not first.shape.is_compatible_with(second.shape):
        raise ValueError(
            "The two tensors to blend must have the same shape; received "
            f"{first.shape} and {second.shape}."
        )
    dtype = first.dtype
    if dtype in (tf.float16, tf.bfloat16):
        # Blend half precision in float32 and round once: first - second
        # would overflow float16 for values of opposite signs above 32752
        # (inf, and NaN where lam == 0), and lam keeps its precision.
        first, second = tf.cast(first, tf.float32), tf.cast(second, tf.float32)
    mixed = second + _lam_for(first, lam) * (first - second)
    # Equal values come back as they are, infinities included (inf - inf
    # would make the formula NaN); NaN is never equal, so it passes through.
    return tf.cast(tf.where(first == second, first, mixed), dtype)


def blend(structure, lam, partner_index, float_dtype=None, *, fused="auto"):
    """Blends every tensor of a nested structure with the same lam and
    partners. See `blend_tensor`; with the fused path, all the tensors are
    blended by one XLA computation."""
    leaves = [tf.convert_to_tensor(t) for t in tf.nest.flatten(structure)]
    float_dtype = tf.as_dtype(
        float_dtype or keras.config.dtype_policy().compute_dtype
    ).name
    lam = tf.convert_to_tensor(lam)
    partner_index = tf.convert_to_tensor(partner_index)
    if not leaves:
        return structure
    fused = use_fused(fused)
    forward = _fused_blend_leaves if fused else _blend_leaves
    backward = _fused_blend_grads if fused else _blend_grads

    @tf.custom_gradient
    def blend_leaves(lam, *leaves):
        mixed = forward(list(leaves), lam, partner_index, float_dtype)

        def grad(*upstream):
            upstream = [
                None if g is None else tf.convert_to_tensor(g) for g in upstream
            ]
            floats = [
                i
                for i, (leaf, g) in enumerate(
                    zip(leaves, upstream, strict=True)
                )
                if leaf.dtype.is_floating and g is not None
            ]
            grads = [None] * len(leaves)
            if floats:
                computed = backward(
                    [upstream[i] for i in floats], lam, partner_index
                )
                for i, g in zip(floats, computed, strict=True):
                    grads[i] = g
            lam_grad = _lam_grad(
                leaves, upstream, lam, partner_index, float_dtype
            )
            return (lam_grad, *grads)

        return mixed, grad

    return tf.nest.pack_sequence_as(structure, blend_leaves(lam, *leaves))


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


def encode_labels(labels, num_classes=None, label_smoothing=0.0):
    """Turns labels into the float targets that mixup blends.

    Integer class ids of shape `[B]` or `[B, 1]` are one-hot encoded into
    `[B, num_classes]` float32 (an id outside `[0, num_classes)` raises
    `InvalidArgumentError` at run time); float labels (one-hot, soft,
    multi-label, regression) are kept as they are. Label smoothing is
    applied last (see `smooth_labels`).

    Raises:
        ValueError: for integer labels without `num_classes`, or integer
            labels of another shape.
    """
    labels = _check_tensor(labels, "y")
    if labels.dtype.is_integer:
        if num_classes is None:
            raise ValueError(
                "Integer labels (class ids) need `num_classes` to be one-hot "
                "encoded before mixing; pass `num_classes=...`, or pass "
                f"float labels to blend them as they are. Received labels "
                f"of dtype {labels.dtype.name} and shape {labels.shape}."
            )
        if labels.shape.rank == 2 and labels.shape[1] == 1:
            labels = tf.squeeze(labels, axis=1)
        if labels.shape.rank != 1:
            raise ValueError(
                "Integer labels must be class ids of shape [batch] or "
                f"[batch, 1]; received shape {labels.shape}. Pass one-hot "
                "or multi-hot labels as floats."
            )
        ids = tf.cast(labels, tf.int32)
        checks = [
            tf.debugging.assert_non_negative(
                ids, message=f"Labels must be in [0, {num_classes})"
            ),
            tf.debugging.assert_less(
                ids,
                num_classes,
                message=f"Labels must be in [0, {num_classes}) "
                f"(num_classes={num_classes})",
            ),
        ]
        with tf.control_dependencies(checks):
            labels = tf.one_hot(ids, num_classes, dtype=keras.config.floatx())
    return smooth_labels(labels, label_smoothing)


def mix_batch(
    x,
    y,
    sample_weight,
    lam,
    partner_index,
    *,
    num_classes=None,
    label_smoothing=0.0,
    mix_labels=True,
    fused="auto",
):
    """Mixes one batch: inputs, labels and sample weights alike.

    Args:
        x: the inputs, a tensor or nested structure of batch-first tensors.
        y: the labels (see `encode_labels`), or `None`.
        sample_weight: per-example weights, or `None`.
        lam: a float tensor of shape `[B]` (or a scalar) in [0, 1].
        partner_index: an int tensor of shape `[B]`.
        num_classes: the number of classes for integer labels. Defaults to
            `None`.
        label_smoothing: applied to labels before blending. Defaults to
            `0.0`.
        mix_labels: blend the labels and weights too; with `False`, only
            the inputs are blended and labels and weights come back as
            given. Defaults to `True`.
        fused: blend with XLA or not; see `blend_tensor`. Defaults to
            `"auto"`.

    Returns:
        The tuple `(x, y, sample_weight)` mixed, with the structure of `x`
        kept and `None` entries left `None`.
    """
    if not mix_labels:
        return blend(x, lam, partner_index, fused=fused), y, sample_weight
    if y is not None:
        y = encode_labels(y, num_classes, label_smoothing)
    if sample_weight is not None:
        sample_weight = _check_tensor(sample_weight, "sample_weight")
        if not sample_weight.dtype.is_floating:
            sample_weight = tf.cast(sample_weight, keras.config.floatx())
    # Inputs, labels and weights in one blend: one XLA launch per batch.
    parts = [part for part in (x, y, sample_weight) if part is not None]
    mixed = iter(blend(parts, lam, partner_index, fused=fused))
    return tuple(
        None if part is None else next(mixed) for part in (x, y, sample_weight)
    )
