"""CutMix (Yun et al., ICCV 2019): a box of the partner's pixels.

    lam ~ Beta(alpha, alpha)      side fractions (1 - lam) ** (1 / k)

along the k cut axes (k = 2 for images: sqrt(1 - lam), the rule of the
paper, timm and Keras), the box's centre uniform over the image and the
box clipped at the border; or, with `cutmix_minmax=(lo, hi)` (timm's
`cutmix_minmax`), side fractions uniform in [lo, hi] and the box placed
inside the image. Clipping shrinks the pasted area, so the label weight of
each example's own label is the exact fraction of its pixels it keeps
(`correct_lam=True`, timm's `correct_lam`), or the drawn lam.

The paste is one masked select built from index comparisons, which XLA
fuses with the partner gather (one pass over the batch). A box's
complement is not a box, so CutMix has no inputs-only form.
"""

from keras_mixup import backend, blending, boxes, checks, options, spatial
from keras_mixup.variants import base

__all__ = [
    "CutMix",
    "box_bounds",
    "draw_boxes",
    "inside_boxes",
    "merge_trailing",
    "pasted_region",
    "torch_box_bounds",
    "torch_paste",
]


OPTIONS = (
    options.variant_alpha(
        "cutmix",
        "CutMix",
        doc="the Beta concentration of CutMix's lam, or `None` for `alpha`. "
        "With the default `variant`, setting it gives the mixup/CutMix "
        'switch: each batch (or example, in `"elem"` mode) is CutMix '
        "with probability `switch_prob` and mixup otherwise.",
    ),
    options.Option(
        "switch_prob",
        0.5,
        lambda value: checks.check_prob(
            value, "switch_prob", "(the probability of CutMix over mixup)"
        ),
        "with `cutmix_alpha` and the default `variant`, the probability "
        "that a mixed batch (or example) is CutMix rather than mixup, in "
        '[0, 1]: `variant={"mixup": 1 - switch_prob, "cutmix": '
        "switch_prob}`.",
        used=lambda resolved: (
            resolved.options["variant"] == "mixup"
            and resolved.options.get("cutmix_alpha") is not None
        ),
        users="the mixup/CutMix switch (`cutmix_alpha` with the default "
        "`variant`)",
    ),
    options.variant_option(
        "cutmix",
        "cutmix_minmax",
        None,
        lambda value: checks.check_minmax(value, "cutmix_minmax"),
        "`None`, or `(lo, hi)` with 0 < lo <= hi <= 1: CutMix draws the "
        "box's side fractions uniformly in that range, the box inside "
        "the image (timm's `cutmix_minmax`), instead of from lam.",
        to_config=options.as_list,
    ),
    options.variant_option(
        "cutmix",
        "correct_lam",
        True,
        lambda value: checks.check_bool(value, "correct_lam"),
        "`True` weighs a cut example's labels by the exact fraction of "
        "pixels it keeps (after the box is clipped at the border); "
        "`False` by the drawn lam.",
    ),
)


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
        `(lows, highs, kept)`: int32 `[n, k]` box bounds (`highs`
        exclusive) and float32 `[n]`, the fraction of values outside the
        box (what each example keeps).
    """
    ops = backend.ops()
    count = ops.core.shape(lam)[0]
    k = len(sizes)
    side_seed, place_seed = backend.split(seed)
    place = backend.uniform([count, k], place_seed)
    if minmax is None:
        side = ops.numpy.power(1.0 - lam, 1.0 / k) if sides is None else sides
    else:
        side = backend.uniform(
            [count, k], side_seed, minval=minmax[0], maxval=minmax[1]
        )
    bounds = torch_box_bounds if backend.name() == "torch" else box_bounds
    return bounds(sizes, side, place, inside=minmax is not None)


def box_bounds(sizes, side, place, *, inside=False):
    """The boxes of `draw_boxes` from their side fractions `side` (float32
    `[n]`, or `[n, k]` with `inside`) and uniform `place` draws `[n, k]`:
    centred at `place * size` and clipped at the border, or with `inside`
    placed inside the image at `place * (size - length + 1)`.

    Returns:
        `(lows, highs, kept)`, as `draw_boxes`.
    """
    ops = backend.ops()
    np = ops.numpy
    size = np.stack([ops.core.cast(s, "float32") for s in sizes])[None]
    if not inside:
        side = side[:, None] * np.ones([1, len(sizes)])
        lengths = np.round(side * size)
        start = np.floor(place * size) - np.floor(lengths / 2)
        lows = np.minimum(np.maximum(start, 0.0), size)
        highs = np.minimum(np.maximum(start + lengths, 0.0), size)
    else:
        lengths = np.round(side * size)
        lows = np.floor(place * (size - lengths + 1.0))
        highs = lows + lengths
    area = np.prod(highs - lows, axis=1) / np.prod(size)
    cast = ops.core.cast
    return cast(lows, "int32"), cast(highs, "int32"), 1.0 - area


def torch_box_bounds(sizes, side, place, *, inside=False):
    """`box_bounds` in torch ops, eagerly (about ten small ops; through
    Keras's dispatch each would convert its arguments first)."""
    import torch

    size = torch.tensor(
        [[float(s) for s in sizes]], dtype=place.dtype, device=place.device
    )
    if not inside:
        lengths = torch.round(side[:, None] * size)
        start = torch.floor(place * size) - torch.floor(lengths / 2)
        lows = torch.minimum(start.clamp(min=0.0), size)
        highs = torch.minimum((start + lengths).clamp(min=0.0), size)
    else:
        lengths = torch.round(side * size)
        lows = torch.floor(place * (size - lengths + 1.0))
        highs = lows + lengths
    area = torch.prod(highs - lows, dim=1) / torch.prod(size)
    return lows.int(), highs.int(), 1.0 - area


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


def inside_boxes(image, lows, highs, rank, axes, trailing=1):
    """Bool, broadcastable to `image`: whether a position lies in its
    example's box (`lows`, `highs`: int32 `[B, k]` or `[1, k]`)."""
    np = backend.ops().numpy
    shape = backend.ops().core.shape(image)
    inside = None
    for j, axis in enumerate(axes):
        where = spatial.positions(shape[axis], axis, rank)
        if axis == max(axes) and trailing != 1:
            where = where // trailing
        low = spatial.per_example(lows[:, j], rank)
        high = spatial.per_example(highs[:, j], rank)
        along = np.logical_and(where >= low, where < high)
        inside = along if inside is None else np.logical_and(inside, along)
    return inside


class CutMix(base.Variant):
    """A box of the partner's pixels pasted into each example."""

    name = "cutmix"
    options = OPTIONS
    alpha_option = "cutmix_alpha"
    spatial = True
    keeps_values = True
    inputs_only_form = False
    takes = frozenset(base.TARGETS)
    needs_box_format = True
    needs_labels_reason = (
        "The inputs-only form (lam ~ Beta(alpha + 1, alpha), labels kept) "
        "is mixup in expectation because a blend is symmetric under "
        "swapping the two examples; a CutMix box's complement is not a "
        "box, so CutMix has no inputs-only form and must weigh the labels "
        "by the pixels kept."
    )

    def draw(self, context):
        np = backend.ops().numpy
        lam = context.lam(self.alpha)
        minmax = self.config["cutmix_minmax"]
        lows, highs, kept = draw_boxes(
            context.image_sizes(),
            np.reshape(lam, [-1]),
            context.seed(0),
            minmax=minmax,
        )
        if self.config["correct_lam"] or minmax:
            lam = np.reshape(kept, context.shape)
        params = {"lows": lows, "highs": highs}
        return base.Draw(lam, None, params)

    def apply_image(self, draw, image, rank, axes, *, kind="inputs"):
        if backend.name() == "torch":
            return torch_paste(
                image,
                draw.partner_index,
                draw.params["lows"],
                draw.params["highs"],
                axes,
            )
        ops = backend.ops()
        merged, merged_rank, trailing = merge_trailing(image, rank, axes)
        partner = ops.numpy.take(merged, draw.partner_index, axis=0)
        inside = inside_boxes(
            merged,
            draw.params["lows"],
            draw.params["highs"],
            merged_rank,
            axes,
            trailing,
        )
        pasted = ops.numpy.where(inside, partner, merged)
        return ops.numpy.reshape(pasted, ops.core.shape(image))

    def apply_boxes(self, draw, bounding_boxes, sizes):
        region = pasted_region(draw.params["lows"], draw.params["highs"])
        return boxes.paste_boxes(
            bounding_boxes,
            draw.partner_index,
            region,
            sizes,
            options=self.config,
        )


def torch_paste(image, partner_index, lows, highs, axes):
    """The paste on PyTorch, eagerly: with one box for the batch (`lows`
    `[1, k]`), the image copied and the partners' box copied into it (one
    pass over the batch, one read of the box to the host); with a box per
    example, one `torch.where` of the gathered partners on a box mask of
    `[B, H, W, 1]`, broadcast over the channels (two passes)."""
    import torch

    image = blending.as_tensor(image)
    rank = image.ndim
    if lows.shape[0] == 1 and image.shape[0] != 1:
        bounds = torch.cat([lows[0], highs[0]]).tolist()
        box = [slice(None)] * rank
        for j, axis in enumerate(axes):
            box[axis] = slice(bounds[j], bounds[len(axes) + j])
        pasted = image.clone()
        pasted[tuple(box)] = image[tuple(box)].index_select(0, partner_index)
        return pasted
    inside = None
    for j, axis in enumerate(axes):
        shape = [1] * rank
        shape[axis] = image.shape[axis]
        where = torch.arange(image.shape[axis], device=image.device)
        where = where.view(shape)
        low = lows[:, j].view(-1, *[1] * (rank - 1))
        high = highs[:, j].view(-1, *[1] * (rank - 1))
        along = (where >= low) & (where < high)
        inside = along if inside is None else inside & along
    return torch.where(inside, image.index_select(0, partner_index), image)


def pasted_region(lows, highs, owner="CutMix"):
    """Each example's pasted box `[B, 1, 4]` as absolute xyxy (the cut axes
    being height and width)."""
    if lows.shape[1] != 2:
        raise ValueError(
            f"{owner} moves detection boxes only when it cuts two axes "
            f"(height and width); it cuts {lows.shape[1]} here (`axes`)."
        )
    ops = backend.ops()
    lows = ops.core.cast(lows, "float32")
    highs = ops.core.cast(highs, "float32")
    region = ops.numpy.stack(
        [lows[:, 1], lows[:, 0], highs[:, 1], highs[:, 0]], axis=-1
    )
    return region[:, None, :]
