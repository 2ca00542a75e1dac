"""Mosaic (Bochkovskiy et al., YOLOv4, arXiv:2004.10934): four examples
tiled around a centre.

Each output is four sources, the example itself and three partners, one
per quadrant around a centre `(cy, cx)` drawn uniformly in `center` (a
fraction of each side, rounded to a pixel): the example top left, its
partners top right, bottom left and bottom right. Each tile is an
integer-pixel crop of its source at the input's size, the corner of the
source that meets the centre (as YOLOv4 places its four images, without
the rescaling): output pixel `(y, x)` of a tile reads its source at
`((y - cy) mod H, (x - cx) mod W)`. No value is resampled, so the label
weights are the four tiles' exact areas. The three partners are three
draws of the pairing (three random permutations by default; with
`"same_class"`, three partners of the example's class). An example whose
partners are all itself (a batch of one, an unmixed batch) comes back as
it is.

The whole mosaic is one gather built from index arithmetic (one pass over
the batch); masks tile with the pixels; boxes are moved into their tile,
clipped to it and dropped under `min_box_visibility`.
"""

from keras_mixup import backend, boxes, options, spatial
from keras_mixup.variants import base

__all__ = ["Mosaic"]

OPTIONS = (
    options.variant_range(
        "mosaic",
        "mosaic_center",
        (0.25, 0.75),
        "the range of the mosaic's centre, a fraction of each side",
        "`(lo, hi)` with 0 < lo <= hi <= 1: Mosaic's centre is drawn "
        "uniformly in that fraction of each side.",
    ),
)


def _sources(partner_index):
    """int32 `[B, 4]`: the example itself, then its three partners."""
    np = backend.ops().numpy
    size = backend.ops().core.shape(partner_index)[0]
    itself = np.arange(size, dtype="int32")[:, None]
    return np.concatenate([itself, partner_index], axis=1)


def _centre(draw, sizes):
    """`(cy, cx)`, int32 `[B]` (or scalars): the drawn centre, or `(H, W)`
    for an example whose partners are all itself (its tile is then the
    whole image, read in place)."""
    np = backend.ops().numpy
    centre = draw.params["centre"]
    sources = _sources(draw.partner_index)
    alone = np.all(np.equal(sources[:, 1:], sources[:, :1]), axis=1)
    return tuple(
        np.where(alone, size, centre[..., j]) for j, size in enumerate(sizes)
    )


class Mosaic(base.Variant):
    """The example and three partners tiled around a centre."""

    name = "mosaic"
    cut_axes = 2
    options = OPTIONS
    spatial = True
    keeps_values = True
    inputs_only_form = False
    takes = frozenset(base.TARGETS)
    needs_box_format = True
    sources = 4
    needs_labels_reason = (
        "Mosaic tiles four examples, and no swap of them leaves the tiling "
        "unchanged, so it has no inputs-only form and must weigh the "
        "labels by the tiles' areas."
    )

    def draw(self, context):
        ops = backend.ops()
        np = ops.numpy
        sizes = self.check_cut_axes(context.image_sizes())
        low, high = self.config["mosaic_center"]
        where = backend.uniform(
            [*context.shape, 2], context.seed(0), minval=low, maxval=high
        )
        size = np.stack([ops.core.cast(s, "float32") for s in sizes])
        centre = np.round(where * size)
        cy, cx = centre[..., 0], centre[..., 1]
        height, width = size[0], size[1]
        weights = np.stack(
            [
                cy * cx,
                cy * (width - cx),
                (height - cy) * cx,
                (height - cy) * (width - cx),
            ],
            axis=-1,
        ) / (height * width)
        params = {"centre": ops.core.cast(centre, "int32"), "weights": weights}
        return base.Draw(weights[..., 0], None, params)

    def source_weights(self, draw):
        np = backend.ops().numpy
        indices = _sources(draw.partner_index)
        weights = draw.params["weights"]
        if backend.rank(weights) == 1:  # one centre for the batch
            weights = weights[None] * np.ones_like(indices, dtype="float32")
        return indices, weights

    def apply_image(self, draw, image, rank, axes, *, kind="inputs"):
        np = backend.ops().numpy
        sizes = spatial.sizes(image, axes)
        self.check_cut_axes(sizes)
        last = max(axes) + 1
        cy, cx = (spatial.per_example(c, last) for c in _centre(draw, sizes))
        y = spatial.positions(sizes[0], axes[0], last)
        x = spatial.positions(sizes[1], axes[1], last)
        top, left = y < cy, x < cx
        sources = _sources(draw.partner_index)
        tile = [spatial.per_example(sources[:, t], last) for t in range(4)]
        source = np.where(
            top,
            np.where(left, tile[0], tile[1]),
            np.where(left, tile[2], tile[3]),
        )
        along_y = y - cy + np.where(top, sizes[0], 0)
        along_x = x - cx + np.where(left, sizes[1], 0)
        return spatial.gather_positions(image, axes, source, [along_y, along_x])

    def apply_boxes(self, draw, bounding_boxes, sizes):
        return _tile_boxes(self.config, draw, bounding_boxes, sizes)


def _tile_boxes(config, draw, bounding_boxes, sizes):
    """Each source's boxes moved into its tile and clipped to it; a box
    keeping less than `min_box_visibility` of its area (or none) is
    dropped. Returns `[B, 4N]` boxes, labels and weights (1 for a kept
    box)."""
    box_format = boxes.require_format(config)
    ops = backend.ops()
    np = ops.numpy
    cast = ops.core.cast
    height, width = (cast(s, "float32") for s in sizes)
    cy, cx = (cast(c, "float32") for c in _centre(draw, sizes))
    cy, cx = np.reshape(cy, [-1, 1]), np.reshape(cx, [-1, 1])
    zero = np.zeros_like(cy)
    own = ops.core.convert_to_tensor(bounding_boxes["boxes"])
    own_labels = ops.core.convert_to_tensor(bounding_boxes["labels"])
    indices = _sources(draw.partner_index)
    found = {"boxes": [], "labels": [], "weights": []}
    for t in range(4):
        top, left = t < 2, t % 2 == 0
        shift_x = cx - width if left else cx
        shift_y = cy - height if top else cy
        region = [
            zero if left else cx,
            zero if top else cy,
            cx if left else zero + width,
            cy if top else zero + height,
        ]
        source = np.take(own, indices[:, t], axis=0)
        labels = np.take(own_labels, indices[:, t], axis=0)
        xyxy = boxes.to_xyxy(cast(source, "float32"), box_format, height, width)
        shift = np.stack([shift_x, shift_y, shift_x, shift_y], axis=-1)
        clipped, seen = boxes.clip(xyxy + shift, np.stack(region, axis=-1))
        keep = (seen >= config["min_box_visibility"]) & (seen > 0)
        moved = cast(
            boxes.from_xyxy(clipped, box_format, height, width),
            backend.dtype_name(own),
        )
        if t == 0:  # an example alone keeps its boxes as they are
            alone = np.equal(cy, height) & np.equal(cx, width)
            moved = np.where(alone[..., None], source, moved)
            keep = np.where(alone, True, keep)
        keep = keep & (labels >= 0)
        found["boxes"].append(
            np.where(keep[..., None], moved, np.full_like(moved, -1))
        )
        found["labels"].append(np.where(keep, labels, np.full_like(labels, -1)))
        found["weights"].append(cast(keep, "float32"))
    return {
        key: np.concatenate(values, axis=1) for key, values in found.items()
    }
