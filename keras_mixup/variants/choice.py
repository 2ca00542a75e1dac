"""A choice among variants, with probabilities: the mixup/CutMix switch of
the DeiT recipe, and any mix of names (`variant={"mixup": 0.5, "cutmix":
0.5}`).

Each member draws its own parameters for the whole batch; the choice draws,
per example (or per batch, as `mode` says), which member applies, and each
target takes the chosen member's result (one select per target, which XLA
fuses with the members' passes). The label weight is the chosen member's.
"""

from keras_mixup import backend, spatial
from keras_mixup.variants import base

__all__ = ["Choice"]


def _select(choice, values, rank=None):
    """`values[choice]`, per example (`choice` `[B]`, broadcast against
    values of rank `rank`) or for the batch (a scalar `choice`)."""
    np = backend.ops().numpy
    if rank is not None:
        choice = spatial.per_example(choice, rank)
    selected = values[0]
    for index, value in enumerate(values[1:], start=1):
        selected = np.where(np.equal(choice, index), value, selected)
    return selected


class Choice(base.Variant):
    """Draws, per example or per batch, one of `members` with the given
    probabilities.

    Args:
        options: the engine's options.
        members: `(variant, probability)` pairs, the probabilities summing
            to 1.
    """

    name = "choice"

    def __init__(self, options, members):
        super().__init__(options)
        self.members = [variant for variant, _ in members]
        self.probabilities = [float(p) for _, p in members]
        variants = self.members
        self.spatial = any(v.spatial for v in variants)
        self.keeps_values = all(v.keeps_values for v in variants)
        self.inputs_only_form = all(v.inputs_only_form for v in variants)
        self.takes = frozenset.intersection(*(v.takes for v in variants))
        self.needs_box_format = "bounding_boxes" in self.takes and any(
            v.needs_box_format for v in variants
        )
        self.needs_labels_reason = " ".join(
            v.needs_labels_reason for v in variants if not v.inputs_only_form
        )

    @property
    def names(self):
        return frozenset().union(*(v.names for v in self.members))

    def draw(self, context):
        ops = backend.ops()
        draws = [
            member.draw(context.child(index))
            for index, member in enumerate(self.members)
        ]
        uniform = backend.uniform(context.shape, context.seed(99))
        choice = ops.numpy.zeros(context.shape, dtype="int32")
        bound = 0.0
        for probability in self.probabilities[:-1]:
            bound += probability
            choice = choice + ops.core.cast(uniform >= bound, "int32")
        params = {
            "choice": choice,
            "lams": [d.lam for d in draws],
            "members": [d.params for d in draws],
        }
        lam = _select(choice, params["lams"])
        return base.Draw(lam, None, params)

    def _member_draws(self, draw):
        return [
            base.Draw(lam, draw.partner_index, params)
            for lam, params in zip(
                draw.params["lams"], draw.params["members"], strict=True
            )
        ]

    def pad(self, draw, rows):
        padded = [
            member.pad(d, rows)
            for member, d in zip(
                self.members, self._member_draws(draw), strict=True
            )
        ]
        params = {
            "choice": self.pad_rows(draw.params["choice"], rows, 0),
            "lams": [d.lam for d in padded],
            "members": [d.params for d in padded],
        }
        return base.Draw(
            self.pad_rows(draw.lam, rows, 1.0), draw.partner_index, params
        )

    def apply_image(self, draw, image, rank, axes, *, kind="inputs"):
        results = [
            member.apply_image(d, image, rank, axes, kind=kind)
            for member, d in zip(
                self.members, self._member_draws(draw), strict=True
            )
        ]
        return _select(draw.params["choice"], results, rank)

    def apply_boxes(self, draw, bounding_boxes, sizes):
        results = [
            member.apply_boxes(d, bounding_boxes, sizes)
            for member, d in zip(
                self.members, self._member_draws(draw), strict=True
            )
        ]
        choice = draw.params["choice"]
        return {
            key: _select(
                choice,
                [r[key] for r in results],
                backend.rank(results[0][key]),
            )
            for key in results[0]
        }
