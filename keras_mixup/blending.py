"""Blending: the one formula every mix of the package goes through.

Every blend happens here, in `blend_pair`:

    mixed[i] = x[partner_index[i]] + lam[i] * (x[i] - x[partner_index[i]])

which is `lam * x_i + (1 - lam) * x_partner`, written so that an example
paired with itself comes back unchanged (equal values are returned as they
are; on TensorFlow and JAX +-inf too). On PyTorch it is one `torch.lerp`
after the gather of the partners: two passes over the batch, against the
six of the formula written out op by op with its select of equal values
(XLA fuses those into one on TensorFlow and JAX). lam is drawn by
`keras_mixup.draws`
and `partner_index` by `keras_mixup.pairing`; this module only applies them,
so tests can inject both.

The formula and its gradient are written once, against the backend
namespace `keras_mixup.backend.ops()`: they run on TensorFlow (in `tf.data`,
in TensorFlow graphs, on the TensorFlow backend), on JAX and on PyTorch,
each with the same cheap gather-shaped backward (see `blend_tensor`). On
TensorFlow the blend of a whole structure runs in graphs as one XLA
computation where XLA is available (`fused`, see `use_fused`); on JAX the
jitted training step already compiles it with XLA.
"""

import functools

import keras

from keras_mixup import backend, checks, compat
from keras_mixup.backend import tf

__all__ = [
    "blend",
    "blend_pair",
    "blend_sources",
    "blend_tensor",
    "segment_sum",
    "use_fused",
    "xla_compiled",
    "xla_available",
]


_xla_available = None


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
                probe = tf.function(
                    lambda v: v + 1, jit_compile=True, autograph=False
                )
                probe(tf.constant(1.0))
            _xla_available = True
        except (tf.errors.OpError, RuntimeError, ValueError):
            _xla_available = False
    return _xla_available


def use_fused(fused):
    """Resolves `fused` to a bool: whether to run the TensorFlow blend as
    one XLA computation (`xla_compiled`).

    On TensorFlow, `"auto"` fuses when a graph is being built (a
    `Dataset.map`, a `tf.function`, a Keras train step), which compiles the
    blend once and runs it every batch, and XLA is available; it does not
    when executing eagerly (a first call per input shape would spend ~0.1 s
    compiling for one blend), nor inside a computation XLA already compiles
    (`jit_compile=True`), whose plain ops XLA fuses anyway.

    On JAX the result is always `False`: the blend runs as plain JAX ops,
    which the jitted training step compiles with XLA and fuses (`True` is
    accepted and means just that). PyTorch has no XLA: `True` is refused
    there.

    Raises:
        ValueError: for an invalid `fused`, `True` without XLA, or `True`
            on PyTorch.
    """
    fused = checks.check_fused(fused)
    name = backend.name()
    if name == "torch" and fused is True:
        raise ValueError(
            "`fused=True` compiles the blend with XLA, which the PyTorch "
            'backend does not use; use fused="auto" or fused=False (plain '
            "PyTorch ops)."
        )
    if name != "tensorflow":
        return False
    if fused == "auto":
        return (
            not tf.executing_eagerly()
            and not compat.is_xla()
            and xla_available()
        )
    if fused and not xla_available():
        raise ValueError(
            "`fused=True` needs XLA, which this TensorFlow build or device "
            'does not provide; use fused="auto" or fused=False.'
        )
    return fused


def _as_float(tensor, float_dtype):
    """`tensor`, cast to `float_dtype` unless it holds floats."""
    if backend.is_floating(tensor):
        return tensor
    return backend.ops().core.cast(tensor, float_dtype)


def _blend_leaf(tensor, lam, partner_index, float_dtype):
    """The blend of one tensor with its partners; see `blend_tensor`."""
    tensor = _as_float(tensor, float_dtype)
    partners = backend.ops().numpy.take(tensor, partner_index, axis=0)
    return blend_pair(tensor, partners, lam)


def _blend_leaves(leaves, lam, partner_index, float_dtype):
    return [_blend_leaf(t, lam, partner_index, float_dtype) for t in leaves]


