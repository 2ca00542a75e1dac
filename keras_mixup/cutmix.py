"""CutMix (Yun et al., ICCV 2019): the box draw, the paste, the label weight.

A CutMix draw pastes, into each example, a box of its partner's pixels:

    lam ~ Beta(alpha, alpha)      side fractions (1 - lam) ** (1 / k)

along the k cut axes (k = 2 for images: sqrt(1 - lam), the rule of the
paper, timm and Keras), the box's centre uniform over the image and the
box clipped at the border; or, with `minmax=(lo, hi)` (timm's
`cutmix_minmax`), side fractions uniform in [lo, hi] and the box placed
inside the image. Clipping shrinks the pasted area, so the label weight of
each example's own label is the exact fraction of its pixels it keeps
(`correct_lam=True`, timm's `correct_lam`), or the drawn lam.

`draw_boxes` draws the boxes; `paste` applies them, and for the mixup and
CutMix switch blends the examples the draw did not cut, in one masked
select that XLA fuses with the partner gather (one pass over the batch, as
the blend). Labels and inputs of rank < 3 are blended by
`keras_mixup.blending` with the draw's `lam`, the label weight.
"""

import collections

import keras

from keras_mixup import blending
from keras_mixup.backend import tf

__all__ = [
    "CutDraw",
    "cut_axes",
    "draw_boxes",
    "pad_draw",
    "paste",
    "split_inputs",
]


class CutDraw(
    collections.namedtuple(
        "CutDraw", ["lam", "partner_index", "cut", "lows", "highs"]
    )
):
    """A draw of the mixup and CutMix family for one batch.

    Attributes:
        lam: float32 `[B]` (`[]` in `"batch"` mode): the weight of each
            example's own label (the fraction of pixels it keeps for a cut
            example, its mixup lam otherwise); 1 for an unmixed batch.
        partner_index: int32 `[B]`, each example's partner.
        cut: bool `[B]` (`[]` in `"batch"` mode): which examples are cut
            and pasted (CutMix); the others are blended (mixup).
        lows: int32 `[B, k]` (`[1, k]` in `"batch"` mode): where each
            example's box starts along each cut axis.
        highs: int32, as `lows`: where each box ends (exclusive).
    """


def _resolve(axes, rank, name):
    """`axes` as positive axes of a rank-`rank` tensor, or `None` if one
    is out of range or the batch axis."""
    resolved = tuple(a + rank if a < 0 else a for a in axes)
    if all(0 < a < rank for a in resolved):
        return resolved
    return None


def cut_axes(rank, data_format=None, axes=None, name="x"):
    """The axes along which a tensor of rank `rank` is cut, or `None` if it
    is blended.

    Images `[B, H, W, C]` (`[B, C, H, W]` channels first) are cut along
    H and W; videos `[B, T, H, W, C]` (`[B, C, T, H, W]`) along H and W,
    the same box on every frame. Tensors of rank < 3 are blended. Other
    ranks need `axes`. With `axes`, tensors of rank < 3 that `axes` fits
    are cut too.

    Raises:
        ValueError: for rank 3 or above 5 without `axes`, or a tensor of
            rank >= 3 that `axes` does not fit.
    """
    if axes is not None:
        resolved = _resolve(axes, rank, name)
        if resolved is None and rank >= 3:
            raise ValueError(
                f"`axes={axes!r}` are not axes of `{name}` (rank {rank}) "
                "other than the batch axis 0."
            )
        return resolved
    if rank < 3:
        return None
    if rank not in (4, 5):
        raise ValueError(
            f"CutMix cuts images [B, H, W, C] and videos [B, T, H, W, C] "
            f"(channels first: [B, C, H, W], [B, C, T, H, W]); `{name}` has "
            f"rank {rank}, which is ambiguous (rank 3 could be "
            "[B, H, W] or a sequence [B, T, F]): pass `axes`, the axes to "
            "cut, such as axes=(1, 2)."
        )
    data_format = data_format or keras.config.image_data_format()
    if data_format == "channels_first":
        return (rank - 2, rank - 1)
    return (rank - 3, rank - 2)


