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

from keras_mixup import backend, boxes, checks, options, spatial
from keras_mixup.variants import base

__all__ = ["CutMix", "inside_boxes", "torch_paste"]


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


def inside_boxes(image, lows, highs, rank, axes, trailing=1):
    """Bool, broadcastable to `image`: whether a position lies in its
    example's box (`lows`, `highs`: int32 `[B, k]` or `[1, k]`)."""
    np = backend.ops().numpy

    def along(j, where):
        low = spatial.per_example(lows[:, j], rank)
        high = spatial.per_example(highs[:, j], rank)
        return np.logical_and(where >= low, where < high)

    return spatial.mask_along(image, rank, axes, along, trailing)


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
        lam = context.lam(self.alpha)
        minmax = self.config["cutmix_minmax"]
        lows, highs, kept, slices = spatial.draw_boxes(
            context.image_sizes(),
            backend.reshape(lam, [-1]),
            context.seed(0),
            minmax=minmax,
        )
        if self.config["correct_lam"] or minmax:
            lam = backend.reshape(kept, context.shape)
        params = {"lows": lows, "highs": highs}
        if slices is not None:
            params["slices"] = slices  # PyTorch's one box, on the host
        return base.Draw(lam, None, params)

    def pad(self, draw, rows):
        if backend.rank(draw.lam) == 0 or "slices" not in draw.params:
            return super().pad(draw, rows)
        # One example's box on the host: not the padded batch's boxes.
        params = {k: v for k, v in draw.params.items() if k != "slices"}
        return super().pad(draw._replace(params=params), rows)

    def apply_image(self, draw, image, rank, axes, *, kind="inputs"):
        if backend.name() == "torch":
            return torch_paste(
                image,
                draw.partner_index,
                draw.params["lows"],
                draw.params["highs"],
                axes,
                slices=draw.params.get("slices"),
            )
        bounds = draw.params["lows"], draw.params["highs"]
        index = draw.partner_index
        return spatial.paste_where(
            image, rank, axes, index, inside_boxes, *bounds
        )

    def apply_boxes(self, draw, bounding_boxes, sizes):
        return boxes.paste_into_box(
            draw, bounding_boxes, sizes, options=self.config, owner="CutMix"
        )


def torch_paste(image, partner_index, lows, highs, axes, *, slices=None):
    """The paste on PyTorch, eagerly: with one box for the batch (`lows`
    `[1, k]`, or its `slices` along `axes` as `spatial.draw_boxes` gives
    them), the image copied and the partners' box copied into it (one pass
    over the batch; the box read to the host unless `slices` are given);
    with a box per example, one `torch.where` of the gathered partners on a
    box mask of the image's shape (`spatial.torch_inside_boxes`)."""
    import torch

    image = checks.to_tensor(image)
    rank = image.ndim
    if slices is None and lows.shape[0] == 1 and image.shape[0] != 1:
        bounds = torch.cat([lows[0], highs[0]]).tolist()
        k = len(axes)
        slices = [slice(bounds[j], bounds[k + j]) for j in range(k)]
    if slices is not None:
        box = [slice(None)] * rank
        for axis, along in zip(axes, slices, strict=True):
            box[axis] = along
        box = tuple(box)
        pasted = image.clone()
        pasted[box] = image[box].index_select(0, partner_index)
        return pasted
    inside = spatial.torch_inside_boxes(image, lows, highs, axes)
    return torch.where(inside, image.index_select(0, partner_index), image)
