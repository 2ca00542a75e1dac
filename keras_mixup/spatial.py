"""Where the cutting variants cut: the spatial axes of images and videos,
the split of a structure into the leaves cut and the rest, the boxes of the
box-cutting variants, and masks built from index comparisons.

Written once against the backend namespace (`keras_mixup.backend.ops()`):
it runs in `tf.data` and in a model on TensorFlow, JAX and PyTorch.
"""

import functools
import math
import types

import keras
import numpy as np

from keras_mixup import backend, compat

__all__ = [
    "box_bounds",
    "cut_axes",
    "draw_boxes",
    "gather_positions",
    "host_box",
    "mask_along",
    "merge_trailing",
    "paste_where",
    "per_example",
    "positions",
    "select",
    "sizes",
    "split_inputs",
    "torch_inside_boxes",
    "torch_separable_mask",
]


def _resolve(axes, rank):
    """`axes` as positive axes of a rank-`rank` tensor, or `None` if one
    is out of range or the batch axis."""
    resolved = tuple(a + rank if a < 0 else a for a in axes)
    if all(0 < a < rank for a in resolved):
        return resolved
    return None


def cut_axes(
    rank, data_format=None, axes=None, name="x", owner="A cutting variant"
):
    """The axes along which a tensor of rank `rank` is cut, or `None` if it
    is blended.

    Images `[B, H, W, C]` (`[B, C, H, W]` channels first) are cut along
    H and W; videos `[B, T, H, W, C]` (`[B, C, T, H, W]`) along H and W,
    the same cut on every frame. Tensors of rank < 3 are blended. Other
    ranks need `axes`. With `axes`, tensors of rank < 3 that `axes` fits
    are cut too.

    Raises:
        ValueError: for rank 3 or above 5 without `axes`, or a tensor of
            rank >= 3 that `axes` does not fit.
    """
    if axes is not None:
        resolved = _resolve(axes, rank)
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
            f"{owner} cuts images [B, H, W, C] and videos [B, T, H, W, C] "
            f"(channels first: [B, C, H, W], [B, C, T, H, W]); `{name}` has "
            f"rank {rank}, which is ambiguous (rank 3 could be "
            "[B, H, W] or a sequence [B, T, F]): pass `axes`, the axes to "
            "cut, such as axes=(1, 2)."
        )
    data_format = data_format or keras.config.image_data_format()
    if data_format == "channels_first":
        return (rank - 2, rank - 1)
    return (rank - 3, rank - 2)


def split_inputs(
    structure, data_format=None, axes=None, owner="A cutting variant"
):
    """Splits a structure into the leaves a cutting variant cuts and the
    others.

    Returns:
        `(cut_leaves, specs, other_leaves, repack)`: `specs[i]` is
        `(rank, axes)` of `cut_leaves[i]`; `repack(cut, other)` puts
        processed leaves back in the structure.

    Raises:
        ValueError: as `cut_axes`; if no leaf is cut; if the cut leaves
            differ in their sizes along the cut axes.
    """
    lone = backend.ops().core.is_tensor(structure)  # no walk of a tensor
    leaves = [structure] if lone else keras.tree.flatten(structure)
    specs = [
        cut_axes(backend.rank(leaf), data_format, axes, f"x[{i}]", owner)
        for i, leaf in enumerate(leaves)
    ]
    chosen = [i for i, spec in enumerate(specs) if spec is not None]
    if not chosen:
        raise ValueError(
            f"{owner} cuts images, but no input is an image or video "
            "(rank 4 or 5), and `axes` fits none; received inputs of "
            f"shapes {[tuple(leaf.shape) for leaf in leaves]}."
        )
    cut_leaves = [leaves[i] for i in chosen]
    cut_specs = [(backend.rank(leaves[i]), specs[i]) for i in chosen]
    _check_same_sizes(cut_leaves, cut_specs, owner)
    others = [leaf for i, leaf in enumerate(leaves) if i not in chosen]

    def repack(cut, other):
        cut, other = iter(cut), iter(other)
        merged = [
            next(cut) if i in chosen else next(other)
            for i in range(len(leaves))
        ]
        if lone:
            return merged[0]
        return keras.tree.pack_sequence_as(structure, merged)

    return cut_leaves, cut_specs, others, repack