# All leaves in one XLA cluster: the cast of integer inputs, the gather of
# the partners, the multiply and the add fuse into one pass over each
# tensor (one read of the batch, one write of the result), and the whole
# structure costs one kernel launch. Traced once per structure and dtypes
# (`reduce_retracing` relaxes differing shapes to unknown dimensions): in a
# `Dataset.map` or a `tf.function`, once per pipeline. XLA still compiles
# once per concrete shape, such as a smaller last batch, and caches it.
@functools.cache
def xla_compiled(function):
    """`function` as one XLA computation (`tf.function(jit_compile=True)`),
    built on first use (TensorFlow is imported only then) and kept."""
    return tf.function(
        function, jit_compile=True, autograph=False, reduce_retracing=True
    )


def _lam_for(tensor, lam):
    """lam cast to `tensor`'s dtype and shaped to broadcast against it."""
    lam = backend.ops().core.cast(lam, backend.dtype_name(tensor))
    if backend.rank(lam) == 0:
        return lam
    rank = backend.rank(tensor)
    if rank is None:  # a relaxed trace of a fused function (TensorFlow)
        shape = tf.concat(
            [[-1], tf.ones([tf.rank(tensor) - 1], tf.int32)], axis=0
        )
        return tf.reshape(lam, shape)
    return backend.ops().numpy.reshape(lam, [-1] + [1] * (rank - 1))


def _wide(tensor):
    """Half precision as float32, to compute in; other dtypes as they are."""
    if backend.dtype_name(tensor) in ("float16", "bfloat16"):
        return backend.ops().core.cast(tensor, "float32")
    return tensor


def segment_sum(data, ids, length=None):
    """Row `j` of the result sums the rows `i` of `data` with
    `ids[i] == j`, for int32 `ids` in `[0, length)`; `length` rows (a
    static length, for XLA and `jax.jit`), by default as many as `data`.

    PyTorch's Keras `segment_sum` sums in float32 whatever the dtype: a
    scatter-add there.
    """
    ops = backend.ops()
    if backend.name() == "torch":
        zeros = ops.numpy.zeros_like(data)  # the hot path: rows of data
        if length is not None:
            shape = (length, *ops.core.shape(data)[1:])
            zeros = ops.numpy.zeros(shape, dtype=backend.dtype_name(data))
        return ops.core.scatter_update(
            zeros,
            ops.numpy.expand_dims(ids, 1),
            data,
            reduction="add",
        )
    if length is None:
        length = ops.core.shape(ids)[0]
    return ops.math.segment_sum(data, ids, num_segments=length)


def _blend_grads(grads, lam, partner_index):
    """The gradients of `_blend_leaves` with respect to its leaves.

    Output row `i` is `lam[i] * x[i] + (1 - lam[i]) * x[p[i]]`, so row `j`
    of the input receives `lam[j] * g[j]` plus `(1 - lam[i]) * g[i]` from
    every `i` with `p[i] == j`. When the partners form a permutation (random
    pairing) that sum is a gather by the inverse permutation (its argsort),
    one pass; otherwise (the k-nearest-neighbour and same-class pairings,
    where a row can be the partner of several) a segment sum. Automatic
    differentiation would turn the gather into a scatter-add, several times
    slower on CPU. Half precision is computed in float32 and rounded once.
    On PyTorch, torch ops (`_torch_blend_grad`).
    """
    if backend.name() == "torch":
        return [_torch_blend_grad(g, lam, partner_index) for g in grads]
    ops = backend.ops()
    counts = segment_sum(ops.numpy.ones_like(partner_index), partner_index)
    wide = [_wide(g) for g in grads]
    own = [_lam_for(g, lam) * g for g in wide]
    # (1 - lam) * g, what each output sends to its partner.
    to_partners = [g - o for g, o in zip(wide, own, strict=True)]
    sums = ops.core.cond(
        ops.numpy.all(ops.numpy.equal(counts, 1)),
        lambda: [
            ops.numpy.take(t, ops.numpy.argsort(partner_index), axis=0)
            for t in to_partners
        ],
        lambda: [segment_sum(t, partner_index) for t in to_partners],
    )
    return [
        ops.core.cast(o + s, backend.dtype_name(g))
        for g, o, s in zip(grads, own, sums, strict=True)
    ]