def split_inputs(structure, data_format=None, axes=None):
    """Splits a structure into the leaves CutMix cuts and the others.

    Returns:
        `(cut_leaves, specs, other_leaves, repack)`: `specs[i]` is
        `(rank, axes)` of `cut_leaves[i]`; `repack(cut, other)` puts
        processed leaves back in the structure.

    Raises:
        ValueError: as `cut_axes`; if no leaf is cut; if the cut leaves
            differ in their sizes along the cut axes.
    """
    leaves = [tf.convert_to_tensor(leaf) for leaf in tf.nest.flatten(structure)]
    specs = [
        cut_axes(leaf.shape.rank, data_format, axes, f"x[{i}]")
        for i, leaf in enumerate(leaves)
    ]
    chosen = [i for i, spec in enumerate(specs) if spec is not None]
    if not chosen:
        raise ValueError(
            "CutMix pastes boxes of images, but no input is an image or "
            "video (rank 4 or 5), and `axes` fits none; received inputs of "
            f"shapes {[leaf.shape for leaf in leaves]}."
        )
    cut_leaves = [leaves[i] for i in chosen]
    cut_specs = [(leaves[i].shape.rank, specs[i]) for i in chosen]
    _check_same_sizes(cut_leaves, cut_specs)
    others = [leaf for i, leaf in enumerate(leaves) if i not in chosen]

    def repack(cut, other):
        cut, other = iter(cut), iter(other)
        merged = [
            next(cut) if i in chosen else next(other)
            for i in range(len(leaves))
        ]
        return tf.nest.pack_sequence_as(structure, merged)

    return cut_leaves, cut_specs, others, repack


def _check_same_sizes(leaves, specs):
    sizes = [
        tuple(leaf.shape[a] for a in axes)
        for leaf, (_, axes) in zip(leaves, specs, strict=True)
    ]
    if len({len(s) for s in sizes}) > 1 or any(
        a is not None and b is not None and a != b
        for s in sizes
        for a, b in zip(s, sizes[0], strict=True)
    ):
        raise ValueError(
            "Every image CutMix cuts in one element must have the same size "
            "along the cut axes (one box per example); received sizes "
            f"{sizes}."
        )


def spatial_sizes(leaf, axes):
    """The sizes of `leaf` along `axes`, an int32 tensor `[k]`."""
    shape = tf.shape(leaf, out_type=tf.int32)
    return tf.stack([shape[a] for a in axes])


def draw_boxes(sizes, lam, seed, *, minmax=None):
    """Draws one box per lam.

    Args:
        sizes: int32 `[k]`, the sizes along the cut axes.
        lam: float32 `[n]`, the drawn lam (unused with `minmax`).
        seed: a stateless seed, int32 `[2]`.
        minmax: `None`, or `(lo, hi)`: the side fractions are drawn
            uniformly in that range and the box placed inside. Defaults to
            `None`: side fractions `(1 - lam) ** (1 / k)`, centre uniform,
            box clipped at the border.

    Returns:
        `(lows, highs, kept)`: int32 `[n, k]` box bounds (`highs`
        exclusive) and float32 `[n]`, the fraction of pixels outside the
        box (what each example keeps).
    """
    count = tf.shape(lam)[0]
    k = sizes.shape[0]
    size = tf.cast(sizes, tf.float32)[None]
    side_seed, place_seed = tf.unstack(
        tf.random.experimental.stateless_split(seed, 2)
    )
    place = tf.random.stateless_uniform([count, k], place_seed)
    if minmax is None:
        side = tf.pow(1.0 - lam, 1.0 / k)[:, None] * tf.ones([1, k])
        lengths = tf.round(side * size)
        start = tf.floor(place * size) - tf.floor(lengths / 2)
        lows = tf.clip_by_value(start, 0.0, size)
        highs = tf.clip_by_value(start + lengths, 0.0, size)
    else:
        side = tf.random.stateless_uniform(
            [count, k], side_seed, minval=minmax[0], maxval=minmax[1]
        )
        lengths = tf.round(side * size)
        lows = tf.floor(place * (size - lengths + 1.0))
        highs = lows + lengths
    area = tf.reduce_prod(highs - lows, axis=1) / tf.reduce_prod(size)
    return tf.cast(lows, tf.int32), tf.cast(highs, tf.int32), 1.0 - area


