"""Detection boxes (keras's `bounding_boxes`) through the mixing family.

keras's element holds `{"boxes": [B, N, 4], "labels": [B, N]}`, padded with
-1 (a box whose label is negative is padding), in a named
`bounding_box_format`. Mixed, each example gets its own boxes followed by
its partner's, `[B, 2N]`, and a documented key `"weights"` `[B, 2N]` that a
detection loss can use:

- a blend (mixup; Zhang et al. 2019, arXiv:1902.04103): every box is kept,
  its own boxes weighed lam and its partner's 1 - lam (`blend_boxes`);
- a paste (a cutting variant): the partner's boxes are clipped to the
  pasted region;
  the example's own boxes keep their visible part (trimmed where the paste
  covers a whole side, so the box stays the bounding box of what is
  visible); a box left with less than `min_box_visibility` of its area is
  dropped (padded with -1, weight 0); kept boxes weigh 1, since their pixels
  are the object's own (`paste_boxes`).

An example that is not mixed keeps its boxes with weight 1 and gets no
partner boxes (padding). Written against the backend namespace: it runs in
`tf.data` and in a model on every backend.
"""

from keras_mixup import backend

__all__ = [
    "FORMATS",
    "blend_boxes",
    "clip",
    "from_xyxy",
    "paste_boxes",
    "paste_into_box",
    "pasted_region",
    "require_format",
    "to_xyxy",
]

#: The box formats understood (keras's names); `rel_` ones are fractions
#: of the image's width and height.
FORMATS = tuple(
    prefix + name
    for prefix in ("", "rel_")
    for name in ("xyxy", "yxyx", "xywh", "center_xywh", "center_yxhw")
)


def _unstack(boxes):
    return [boxes[..., i] for i in range(4)]


def to_xyxy(boxes, box_format, height, width):
    """Boxes `[..., 4]` in `box_format` as absolute `(x0, y0, x1, y1)`."""
    a, b, c, d = _unstack(boxes)
    name = box_format.removeprefix("rel_")
    corners = {
        "xyxy": lambda: (a, b, c, d),
        "yxyx": lambda: (b, a, d, c),
        "xywh": lambda: (a, b, a + c, b + d),
        "center_xywh": lambda: (a - c / 2, b - d / 2, a + c / 2, b + d / 2),
        "center_yxhw": lambda: (b - d / 2, a - c / 2, b + d / 2, a + c / 2),
    }[name]()
    if box_format.startswith("rel_"):
        scale = (width, height, width, height)
        corners = [v * s for v, s in zip(corners, scale, strict=True)]
    return backend.ops().numpy.stack(corners, axis=-1)


def from_xyxy(boxes, box_format, height, width):
    """Absolute `(x0, y0, x1, y1)` boxes `[..., 4]` in `box_format`."""
    x0, y0, x1, y1 = _unstack(boxes)
    if box_format.startswith("rel_"):
        x0, x1, y0, y1 = x0 / width, x1 / width, y0 / height, y1 / height
    w, h = x1 - x0, y1 - y0
    values = {
        "xyxy": lambda: (x0, y0, x1, y1),
        "yxyx": lambda: (y0, x0, y1, x1),
        "xywh": lambda: (x0, y0, w, h),
        "center_xywh": lambda: (x0 + w / 2, y0 + h / 2, w, h),
        "center_yxhw": lambda: (y0 + h / 2, x0 + w / 2, h, w),
    }[box_format.removeprefix("rel_")]()
    return backend.ops().numpy.stack(values, axis=-1)


def _area(box):
    np = backend.ops().numpy
    x0, y0, x1, y1 = _unstack(box)
    return np.maximum(x1 - x0, 0.0) * np.maximum(y1 - y0, 0.0)


def _divide_no_nan(a, b):
    np = backend.ops().numpy
    safe = np.where(b == 0, np.ones_like(b), b)
    return np.where(b == 0, np.zeros_like(a), a / safe)


