"""Detection boxes (keras's `bounding_boxes`) through mixup and CutMix.

keras's element holds `{"boxes": [B, N, 4], "labels": [B, N]}`, padded with
-1 (a box whose label is negative is padding), in a named
`bounding_box_format`. Mixed, each example gets its own boxes followed by
its partner's, `[B, 2N]`, and a documented key `"weights"` `[B, 2N]` that a
detection loss can use:

- mixup (Zhang et al. 2019, arXiv:1902.04103): every box is kept, its own
  boxes weighed lam and its partner's 1 - lam;
- CutMix: the partner's boxes are clipped to the pasted region; the
  example's own boxes keep their visible part (trimmed where the paste
  covers a whole side, so the box stays the bounding box of what is
  visible); a box left with less than `min_box_visibility` of its area is
  dropped (padded with -1, weight 0); kept boxes weigh 1, since their pixels
  are the object's own.

An example that is not mixed keeps its boxes with weight 1 and gets no
partner boxes (padding).
"""

from keras_mixup import cutmix
from keras_mixup.backend import tf

__all__ = ["FORMATS", "from_xyxy", "mix_boxes", "to_xyxy"]

#: The box formats understood (keras's names); `rel_` ones are fractions
#: of the image's width and height.
FORMATS = tuple(
    prefix + name
    for prefix in ("", "rel_")
    for name in ("xyxy", "yxyx", "xywh", "center_xywh", "center_yxhw")
)


def to_xyxy(boxes, box_format, height, width):
    """Boxes `[..., 4]` in `box_format` as absolute `(x0, y0, x1, y1)`."""
    a, b, c, d = tf.unstack(boxes, axis=-1)
    name = box_format.removeprefix("rel_")
    corners = {
        "xyxy": (a, b, c, d),
        "yxyx": (b, a, d, c),
        "xywh": (a, b, a + c, b + d),
        "center_xywh": (a - c / 2, b - d / 2, a + c / 2, b + d / 2),
        "center_yxhw": (b - d / 2, a - c / 2, b + d / 2, a + c / 2),
    }[name]
    if box_format.startswith("rel_"):
        scale = (width, height, width, height)
        corners = [v * s for v, s in zip(corners, scale, strict=True)]
    return tf.stack(corners, axis=-1)


def from_xyxy(boxes, box_format, height, width):
    """Absolute `(x0, y0, x1, y1)` boxes `[..., 4]` in `box_format`."""
    x0, y0, x1, y1 = tf.unstack(boxes, axis=-1)
    if box_format.startswith("rel_"):
        x0, x1, y0, y1 = x0 / width, x1 / width, y0 / height, y1 / height
    w, h = x1 - x0, y1 - y0
    values = {
        "xyxy": (x0, y0, x1, y1),
        "yxyx": (y0, x0, y1, x1),
        "xywh": (x0, y0, w, h),
        "center_xywh": (x0 + w / 2, y0 + h / 2, w, h),
        "center_yxhw": (y0 + h / 2, x0 + w / 2, h, w),
    }[box_format.removeprefix("rel_")]
    return tf.stack(values, axis=-1)


def _area(box):
    x0, y0, x1, y1 = tf.unstack(box, axis=-1)
    return tf.maximum(x1 - x0, 0.0) * tf.maximum(y1 - y0, 0.0)


def _visible_part(box, region):
    """The bounding box of `box` minus `region` (both `[..., 4]` xyxy),
    and the fraction of `box`'s area outside `region`."""
    bx0, by0, bx1, by1 = tf.unstack(box, axis=-1)
    rx0, ry0, rx1, ry1 = tf.unstack(region, axis=-1)
    overlap = _area(
        tf.stack(
            [
                tf.maximum(bx0, rx0),
                tf.maximum(by0, ry0),
                tf.minimum(bx1, rx1),
                tf.minimum(by1, ry1),
            ],
            -1,
        )
    )
    area = _area(box)
    visible = tf.math.divide_no_nan(area - overlap, area)
    # A side is trimmed where the region spans the box across it.
    spans_y = tf.logical_and(ry0 <= by0, ry1 >= by1)
    spans_x = tf.logical_and(rx0 <= bx0, rx1 >= bx1)
    trimmed = [
        tf.where(spans_y & (rx0 <= bx0), tf.maximum(bx0, rx1), bx0),
        tf.where(spans_x & (ry0 <= by0), tf.maximum(by0, ry1), by0),
        tf.where(spans_y & (rx1 >= bx1), tf.minimum(bx1, rx0), bx1),
        tf.where(spans_x & (ry1 >= by1), tf.minimum(by1, ry0), by1),
    ]
    return tf.stack(trimmed, axis=-1), visible