def _check_same_sizes(leaves, specs, owner):
    found = [
        tuple(leaf.shape[a] for a in axes)
        for leaf, (_, axes) in zip(leaves, specs, strict=True)
    ]
    if len({len(s) for s in found}) > 1 or any(
        a is not None and b is not None and a != b
        for s in found
        for a, b in zip(s, found[0], strict=True)
    ):
        raise ValueError(
            f"Every image {owner} cuts in one element must have the same "
            "size along the cut axes (one cut per example); received sizes "
            f"{found}."
        )


def sizes(leaf, axes):
    """The sizes of `leaf` along `axes`: Python ints where static, else
    scalar int tensors (TensorFlow's dynamic dimensions)."""
    shape = backend.ops().core.shape(leaf)
    return [shape[a] for a in axes]


def per_example(value, rank):
    """A per-example value `[B]` shaped `[B, 1, ...]` to broadcast against
    a rank-`rank` tensor; a scalar (one value for the batch) as it is."""
    if backend.rank(value) == 0:
        return value
    return backend.ops().numpy.reshape(value, [-1] + [1] * (rank - 1))


def positions(size, axis, rank):
    """`arange(size)` shaped to lie along `axis` of a rank-`rank` tensor
    (`[1, ..., size, ..., 1]`), int32."""
    ops = backend.ops()
    shape = [1] * rank
    shape[axis] = -1
    return ops.numpy.reshape(ops.numpy.arange(size, dtype="int32"), shape)


def mask_along(image, rank, axes, along, trailing=1):
    """Bool, broadcastable to `image`: the positions where `along(j,
    where)` holds on every cut axis `j`, `where` the positions along
    `axes[j]` (as `positions`; on the last cut axis divided by `trailing`,
    for an image whose trailing axes `merge_trailing` merged)."""
    np = backend.ops().numpy
    shape = backend.ops().core.shape(image)
    inside = None
    for j, axis in enumerate(axes):
        where = positions(shape[axis], axis, rank)
        if axis == max(axes) and trailing != 1:
            where = where // trailing
        condition = along(j, where)
        inside = (
            condition if inside is None else np.logical_and(inside, condition)
        )
    return inside


def paste_where(image, rank, axes, partner_index, inside, *params):
    """`image` with its partner's values (`partner_index`, int32 `[B]`)
    where `inside(merged, *params, merged_rank, axes, trailing)` holds,
    computed on the image with its trailing axes merged (see
    `merge_trailing`): one masked select that XLA fuses with the partner
    gather."""
    ops = backend.ops()
    merged, merged_rank, trailing = merge_trailing(image, rank, axes)
    partner = ops.numpy.take(merged, partner_index, axis=0)
    mask = inside(merged, *params, merged_rank, axes, trailing)
    pasted = ops.numpy.where(mask, partner, merged)
    return ops.numpy.reshape(pasted, ops.core.shape(image))


#: The signed integers whose bits `select` moves, by the values' dtype.
_BITS = {
    "bfloat16": "int16",
    "float16": "int16",
    "float32": "int32",
    "float64": "int64",
    "int8": "int8",
    "uint8": "int8",
    "int16": "int16",
    "uint16": "int16",
    "int32": "int32",
    "uint32": "int32",
    "int64": "int64",
    "uint64": "int64",
}


def select(mask, x, y):
    """`where(mask, x, y)`, bit for bit, for a bool `mask` held in memory
    (FMix's) broadcastable to `x` and `y` (of one dtype).

    XLA on CPU runs a select on a stored mask several times slower than a
    pass of integer ops (a 64x224x224x3 float32 paste about 4x the copy's
    time against 1.5x), so on TensorFlow and JAX the values' bits are
    selected, `y ^ ((x ^ y) & -mask)`, with the gradient of `where`
    (other dtypes, bool or complex, by `where`). On PyTorch, `where` on
    the mask expanded to `x`'s shape: one that broadcasts over the
    channels runs a slow loop of a few values on the CPU (as
    `torch_separable_mask` says).
    """
    if backend.name() == "torch":
        import torch

        return torch.where(mask.expand(x.shape).contiguous(), x, y)
    bits = _BITS.get(backend.dtype_name(x))
    if bits is None:
        return backend.ops().numpy.where(mask, x, y)
    if backend.name() == "tensorflow":
        return _tf_select(mask, x, y, bits)
    return _jax_select(bits)(mask, x, y)