def _lam_grad(leaves, grads, lam, partner_index, float_dtype):
    """The gradient of the blend with respect to lam: the sum of
    `g * (x - x[p])` over each example's values (0 where they are equal).
    Plain ops, so a graph that does not use it prunes it."""
    ops = backend.ops()
    total = ops.numpy.zeros_like(lam, dtype="float32")
    for leaf, grad in zip(leaves, grads, strict=True):
        if grad is None:
            continue
        first = ops.core.cast(_as_float(leaf, float_dtype), "float32")
        second = ops.numpy.take(first, partner_index, axis=0)
        terms = ops.numpy.where(
            ops.numpy.equal(first, second),
            0.0,
            ops.core.cast(grad, "float32") * (first - second),
        )
        if backend.rank(lam) == 0:
            total += ops.numpy.sum(terms)
        else:
            size = ops.core.shape(partner_index)[0]
            total += ops.numpy.sum(ops.numpy.reshape(terms, [size, -1]), 1)
    return ops.core.cast(total, backend.dtype_name(lam))


def blend_tensor(tensor, lam, partner_index, float_dtype=None, *, fused="auto"):
    """Blends one batch-first tensor with its partners.

    Computes `x[p] + lam * (x - x[p])`, which is `lam * x + (1 - lam) *
    x[p]` written so that an example paired with itself comes back bit for
    bit unchanged. Runs on TensorFlow, JAX and PyTorch tensors (see
    `keras_mixup.backend`).

    Differentiable in the inputs and in lam, with the gradient of `lam * x
    + (1 - lam) * x[p]` everywhere: example `j` receives `lam[j] * g[j]`
    plus `(1 - lam[i]) * g[i]` from every `i` it is the partner of. That
    sum is one gather by the inverse permutation when the partners form a
    permutation (random pairing) and a segment sum otherwise, not the
    scatter-add automatic differentiation would make of the gather (several
    times slower on CPU): mixing hidden states (`MixupModel(mix_at=
    "latent")`) costs about as much backward as forward. The gradient is
    given through the backend's custom gradient (`tf.custom_gradient`,
    `jax.custom_gradient`, a `torch.autograd.Function`).

    Args:
        tensor: a numeric tensor of shape `[B, ...]`.
        lam: a float tensor of shape `[B]` (or a scalar) in [0, 1].
        partner_index: an int tensor of shape `[B]`.
        float_dtype: the dtype integer tensors are blended in. Defaults to
            the Keras compute dtype of the global dtype policy.
        fused: on TensorFlow, `True` to compile the blend with XLA
            (`tf.function(jit_compile=True)`: cast, gather, multiply and
            add fused into one pass over the batch), `False` for plain
            TensorFlow ops, `"auto"` for XLA in graphs where XLA is
            available (see `use_fused`). Both paths compute the same
            formula. On JAX the blend is plain JAX ops, which the jitted
            training step compiles with XLA, whatever `fused` is; on
            PyTorch, plain PyTorch ops, and `True` is refused. Defaults to
            `"auto"`.

    Returns:
        The blended tensor: float tensors keep their dtype; integer ones are
        returned in `float_dtype`. float16 and bfloat16 are blended in
        float32 and rounded once, so float16 cannot overflow; finite
        bfloat16, float32 and float64 values below half the largest value
        (1.7e38 for float32) give finite results.

    Raises:
        ValueError: for an invalid `fused`, or `True` where it cannot
            apply (see `use_fused`).
    """
    return blend(tensor, lam, partner_index, float_dtype, fused=fused)