def _clipped(box, region):
    """`box` clipped to `region`, and the fraction of its area kept."""
    clipped = tf.concat(
        [
            tf.maximum(box[..., :2], region[..., :2]),
            tf.minimum(box[..., 2:], region[..., 2:]),
        ],
        axis=-1,
    )
    return clipped, tf.math.divide_no_nan(_area(clipped), _area(box))


def _regions(draw, axes):
    """Each example's pasted region as an xyxy box `[B, 1, 4]`."""
    if len(axes) != 2:
        raise ValueError(
            "CutMix moves detection boxes only when it cuts two axes "
            f"(height and width); it cuts {len(axes)} here (`axes`)."
        )
    lows = tf.cast(draw.lows, tf.float32)
    highs = tf.cast(draw.highs, tf.float32)
    region = tf.stack(
        [lows[:, 1], lows[:, 0], highs[:, 1], highs[:, 0]], axis=-1
    )
    return region[:, None, :]


def _cut_boxes(own, partner, draw, moved, image, axes, options):
    """Own and partner boxes after a CutMix paste, the fraction of each
    that stays visible, and which examples were cut (by another)."""
    box_format = options["bounding_box_format"]
    if box_format is None:
        raise ValueError(
            "CutMix moves the `bounding_boxes` of the element, so it needs "
            "their format: pass `bounding_box_format` (one of "
            f"{FORMATS})."
        )
    shape = tf.cast(tf.shape(image), tf.float32)
    height, width = shape[axes[0]], shape[axes[1]]
    own_xyxy = to_xyxy(own, box_format, height, width)
    partner_xyxy = to_xyxy(partner, box_format, height, width)
    region = _regions(draw, axes)
    own_cut, own_visible = _visible_part(own_xyxy, region)
    partner_cut, partner_visible = _clipped(partner_xyxy, region)
    cut = tf.logical_and(tf.reshape(draw.cut, [-1, 1]), moved)
    cut = tf.broadcast_to(cut, tf.shape(own_visible))
    own_new = from_xyxy(own_cut, box_format, height, width)
    partner_new = from_xyxy(partner_cut, box_format, height, width)
    return (
        tf.where(cut[..., None], own_new, own),
        tf.where(cut[..., None], partner_new, partner),
        tf.where(cut, own_visible, 1.0),
        tf.where(cut, partner_visible, 1.0),
        cut,
    )


def mix_boxes(bounding_boxes, draw, image, axes, options):
    """Mixes keras's `bounding_boxes` dict with a draw.

    Args:
        bounding_boxes: `{"boxes": [B, N, 4], "labels": [B, N]}`.
        draw: `(lam, partner_index)` or a `keras_mixup.cutmix.CutDraw`.
        image: the image the boxes belong to (for its size).
        axes: the image's height and width axes.
        options: the engine's options (`bounding_box_format`,
            `min_box_visibility`).

    Returns:
        `{"boxes": [B, 2N, 4], "labels": [B, 2N], "weights": [B, 2N]}`.
    """
    own = tf.convert_to_tensor(bounding_boxes["boxes"])
    own_labels = tf.convert_to_tensor(bounding_boxes["labels"])
    lam, partner_index = draw[:2]
    size = tf.shape(partner_index)[0]
    partner = tf.gather(own, partner_index)
    partner_labels = tf.gather(own_labels, partner_index)
    lam = tf.reshape(lam, [-1, 1]) * tf.ones(tf.shape(own_labels))
    moved = (partner_index != tf.range(size))[:, None]
    own_weight = tf.where(moved, lam, 1.0)
    partner_weight = 1.0 - lam
    if isinstance(draw, cutmix.CutDraw):
        float_own = tf.cast(own, tf.float32)
        own_new, partner_new, own_seen, partner_seen, cut = _cut_boxes(
            float_own,
            tf.cast(partner, tf.float32),
            draw,
            moved,
            image,
            axes,
            options,
        )
        own = tf.cast(own_new, own.dtype)
        partner = tf.cast(partner_new, own.dtype)
        least = options["min_box_visibility"]
        own_weight = tf.where(
            cut, tf.cast(own_seen >= least, tf.float32), own_weight
        )
        partner_weight = tf.where(
            cut, tf.cast(partner_seen >= least, tf.float32), partner_weight
        )
    partner_weight = tf.where(moved, partner_weight, 0.0)
    keep = tf.concat([own_weight > 0, partner_weight > 0], axis=1)
    keep = tf.logical_and(
        keep, tf.concat([own_labels >= 0, partner_labels >= 0], axis=1)
    )
    boxes = tf.concat([own, partner], axis=1)
    labels = tf.concat([own_labels, partner_labels], axis=1)
    weights = tf.concat([own_weight, partner_weight], axis=1)
    return {
        "boxes": tf.where(keep[..., None], boxes, tf.cast(-1, boxes.dtype)),
        "labels": tf.where(keep, labels, tf.cast(-1, labels.dtype)),
        "weights": tf.where(keep, weights, 0.0),
    }