def _visible_part(box, region):
    """The bounding box of `box` minus `region` (both `[..., 4]` xyxy),
    and the fraction of `box`'s area outside `region`."""
    np = backend.ops().numpy
    bx0, by0, bx1, by1 = _unstack(box)
    rx0, ry0, rx1, ry1 = _unstack(region)
    overlap = _area(
        np.stack(
            [
                np.maximum(bx0, rx0),
                np.maximum(by0, ry0),
                np.minimum(bx1, rx1),
                np.minimum(by1, ry1),
            ],
            -1,
        )
    )
    area = _area(box)
    visible = _divide_no_nan(area - overlap, area)
    # A side is trimmed where the region spans the box across it.
    spans_y = np.logical_and(ry0 <= by0, ry1 >= by1)
    spans_x = np.logical_and(rx0 <= bx0, rx1 >= bx1)
    trimmed = [
        np.where(spans_y & (rx0 <= bx0), np.maximum(bx0, rx1), bx0),
        np.where(spans_x & (ry0 <= by0), np.maximum(by0, ry1), by0),
        np.where(spans_y & (rx1 >= bx1), np.minimum(bx1, rx0), bx1),
        np.where(spans_x & (ry1 >= by1), np.minimum(by1, ry0), by1),
    ]
    return np.stack(trimmed, axis=-1), visible


def clip(box, region):
    """`box` clipped to `region`, and the fraction of its area kept."""
    np = backend.ops().numpy
    clipped = np.concatenate(
        [
            np.maximum(box[..., :2], region[..., :2]),
            np.minimum(box[..., 2:], region[..., 2:]),
        ],
        axis=-1,
    )
    return clipped, _divide_no_nan(_area(clipped), _area(box))


def _pair(bounding_boxes, partner_index):
    """Each example's boxes and labels, its partner's, and whether it has a
    partner other than itself (`moved`, `[B, 1]`)."""
    ops = backend.ops()
    np = ops.numpy
    own = ops.core.convert_to_tensor(bounding_boxes["boxes"])
    own_labels = ops.core.convert_to_tensor(bounding_boxes["labels"])
    size = ops.core.shape(partner_index)[0]
    partner = np.take(own, partner_index, axis=0)
    partner_labels = np.take(own_labels, partner_index, axis=0)
    moved = np.not_equal(partner_index, np.arange(size, dtype="int32"))
    return own, own_labels, partner, partner_labels, moved[:, None]


def _lam_rows(lam, like):
    """lam `[B]` or `[]` as float32 `[B, N]`, like the box labels."""
    ops = backend.ops()
    lam = ops.numpy.reshape(ops.core.cast(lam, "float32"), [-1, 1])
    return lam * ops.numpy.ones(ops.core.shape(like), dtype="float32")


def _concat(pairs, weights, moved):
    """The mixed dict from `(own, partner)` boxes and labels and their
    weights; partner boxes of unmoved examples, padding and dropped boxes
    (weight 0) become -1."""
    np = backend.ops().numpy
    (own, partner), (own_labels, partner_labels) = pairs
    own_weight, partner_weight = weights
    partner_weight = np.where(moved, partner_weight, 0.0)
    keep = np.concatenate([own_weight > 0, partner_weight > 0], axis=1)
    keep = np.logical_and(
        keep, np.concatenate([own_labels >= 0, partner_labels >= 0], axis=1)
    )
    boxes = np.concatenate([own, partner], axis=1)
    labels = np.concatenate([own_labels, partner_labels], axis=1)
    weights = np.concatenate([own_weight, partner_weight], axis=1)
    return {
        "boxes": np.where(keep[..., None], boxes, np.full_like(boxes, -1)),
        "labels": np.where(keep, labels, np.full_like(labels, -1)),
        "weights": np.where(keep, weights, 0.0),
    }


def blend_boxes(bounding_boxes, lam, partner_index):
    """The boxes of a blend: every box kept, the example's own weighed
    lam, its partner's 1 - lam.

    Returns:
        `{"boxes": [B, 2N, 4], "labels": [B, 2N], "weights": [B, 2N]}`.
    """
    own, own_labels, partner, partner_labels, moved = _pair(
        bounding_boxes, partner_index
    )
    lam = _lam_rows(lam, own_labels)
    own_weight = backend.ops().numpy.where(moved, lam, 1.0)
    return _concat(
        ((own, partner), (own_labels, partner_labels)),
        (own_weight, 1.0 - lam),
        moved,
    )