def blend_pair(first, second, lam):
    """Blends two batches example by example: `lam * first + (1 - lam) *
    second`.

    The one blend formula of the package, written `second + lam * (first -
    second)`; where the two values are equal the value itself is returned,
    so an example blended with an identical one (or paired with itself)
    comes back unchanged: bit for bit on TensorFlow and JAX, even where it
    holds +-inf. On PyTorch it is `torch.lerp(second, first, lam)`, one
    kernel, which computes `first - (first - second) * (1 - lam)` for lam
    >= 0.5: `second` exactly at lam 0, `first` exactly at lam 1, and equal
    finite values exactly (a zero may lose its sign); an infinity blended
    with an equal infinity gives NaN there (inf - inf), as an infinity
    blended with a finite value can on every backend (0 * inf at lam 0).
    `blend_tensor` calls it with a batch and its partners; `MixupGAN` with
    real and generated samples. Runs on TensorFlow, JAX and PyTorch
    tensors, differentiable by the backend's automatic differentiation.

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
    dtype = backend.dtype_name(first)
    if dtype != backend.dtype_name(second):
        raise ValueError(
            "The two tensors to blend must have the same dtype; received "
            f"{dtype} and {backend.dtype_name(second)}."
        )
    if not backend.compatible_shapes(first.shape, second.shape):
        raise ValueError(
            "The two tensors to blend must have the same shape; received "
            f"{first.shape} and {second.shape}."
        )
    if backend.name() == "torch":
        return _torch_lerp(first, second, lam)
    ops = backend.ops()
    # Blend half precision in float32 and round once: first - second would
    # overflow float16 for values of opposite signs above 32752 (inf, and
    # NaN where lam == 0), and lam keeps its precision.
    first, second = _wide(first), _wide(second)
    mixed = second + _lam_for(first, lam) * (first - second)
    # Equal values come back as they are, infinities included (inf - inf
    # would make the formula NaN); NaN is never equal, so it passes through.
    same = ops.numpy.equal(first, second)
    return ops.core.cast(ops.numpy.where(same, first, mixed), dtype)


def _torch_weight(lam, tensor, dtype):
    """lam in `dtype`, shaped `[B, 1, ...]` to broadcast against `tensor`
    (a scalar lam as it is)."""
    if lam.dtype != dtype:
        lam = lam.to(dtype)
    if lam.ndim == 0:
        return lam
    return lam.view(-1, *[1] * (tensor.ndim - 1))


def _torch_lerp(first, second, lam, *, reuse_second=False):
    """`blend_pair` on PyTorch: one `torch.lerp(second, first, lam)`, the
    blend in one kernel (one read of each tensor, one write).

    `torch.lerp` computes `second + lam * (first - second)` for lam < 0.5
    and `first - (first - second) * (1 - lam)` otherwise, so it returns
    `second` exactly at lam 0, `first` exactly at lam 1, and a finite value
    blended with itself exactly. Half precision is widened to float32
    (`torch.lerp` takes its weight in the dtype of the tensors: lam would
    be rounded to float16), blended there and rounded once. With
    `reuse_second` (a buffer the caller made, such as the gathered
    partners) the result is written into it when no gradient is recorded.
    """
    import torch

    dtype = first.dtype
    wide = dtype in (torch.float16, torch.bfloat16)
    if wide:
        first, second, reuse_second = first.float(), second.float(), True
    weight = _torch_weight(lam, first, first.dtype)
    recorded = torch.is_grad_enabled() and (
        first.requires_grad or second.requires_grad or weight.requires_grad
    )
    out = second if reuse_second and not recorded else None
    mixed = torch.lerp(second, first, weight, out=out)
    return mixed.to(dtype) if wide else mixed


def _torch_blend_leaf(tensor, lam, partner_index, float_dtype):
    """`_blend_leaf` on PyTorch: the partners gathered (`index_select`, one
    pass), then blended into that buffer (`_torch_lerp`, one pass)."""
    if not tensor.is_floating_point():
        tensor = _as_float(tensor, float_dtype)
    partners = tensor.index_select(0, partner_index)
    return _torch_lerp(tensor, partners, lam, reuse_second=True)


def _torch_blend_grad(grad, lam, partner_index):
    """`_blend_grads` of one leaf on PyTorch, in torch ops: row `j` gets
    `lam[j] * g[j] + (1 - lam[i]) * g[i]` for every `i` with `p[i] == j`.

    For a permutation (checked on the host: the backward's one round
    trip) the sum is a gather by the inverse permutation, `g[q]` with
    `q = argsort(p)`, scaled in place and added to `lam * g` in place:
    three passes. Otherwise an `index_add_` (a scatter-add). Half
    precision is summed in float32 and rounded once.
    """
    import torch

    dtype = grad.dtype
    wide = grad.float() if dtype in (torch.float16, torch.bfloat16) else grad
    rows = partner_index.shape[0]
    lam = lam.to(wide.dtype)
    own = _torch_weight(lam, wide, wide.dtype)
    sent = 1 - (lam if lam.ndim else lam.expand(rows))
    counts = torch.bincount(partner_index, minlength=rows)
    if bool((counts == 1).all()):
        inverse = torch.argsort(partner_index)
        total = wide.index_select(0, inverse)
        total.mul_(
            _torch_weight(sent.index_select(0, inverse), wide, wide.dtype)
        )
    else:
        total = torch.zeros_like(wide).index_add_(
            0, partner_index, wide * _torch_weight(sent, wide, wide.dtype)
        )
    total.addcmul_(own, wide)
    return total.to(dtype)


def _blend_tensorflow(leaves, lam, partner_index, float_dtype, fused):
    """`blend` on TensorFlow: every leaf in one `tf.custom_gradient`, the
    forward and the backward each one XLA computation when `fused`."""
    forward = xla_compiled(_blend_leaves) if fused else _blend_leaves
    backward = xla_compiled(_blend_grads) if fused else _blend_grads

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
                if backend.is_floating(leaf) and g is not None
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

    return blend_leaves(lam, *leaves)


def _blend_differentiable(leaf, lam, partner_index):
    """`blend` of one float leaf on JAX or PyTorch, with the backward of
    `_blend_grads` and `_lam_grad` (`keras.ops.custom_gradient`: the
    backward is called `grad(upstream)` on JAX, `grad(*args, upstream=)`
    on PyTorch). `partner_index` is an argument, not a closure: JAX's
    custom gradient cannot close over a traced value."""

    @backend.ops().core.custom_gradient
    def blend_leaf(lam, leaf, partner_index):
        def grad(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            (leaf_grad,) = _blend_grads([upstream], lam, partner_index)
            lam_grad = None  # PyTorch: only when lam requires it
            if getattr(lam, "requires_grad", True):
                lam_grad = _lam_grad(
                    [leaf], [upstream], lam, partner_index, float_dtype=None
                )
            return lam_grad, leaf_grad, None

        plain = _torch_blend_leaf if backend.name() == "torch" else _blend_leaf
        return plain(leaf, lam, partner_index, None), grad

    return blend_leaf(lam, leaf, partner_index)


def _needs_gradient(leaf, lam):
    """Whether a blend may be differentiated: always, except for PyTorch
    tensors that say they need no gradient (inputs mixed at the input),
    which skip the custom gradient's bookkeeping."""
    return getattr(leaf, "requires_grad", True) or getattr(
        lam, "requires_grad", True
    )