def _bit_select(mask, x, y, bits):
    """The bits of `x` where `mask`, of `y` elsewhere, as `x`'s dtype."""
    ones = -backend.ops().core.cast(mask, bits)
    first, second = backend.bitcast(x, bits), backend.bitcast(y, bits)
    return backend.bitcast(
        second ^ ((first ^ second) & ones), backend.dtype_name(x)
    )


def _tf_select(mask, x, y, bits):
    import tensorflow as tf

    @tf.custom_gradient
    def selected(x, y):
        def grad(upstream):
            zero = tf.zeros_like(upstream)
            return tf.where(mask, upstream, zero), tf.where(
                mask, zero, upstream
            )

        return _bit_select(mask, x, y, bits), grad

    return selected(x, y)


@functools.lru_cache(maxsize=16)
def _jax_select(bits):
    import jax

    @jax.custom_jvp
    def selected(mask, x, y):
        return _bit_select(mask, x, y, bits)

    @selected.defjvp
    def _(primals, tangents):
        mask, x, y = primals
        _, dx, dy = tangents
        return selected(mask, x, y), jax.numpy.where(mask, dx, dy)

    return selected


def gather_positions(image, axes, source, coordinates):
    """`image` read at other positions, in one gather: the value at each
    position comes from example `source` at `coordinates` along the cut
    `axes`, the axes before the last cut axis that are not cut unchanged,
    the axes after it (channels) whole.

    Args:
        image: a batch-first tensor.
        axes: the cut axes (positive, increasing).
        source: int32, broadcastable to `image.shape[:max(axes) + 1]`: the
            example each position reads from.
        coordinates: one int32 tensor per cut axis, broadcastable likewise,
            each in `[0, size)` along its axis.

    Returns:
        A tensor of the shape and dtype of `image`.
    """
    ops = backend.ops()
    np = ops.numpy
    shape = ops.core.shape(image)
    last = max(axes)
    rows = 1
    for size in shape[last + 1 :]:
        rows = rows * size
    index, stride, count = 0, 1, 1
    for axis in range(last, -1, -1):
        if axis == 0:
            along = source
        elif axis in axes:
            along = coordinates[axes.index(axis)]
        else:
            along = positions(shape[axis], axis, last + 1)
        index = index + along * stride
        stride = stride * shape[axis]
        count = count * shape[axis]
    index = np.broadcast_to(index, shape[: last + 1])
    flat = np.reshape(image, [count, rows])
    if backend.name() == "torch":  # no Keras take: two passes of indices
        taken = flat.index_select(0, index.reshape(-1))
    else:
        taken = np.take(flat, np.reshape(index, [count]), axis=0)
    return np.reshape(taken, shape)


def draw_boxes(sizes, lam, seed, *, minmax=None, sides=None):
    """Draws one box per lam.

    Args:
        sizes: the sizes along the `k` cut axes (ints or scalar tensors).
        lam: float32 `[n]`, the drawn lam (unused with `minmax`).
        seed: a seed, as `keras_mixup.backend.uniform` takes it.
        minmax: `None`, or `(lo, hi)`: the side fractions are drawn
            uniformly in that range and the box placed inside. Defaults to
            `None`: side fractions `(1 - lam) ** (1 / k)`, centre uniform,
            box clipped at the border.
        sides: `None`, or float32 `[n]`: the side fractions (the same on
            every axis), placed as without `minmax` (ResizeMix's boxes).
            Defaults to `None`: from lam.

    Returns:
        `(lows, highs, kept, slices)`: int32 `[n, k]` box bounds (`highs`
        exclusive), float32 `[n]`, the fraction of values outside the box
        (what each example keeps), and `slices`: `None`, or on PyTorch for
        one box (`n` 1, computed on the host by `host_box`) the box's
        `slice` along each cut axis, for a paste without reading it back.
    """
    ops = backend.ops()
    count = ops.core.shape(lam)[0]
    k = len(sizes)
    side_seed, place_seed = backend.split(seed)
    place = backend.uniform([count, k], place_seed)
    side = sides
    if minmax is not None:
        side = backend.uniform(
            [count, k], side_seed, minval=minmax[0], maxval=minmax[1]
        )
    inside = minmax is not None
    if backend.name() == "torch" and count == 1:
        if side is None:
            return host_box(sizes, lam, place, inside, k)
        return host_box(sizes, side, place, inside)
    if side is None:
        side = (1.0 - lam) ** (1.0 / k)
    return (*box_bounds(sizes, side, place, inside=inside), None)


