"""mixup (Zhang et al., ICLR 2018): the blend.

    x~ = lam * x_i + (1 - lam) * x_j      y~ = lam * y_i + (1 - lam) * y_j

lam ~ Beta(alpha, alpha) (Beta(alpha + 1, alpha) for the inputs-only form,
which a blend has: it is symmetric under swapping the two examples). Every
input is blended, whatever its rank; detection boxes are concatenated and
weighed lam and 1 - lam (Zhang et al. 2019, arXiv:1902.04103); padded
sequences mix under the mask rule (`keras_mixup.sequences`).
"""

from keras_mixup import boxes
from keras_mixup.sequences import mix_sequences
from keras_mixup.variants import base

__all__ = ["Mixup"]


class Mixup(base.Variant):
    """The blend of each example with its partner, lam ~ Beta(alpha,
    alpha) with the engine's (scheduled) alpha."""

    name = "mixup"
    takes = frozenset(base.TARGETS) | {base.PADDING_MASK}

    def draw(self, context):
        return base.Draw(context.lam(), None, {})

    def apply_boxes(self, draw, bounding_boxes, sizes):
        return boxes.blend_boxes(bounding_boxes, draw.lam, draw.partner_index)

    def apply_padding(self, draw, sequences, mask, rule, float_dtype):
        return mix_sequences(
            sequences, mask, draw.lam, draw.partner_index, rule, float_dtype
        )
