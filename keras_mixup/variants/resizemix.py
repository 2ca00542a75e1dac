"""ResizeMix (Qin et al., arXiv:2012.11101): the whole partner, resized
into a box of the example.

    tau ~ U(scale)      box sides round(tau * H), round(tau * W)

the box's centre uniform over the image and the box clipped at the border
(`keras_mixup.spatial.draw_boxes`); the whole partner is resized to the clipped
box and pasted there, so the label weight of each example's own label is
the exact fraction of its pixels outside the box. tau is drawn per example
(`mode="elem"`) or per batch.

The resizing is one batched gather built from index arithmetic (boxes of
different sizes in one pass): bilinear with half-pixel centres and no
antialiasing for images, which is `keras.ops.image.resize(partner, (h,
w), interpolation="bilinear", antialias=False)` (MMPretrain's default
interpolation; OpenMixup's is nearest), and nearest neighbour with
half-pixel centres for segmentation masks, which stay integer. The
partner's boxes are scaled and moved into the box; the example's own boxes
are trimmed as under any paste (`keras_mixup.boxes.paste_boxes`).
"""

import math

from keras_mixup import backend, boxes, checks, options, spatial
from keras_mixup.variants import base

__all__ = ["ResizeMix"]

OPTIONS = (
    options.variant_range(
        "resizemix",
        "resizemix_scale",
        (0.1, 0.8),
        "the range of the pasted box's side fraction tau",
        "`(lo, hi)` with 0 < lo <= hi <= 1: ResizeMix draws the side "
        "fraction tau of the box the partner is resized into uniformly "
        "in that range.",
    ),
)


def _box(draw, rank, axes):
    """Per cut axis: `(low, length)` of the box, shaped to broadcast
    against the positions of a rank-`rank` index tensor."""
    found = []
    for j in range(len(axes)):
        low = spatial.per_example(draw.params["lows"][:, j], rank)
        high = spatial.per_example(draw.params["highs"][:, j], rank)
        found.append((low, high - low))
    return found


def _source_positions(where, low, length, size, *, nearest):
    """Where a position of the box reads the partner, resized from `size`
    to `length` with half-pixel centres: `(lower, upper, fraction)` for
    bilinear, `(index, None, None)` for nearest neighbour; clamped into
    `[0, size)` (positions outside the box read something, unused)."""
    ops = backend.ops()
    np = ops.numpy
    cast = ops.core.cast
    scale = cast(size, "float32") / cast(np.maximum(length, 1), "float32")
    offset = cast(where - low, "float32") + 0.5
    top = cast(size, "int32") - 1
    if nearest:
        index = cast(np.floor(offset * scale), "int32")
        return np.clip(index, 0, top), None, None
    at = np.clip(offset * scale - 0.5, 0.0, cast(top, "float32"))
    lower = np.floor(at)
    fraction = at - lower
    lower = cast(lower, "int32")
    return lower, np.minimum(lower + 1, top), fraction


def _trailing(value, rank, last):
    """`value`, of rank `last`, with `rank - last` axes of size 1 added."""
    np = backend.ops().numpy
    for _ in range(rank - last):
        value = np.expand_dims(value, -1)
    return value


class ResizeMix(base.Variant):
    """The whole partner resized into a box of each example."""

    name = "resizemix"
    cut_axes = 2
    options = OPTIONS
    spatial = True
    keeps_values = False
    inputs_only_form = False
    takes = frozenset(base.TARGETS)
    needs_box_format = True
    needs_labels_reason = (
        "ResizeMix pastes the whole partner, shrunk, into the example; "
        "swapping the two gives another image, so ResizeMix has no "
        "inputs-only form and must weigh the labels by the pixels kept."
    )

    @property
    def keeps_mask_values(self):
        return True  # masks are resized by nearest neighbour

    def draw(self, context):
        np = backend.ops().numpy
        sizes = self.check_cut_axes(context.image_sizes())
        low, high = self.config["resizemix_scale"]
        count = context.batch_size if context.per_example else 1
        tau = backend.uniform([count], context.seed(0), minval=low, maxval=high)
        lows, highs, kept, _ = spatial.draw_boxes(
            sizes, tau, context.seed(1), sides=tau
        )
        params = {"lows": lows, "highs": highs, "tau": tau}
        return base.Draw(np.reshape(kept, context.shape), None, params)

    def apply_image(self, draw, image, rank, axes, *, kind="inputs"):
        if backend.name() == "torch":
            nearest = kind == "segmentation_masks"
            return _torch_paste(draw, image, axes, nearest=nearest)
        ops = backend.ops()
        np = ops.numpy
        sizes = spatial.sizes(image, axes)
        last = max(axes) + 1
        box = _box(draw, last, axes)
        inside = None
        reads = []
        for j, axis in enumerate(axes):
            where = spatial.positions(sizes[j], axis, last)
            low, length = box[j]
            along = (where >= low) & (where < low + length)
            inside = along if inside is None else inside & along
            reads.append(
                _source_positions(
                    where,
                    low,
                    length,
                    sizes[j],
                    nearest=kind == "segmentation_masks",
                )
            )
        source = spatial.per_example(draw.partner_index, last)
        (y0, y1, fy), (x0, x1, fx) = reads
        if fy is None:
            resized = spatial.gather_positions(image, axes, source, [y0, x0])
        else:
            resized = _bilinear(image, axes, source, reads, rank, last)
        inside = _trailing(inside, rank, last)
        return np.where(inside, resized, image)

    def apply_boxes(self, draw, bounding_boxes, sizes):
        return boxes.paste_into_box(
            draw,
            bounding_boxes,
            sizes,
            options=self.config,
            owner="ResizeMix",
            fit_partner=True,
        )