def host_box(sizes, side, place, inside, k=None):
    """`draw_boxes`'s one box on PyTorch, on the host: `side` (`[1]`, or
    `[1, k]` with `inside`) and `place` (`[1, k]`) read back as one small
    tensor, then `box_bounds`'s rule in float32 scalars (`_scalar_bounds`:
    the values of its float32 tensor ops, in a few microseconds where a
    dozen small tensor ops take a hundred). With `k` (no `sides`, no
    `minmax`), `side` is lam and the side fraction `(1 - lam) ** (1 /
    k)`.

    Returns:
        `draw_boxes`'s `(lows, highs, kept, slices)`, tensors on `place`'s
        device.
    """
    import torch

    count = place.shape[1]
    values = torch.cat([side.reshape(-1), place.reshape(-1)])
    values = values.numpy(force=True).tolist()
    sides, places = values[:-count], values[-count:]
    if k is not None:
        one = np.float32(1.0)
        sides = [(one - np.float32(sides[0])) ** np.float32(1.0 / k)] * k
    elif not inside:
        sides = sides * count
    lows, highs, kept = _scalar_bounds(sizes, sides, places, inside)
    slices = tuple(map(slice, lows, highs))
    # From NumPy: no torch op on the CPU (torch.tensor runs four).
    tensors = [
        torch.from_numpy(np.array(value, dtype))
        for value, dtype in (([lows], "int32"), ([highs], "int32"))
    ] + [torch.from_numpy(np.array([kept], "float32"))]
    if place.device.type != "cpu":
        tensors = [tensor.to(place.device) for tensor in tensors]
    return (*tensors, slices)


def _scalar_bounds(sizes, sides, places, inside):
    """`box_bounds` for one box in float32 scalars: Python ints `lows`,
    `highs` (one per cut axis) and the float kept fraction."""
    f32 = np.float32
    lows, highs, area, total = [], [], 1, 1
    for size, side, place in zip(sizes, sides, places, strict=True):
        size, place = f32(size), f32(place)
        length = f32(round(f32(side) * size))
        if inside:
            low = math.floor(place * (size - length + f32(1.0)))
            high = low + int(length)
        else:
            start = math.floor(place * size) - math.floor(length / f32(2.0))
            low = min(max(start, 0), int(size))
            high = min(max(start + int(length), 0), int(size))
        lows.append(low)
        highs.append(high)
        area, total = area * (high - low), total * int(size)
    return lows, highs, float(f32(1.0) - f32(area) / f32(total))


def box_bounds(sizes, side, place, *, inside=False):
    """The boxes of `draw_boxes` from their side fractions `side` (float32
    `[n]`, or `[n, k]` with `inside`) and uniform `place` draws `[n, k]`:
    centred at `place * size` and clipped at the border, or with `inside`
    placed inside the image at `place * (size - length + 1)`. One formula
    on every backend and on NumPy arrays; on PyTorch in torch ops (about
    fifteen small ops, eagerly: through Keras's dispatch each would convert
    its arguments).

    Returns:
        `(lows, highs, kept)`, as `draw_boxes`.
    """
    fns = _box_math(_math_kind(place))
    size = fns.sizes(sizes, place)
    if not inside:
        lengths = fns.round(side[:, None] * size)
        start = fns.floor(place * size) - fns.floor(lengths / 2)
        lows = fns.clip(start, size)
        highs = fns.clip(start + lengths, size)
    else:
        lengths = fns.round(side * size)
        lows = fns.floor(place * (size - lengths + 1.0))
        highs = lows + lengths
    area = fns.prod(highs - lows) / fns.prod(size)
    return fns.ints(lows), fns.ints(highs), 1.0 - area


def _math_kind(like):
    """`"numpy"` for a NumPy array, else the backend's name."""
    return "numpy" if isinstance(like, np.ndarray) else backend.name()


