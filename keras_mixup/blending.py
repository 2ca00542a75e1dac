"""Blending: the one formula every mix of the package goes through.

Every blend happens here, in `blend_pair`:

    mixed[i] = x[partner_index[i]] + lam[i] * (x[i] - x[partner_index[i]])

which is `lam * x_i + (1 - lam) * x_partner`, written so that an example
paired with itself comes back bit for bit unchanged (equal values, +-inf
included, are returned as they are). lam is drawn by `keras_mixup.draws`
and `partner_index` by `keras_mixup.pairing`; this module only applies them,
so tests can inject both. In graphs the blend of a whole structure runs as
one XLA computation where XLA is available (`fused`, see `use_fused`), else
as plain TensorFlow ops; both compute this formula.
"""

import functools

import keras

from keras_mixup import checks, compat
from keras_mixup.backend import tf

__all__ = [
    "blend",
    "blend_pair",
    "blend_tensor",
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
    fused = checks.check_fused(fused)
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
@functools.cache
def xla_compiled(function):
    """`function` as one XLA computation (`tf.function(jit_compile=True)`),
    built on first use (TensorFlow is imported only then) and kept."""
    return tf.function(
        function, jit_compile=True, autograph=False, reduce_retracing=True
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