def _bilinear(image, axes, source, reads, rank, last):
    """The partner read at fractional positions: the four neighbours'
    gathers weighed by the fractions (in float32 for half precision)."""
    ops = backend.ops()
    (y0, y1, fy), (x0, x1, fx) = reads
    dtype = backend.dtype_name(image)
    wide = "float32" if dtype in ("float16", "bfloat16") else dtype

    def read(y, x):
        taken = spatial.gather_positions(image, axes, source, [y, x])
        return ops.core.cast(taken, wide)

    fy = ops.core.cast(_trailing(fy, rank, last), wide)
    fx = ops.core.cast(_trailing(fx, rank, last), wide)
    corner = read(y0, x0)
    upper = corner + fx * (read(y0, x1) - corner)
    corner = read(y1, x0)
    lower = corner + fx * (read(y1, x1) - corner)
    return ops.core.cast(upper + fy * (lower - upper), dtype)


def _torch_paste(draw, image, axes, *, nearest):
    """The paste on PyTorch, eagerly: the partners resized one cut axis at
    a time, the last first (for bilinear two gathers along the axis and
    one interpolation, the sums of `_bilinear` in its order, so the same
    values), then one `torch.where` on the box. The positions are small
    `[B, size]` tensors, not index tensors of the image's size; the first
    gathers read the partners in the image itself, and the interpolation
    runs in place: few new tensors of the image's size (on the CPU, each
    a fresh mapping of memory, its pages faulted in one by one)."""
    import torch

    image = checks.to_tensor(image)
    wide = not nearest and image.dtype in (torch.float16, torch.bfloat16)
    lows, highs = draw.params["lows"], draw.params["highs"]
    resized, examples = image, draw.partner_index
    for j in reversed(range(len(axes))):
        shape = [1] * image.ndim
        shape[0], shape[axes[j]] = -1, image.shape[axes[j]]
        where = torch.arange(shape[axes[j]], device=image.device)[None]
        low = lows[:, j : j + 1]
        length = highs[:, j : j + 1] - low
        lower, upper, fraction = _source_positions(
            where, low, length, shape[axes[j]], nearest=nearest
        )

        def read(index, axis=axes[j], source=resized, examples=examples):
            taken = _rows_along(source, axis, index, examples)
            return taken.float() if wide else taken

        resized, examples = read(lower), None
        if upper is not None:
            fraction = fraction.view(shape).to(resized.dtype)
            if axes[j] == max(axes):  # whole channels: a long inner loop
                fraction = fraction.expand(
                    *shape[: axes[j] + 1], *image.shape[axes[j] + 1 :]
                ).contiguous()
            resized.add_(read(upper).sub_(resized).mul_(fraction))
    inside = spatial.torch_inside_boxes(image, lows, highs, axes)
    return torch.where(inside, resized.to(image.dtype), image)


def _rows_along(tensor, axis, index, examples=None):
    """`tensor` (PyTorch) read along `axis` at each example's positions
    `index` (int `[B, size]`), of example `examples` (int `[B]`; default
    its own): one `index_select` of the rows of the values after `axis`
    (faster on the CPU than `torch.gather`)."""
    import torch

    shape = tensor.shape
    outer = math.prod(shape[:axis])
    size = shape[axis]
    each = [index.shape[0], *[1] * (axis - 1), size]
    index = index.view(each).expand(*shape[:axis], size).reshape(outer, size)
    start = torch.arange(outer, device=tensor.device)
    if examples is not None:  # the rows of each example's partner
        per = math.prod(shape[1:axis])
        start = start[:per][None] + examples.to(start.dtype)[:, None] * per
    rows = tensor.reshape(outer * size, math.prod(shape[axis + 1 :]))
    index = index + start.view(-1, 1) * size
    return rows.index_select(0, index.view(-1)).view(shape)