def _fit(box, region, width, height):
    """Boxes `[B, N, 4]` xyxy of a whole image scaled and moved into
    `region` (`[B, 1, 4]`), as the image is resized into it."""
    np = backend.ops().numpy
    low = np.concatenate([region[..., :2], region[..., :2]], axis=-1)
    extent = region[..., 2:] - region[..., :2]
    scale = extent / np.stack([width, height])
    return low + box * np.concatenate([scale, scale], axis=-1)


def require_format(options):
    """The `bounding_box_format` of `options`.

    Raises:
        ValueError: if it is `None`.
    """
    box_format = options["bounding_box_format"]
    if box_format is None:
        raise ValueError(
            "A cutting variant moves the `bounding_boxes` of the element, so "
            f"it needs their format: pass `bounding_box_format` (one of "
            f"{FORMATS})."
        )
    return box_format


def paste_boxes(
    bounding_boxes,
    partner_index,
    region,
    sizes,
    *,
    options,
    fit_partner=False,
):
    """The boxes of a paste of the partner's pixels in `region`.

    Args:
        bounding_boxes: `{"boxes": [B, N, 4], "labels": [B, N]}`.
        partner_index: int32 `[B]`.
        region: float32 `[B, 1, 4]` (or `[1, 1, 4]`): each example's pasted
            region, absolute xyxy.
        sizes: `(height, width)` of the images.
        options: the engine's options (`bounding_box_format`,
            `min_box_visibility`).
        fit_partner: `True` when the whole partner is resized into the
            region (ResizeMix): its boxes are scaled and moved into it.
            Defaults to `False`: the partner's pixels are pasted in place
            and its boxes clipped to the region.

    Returns:
        As `blend_boxes`.

    Raises:
        ValueError: without `bounding_box_format`.
    """
    box_format = require_format(options)
    ops = backend.ops()
    np = ops.numpy
    own, own_labels, partner, partner_labels, moved = _pair(
        bounding_boxes, partner_index
    )
    height, width = (ops.core.cast(s, "float32") for s in sizes)
    dtype = backend.dtype_name(own)
    floats = [ops.core.cast(b, "float32") for b in (own, partner)]
    own_xyxy, partner_xyxy = (
        to_xyxy(b, box_format, height, width) for b in floats
    )
    own_cut, own_seen = _visible_part(own_xyxy, region)
    if fit_partner:  # the whole partner resized into the region
        partner_xyxy = _fit(partner_xyxy, region, width, height)
    partner_cut, partner_seen = clip(partner_xyxy, region)
    moved_rows = np.broadcast_to(moved, ops.core.shape(own_seen))
    new = [
        ops.core.cast(from_xyxy(b, box_format, height, width), dtype)
        for b in (own_cut, partner_cut)
    ]
    own = np.where(moved_rows[..., None], new[0], own)
    partner = np.where(moved_rows[..., None], new[1], partner)
    least = options["min_box_visibility"]
    kept = [
        ops.core.cast(seen >= least, "float32")
        for seen in (own_seen, partner_seen)
    ]
    own_weight = np.where(moved_rows, kept[0], 1.0)
    return _concat(
        ((own, partner), (own_labels, partner_labels)),
        (own_weight, kept[1]),
        moved,
    )


def pasted_region(lows, highs, owner):
    """Each example's pasted box `[B, 1, 4]` as absolute xyxy (the cut axes
    being height and width), from the int32 bounds `[B, 2]` of
    `keras_mixup.spatial.draw_boxes`; `owner` names the variant in the
    error.

    Raises:
        ValueError: for bounds of other than two cut axes.
    """
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


def paste_into_box(draw, bounding_boxes, sizes, *, options, owner, **how):
    """`paste_boxes` for a variant that pastes into one box per example:
    the box of `draw.params["lows"]` and `["highs"]` (as `pasted_region`
    takes them), the partners of `draw.partner_index`; `how` as
    `paste_boxes` takes it (`fit_partner`)."""
    lows, highs = draw.params["lows"], draw.params["highs"]
    region = pasted_region(lows, highs, owner)
    return paste_boxes(
        bounding_boxes,
        draw.partner_index,
        region,
        sizes,
        options=options,
        **how,
    )