def pad_draw(draw, rows):
    """The draw extended by `rows` examples that are their own partners
    (the partner batch of `keras_mixup.mix_with`; the partner index must
    already cover them)."""
    if draw.lam.shape.rank == 0:
        return draw
    k = draw.lows.shape[1]
    return draw._replace(
        lam=tf.concat([draw.lam, tf.ones([rows], draw.lam.dtype)], 0),
        cut=tf.concat([draw.cut, tf.zeros([rows], tf.bool)], 0),
        lows=tf.concat([draw.lows, tf.zeros([rows, k], tf.int32)], 0),
        highs=tf.concat([draw.highs, tf.zeros([rows, k], tf.int32)], 0),
    )


def _merge_trailing(leaf, rank, axes):
    """`leaf` with the axes after its last cut axis merged into that axis
    (`[B, H, W, C]` as `[B, H, W * C]`): the box mask then needs no
    broadcast over channels, which XLA runs faster (see the guide
    "Performance" of the documentation).

    Returns:
        `(merged, rank, trailing)`: the merged tensor, its rank, and the
        number of values each position of the last cut axis now spans.
    """
    last = max(axes)
    if last == rank - 1:
        return leaf, rank, 1
    shape = tf.shape(leaf)
    trailing = tf.reduce_prod(shape[last + 1 :])
    merged = tf.reshape(
        leaf, tf.concat([shape[:last], [shape[last] * trailing]], axis=0)
    )
    return merged, last + 1, trailing


def _inside(leaf, lows, highs, rank, axes, trailing):
    """Bool, broadcastable to `leaf` (merged by `_merge_trailing`):
    whether a position is in its example's box."""
    shape = tf.shape(leaf)
    inside = None
    for j, axis in enumerate(axes):
        positions = tf.range(shape[axis])[None]
        if axis == max(axes):
            positions = positions // trailing
        along = tf.logical_and(
            positions >= lows[:, j : j + 1], positions < highs[:, j : j + 1]
        )
        target = [-1] + [1] * (rank - 1)
        target[axis] = shape[axis]
        along = tf.reshape(along, tf.stack(target))
        inside = along if inside is None else tf.logical_and(inside, along)
    return inside


def _per_example(value, rank):
    if value.shape.rank == 0:
        return value
    return tf.reshape(value, [-1] + [1] * (rank - 1))


def _paste_leaves(leaves, draw, specs, blends, float_dtype):
    """Pastes (and, with `blends`, blends the uncut examples of) each leaf;
    see `paste`."""
    lam, partner_index, cut, lows, highs = draw
    pasted = []
    for original, (rank, axes) in zip(leaves, specs, strict=True):
        leaf, rank, trailing = _merge_trailing(original, rank, axes)
        if blends and not leaf.dtype.is_floating:
            leaf = tf.cast(leaf, float_dtype)
        partner = tf.gather(leaf, partner_index)
        inside = _inside(leaf, lows, highs, rank, axes, trailing)
        cut_here = tf.logical_and(inside, _per_example(cut, rank))
        result = tf.where(cut_here, partner, leaf)
        if blends:
            mixed = blending.blend_pair(leaf, partner, lam)
            result = tf.where(_per_example(cut, rank), result, mixed)
        pasted.append(tf.reshape(result, tf.shape(original)))
    return pasted


def paste(leaves, draw, specs, *, blends, fused="auto"):
    """Pastes each example's partner into its box.

    Args:
        leaves: the tensors to cut, batch first.
        draw: a `CutDraw`.
        specs: `(rank, axes)` of each leaf (see `split_inputs`).
        blends: whether some examples may be blended (the switch): then
            integer leaves are cast to the Keras compute dtype and uncut
            examples blended with `draw.lam`; else the paste keeps dtypes.
        fused: as `keras_mixup.blending.use_fused`. Defaults to `"auto"`.

    Returns:
        The pasted tensors.
    """
    if not leaves:
        return []
    leaves = [tf.convert_to_tensor(leaf) for leaf in leaves]
    float_dtype = keras.config.dtype_policy().compute_dtype
    # One XLA computation for every image of the element: the partner
    # gather, the box mask and the select (and the blend of uncut examples)
    # fuse into one pass over each tensor. Traced once per structure.
    run = (
        blending.xla_compiled(_paste_leaves)
        if blending.use_fused(fused)
        else _paste_leaves
    )
    return run(list(leaves), tuple(draw), tuple(specs), blends, float_dtype)