@functools.cache
def _box_math(kind):
    """The operations of `box_bounds` (made once per kind): NumPy's, on
    PyTorch torch's own, else the backend namespace's."""
    if kind == "numpy":
        return types.SimpleNamespace(
            sizes=lambda sizes, _: np.array([sizes], "float32"),
            round=np.round,
            floor=np.floor,
            clip=lambda x, size: np.minimum(np.maximum(x, 0.0), size),
            prod=lambda x: np.prod(x, axis=1),
            ints=lambda x: x.astype("int32"),
        )
    if kind == "torch":
        import torch

        return types.SimpleNamespace(
            sizes=lambda sizes, like: torch.tensor(
                [[float(s) for s in sizes]],
                dtype=like.dtype,
                device=like.device,
            ),
            round=torch.round,
            floor=torch.floor,
            clip=lambda x, size: torch.minimum(x.clamp(min=0.0), size),
            prod=lambda x: torch.prod(x, dim=1),
            ints=lambda x: x.int(),
        )
    ops = compat.backend_module(kind)
    numpy, cast = ops.numpy, ops.core.cast

    def stacked(sizes, _):
        return numpy.stack([cast(s, "float32") for s in sizes])[None]

    return types.SimpleNamespace(
        sizes=stacked,
        round=numpy.round,
        floor=numpy.floor,
        clip=lambda x, size: numpy.minimum(numpy.maximum(x, 0.0), size),
        prod=lambda x: numpy.prod(x, axis=1),
        ints=lambda x: cast(x, "int32"),
    )


def merge_trailing(image, rank, axes):
    """`image` with the axes after its last cut axis merged into that axis
    (`[B, H, W, C]` as `[B, H, W * C]`): the box mask then needs no
    broadcast over channels, which XLA runs faster (see the guide
    "Performance").

    Returns:
        `(merged, rank, trailing)`: the merged tensor, its rank, and the
        number of values each position of the last cut axis now spans.
    """
    last = max(axes)
    if last == rank - 1:
        return image, rank, 1
    ops = backend.ops()
    shape = ops.core.shape(image)
    trailing = 1
    for size in shape[last + 1 :]:
        trailing = trailing * size
    # No -1: a batch of 0 examples has no size to infer.
    merged = ops.numpy.reshape(image, [*shape[:last], shape[last] * trailing])
    return merged, last + 1, trailing


def torch_inside_boxes(image, lows, highs, axes):
    """Bool of `image`'s shape (PyTorch, eagerly): whether a position lies
    in its example's box (`lows`, `highs`: int `[B, k]` or `[1, k]` along
    `axes`), as `torch_separable_mask` makes it."""
    import torch

    conditions = []
    for j, axis in enumerate(axes):
        where = torch.arange(image.shape[axis], device=image.device)[None]
        conditions.append(
            (where >= lows[:, j, None]) & (where < highs[:, j, None])
        )
    return torch_separable_mask(image, axes, conditions)


def torch_separable_mask(image, axes, conditions):
    """Bool of `image`'s shape (PyTorch, eagerly): where the condition of
    every cut axis holds (`conditions`: bool `[B, size]` or `[1, size]`
    along each of `axes`). Whole, not broadcast: a `torch.where` that
    broadcasts a mask over the channels runs a slow loop of a few values
    on the CPU. Made as rows of the last cut axis and the axes after it:
    each example's row of that axis's condition, taken (one
    `index_select`) where the other axes' conditions hold, a row of
    `False` elsewhere."""
    import torch

    shape, count = image.shape, conditions[0].shape[0]
    last = max(axes)
    row = conditions[list(axes).index(last)][:, :, None]
    trailing = math.prod(shape[last + 1 :])
    row = row.expand(-1, -1, trailing).reshape(count, -1 if count else 0)
    table = torch.cat([row.new_zeros(1, row.shape[1]), row])
    index = torch.arange(1, count + 1, device=image.device)
    index = index.view(-1, *[1] * (last - 1))
    for axis, condition in zip(axes, conditions, strict=True):
        if axis != last:
            view = [count] + [1] * (last - 1)
            view[axis] = shape[axis]
            index = index * condition.view(view)
    index = index.expand(shape[0], *shape[1:last]).reshape(-1)
    return table.index_select(0, index).view(shape)