def _leaves(structure, is_tensor):
    """The leaves of `structure`, and the function that packs blended
    leaves back into it. A tensor, or a list or tuple of tensors, skips
    the walk of `keras.tree` (tens of microseconds on PyTorch, where this
    runs eagerly every step)."""
    if is_tensor(structure):
        return [structure], lambda mixed: mixed[0]
    if type(structure) in (list, tuple) and all(map(is_tensor, structure)):
        return list(structure), type(structure)
    if type(structure) in (list, tuple) and all(
        is_tensor(part)
        or (type(part) in (list, tuple) and all(map(is_tensor, part)))
        for part in structure
    ):  # one level of nesting: the engine's [inputs, labels, weights]
        return _nested_leaves(structure, is_tensor)
    return keras.tree.flatten(structure), functools.partial(
        keras.tree.pack_sequence_as, structure
    )


def _nested_leaves(structure, is_tensor):
    """`_leaves` of a list or tuple of tensors and of lists or tuples of
    tensors, without `keras.tree`."""
    sizes = [None if is_tensor(part) else len(part) for part in structure]
    leaves = []
    for part, size in zip(structure, sizes, strict=True):
        leaves.extend([part] if size is None else part)

    def pack(mixed):
        mixed, parts = iter(mixed), []
        for part, size in zip(structure, sizes, strict=True):
            taken = [next(mixed) for _ in range(1 if size is None else size)]
            parts.append(taken[0] if size is None else type(part)(taken))
        return type(structure)(parts)

    return leaves, pack


def blend(structure, lam, partner_index, float_dtype=None, *, fused="auto"):
    """Blends every tensor of a nested structure with the same lam and
    partners. See `blend_tensor`; with the fused path, all the tensors are
    blended by one XLA computation."""
    ops = backend.ops()
    leaves, pack = _leaves(structure, ops.core.is_tensor)
    if not leaves:
        return structure
    leaves = [checks.to_tensor(t) for t in leaves]
    float_dtype = backend.standard_dtype(
        float_dtype or keras.config.dtype_policy().compute_dtype
    )
    lam = checks.to_tensor(lam)
    partner_index = checks.to_tensor(partner_index)
    fused = use_fused(fused)
    name = backend.name()
    if name == "tensorflow":
        mixed = _blend_tensorflow(
            leaves, lam, partner_index, float_dtype, fused
        )
    else:
        plain = _torch_blend_leaf if name == "torch" else _blend_leaf
        mixed = [
            _blend_differentiable(_as_float(t, float_dtype), lam, partner_index)
            if _needs_gradient(t, lam)
            else plain(t, lam, partner_index, float_dtype)
            for t in leaves
        ]
    return pack(mixed)


def source_weights_exact(indices, weights):
    """The weights of `blend_sources`: a partner that is the example
    itself weighs 0 and the example's own weight is 1 minus the others',
    so an example whose sources are all itself comes back exactly."""
    np = backend.ops().numpy
    weights = backend.ops().core.cast(weights, "float32")
    others = np.where(
        np.equal(indices[:, 1:], indices[:, :1]), 0.0, weights[:, 1:]
    )
    own = 1.0 - np.sum(others, axis=1, keepdims=True)
    return np.concatenate([own, others], axis=1)


def blend_sources(structure, indices, weights, float_dtype=None):
    """The weighted sum of several sources of each example, for every
    tensor of a structure: `sum_s weights[:, s] * t[indices[:, s]]`.

    Args:
        structure: a tensor or nested structure of batch-first tensors.
        indices: int32 `[B, S]`, the example itself (`indices[:, 0]`, the
            identity) then its partners.
        weights: float `[B, S]`, summing to 1 per example.
        float_dtype: the dtype integer tensors are cast to. Defaults to
            `None`: the compute dtype.

    Returns:
        The structure, blended (floats in their dtype, integers as
        `float_dtype`).
    """
    ops = backend.ops()
    leaves, pack = _leaves(structure, ops.core.is_tensor)
    if not leaves:
        return structure
    float_dtype = float_dtype or keras.config.dtype_policy().compute_dtype
    weights = source_weights_exact(indices, weights)
    mixed = []
    for leaf in leaves:
        leaf = _as_float(ops.core.convert_to_tensor(leaf), float_dtype)
        dtype = backend.dtype_name(leaf)
        rank = backend.rank(leaf)
        shape = [-1] + [1] * (rank - 1)
        total = ops.numpy.reshape(weights[:, 0], shape) * _wide(leaf)
        for s in range(1, ops.core.shape(indices)[1]):
            partner = ops.numpy.take(leaf, indices[:, s], axis=0)
            weight = ops.numpy.reshape(weights[:, s], shape)
            total = total + weight * _wide(partner)
        mixed.append(ops.core.cast(total, dtype))
    return pack(mixed)
