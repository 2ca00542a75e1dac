"""A choice among variants, with probabilities: the switch of the DeiT
recipe, and any mix of registered names (`variant={name: probability}`).

Each member draws its own parameters for the whole batch; the choice draws,
per example (or per batch, as `mode` says), which member applies. Per
batch, only the chosen member's apply runs (a switch: `tf.switch_case`,
`jax.lax.switch`, a Python branch on PyTorch; XLA and `jax.jit` compile
it); per example, every member's result is computed and each target takes
the chosen member's (one select per target, which XLA fuses with the
members' passes). The label weight is the chosen member's.

Members may draw from different numbers of sources (mixup two, Mosaic
four): the choice draws as many partners as its widest member and gives
each member the first ones it needs; labels are then the sum over the
chosen member's sources (`source_weights`, padded with the example itself
at weight 0), and boxes are padded to the widest member's before the
select.
"""

import functools

from keras_mixup import backend, blending, spatial
from keras_mixup.variants import base

__all__ = ["Choice"]


def _chosen(choice, thunks, ranks=None):
    """The result of the chosen thunk: for a scalar `choice` (one for the
    batch) only that one runs (a switch); per example, every one runs and
    each result's entries are selected (`_select`, each result a tensor of
    rank `ranks` or a dict of them, `ranks` then a dict)."""
    if backend.rank(choice) == 0:
        return _switch(choice, thunks)
    results = [thunk() for thunk in thunks]
    if not isinstance(results[0], dict):
        return _select(choice, results, ranks)
    return {
        key: _select(choice, [r[key] for r in results], ranks[key])
        for key in results[0]
    }


def _switch(choice, thunks):
    """The result of `thunks[choice]` for a scalar `choice`, the only one
    that runs (`tf.switch_case`, `jax.lax.switch`, a Python branch)."""
    ops = backend.ops()
    return ops.core.switch(ops.core.cast(choice, "int32"), thunks)


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
        self.sources = max(v.sources for v in variants)
        self.needs_labels_reason = " ".join(
            v.needs_labels_reason for v in variants if not v.inputs_only_form
        )

    @property
    def names(self):
        return frozenset().union(*(v.names for v in self.members))

    @property
    def keeps_mask_values(self):
        return all(v.keeps_mask_values for v in self.members)

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
            base.Draw(lam, _partners_for(member, draw.partner_index), params)
            for member, lam, params in zip(
                self.members,
                draw.params["lams"],
                draw.params["members"],
                strict=True,
            )
        ]

    def apply_labels(self, draw, structure, *, fused="auto"):
        if self.sources == 2:
            return super().apply_labels(draw, structure, fused=fused)
        indices, weights = self.source_weights(draw)
        return blending.blend_sources(structure, indices, weights)

    def source_weights(self, draw):
        np = backend.ops().numpy
        found = [
            member.source_weights(d)
            for member, d in zip(
                self.members, self._member_draws(draw), strict=True
            )
        ]
        indices, weights = [], []
        for index, weight in found:
            extra = self.sources - index.shape[1]
            if extra:
                itself = np.repeat(index[:, :1], extra, axis=1)
                index = np.concatenate([index, itself], axis=1)
                weight = np.pad(weight, [[0, 0], [0, extra]])
            indices.append(index)
            weights.append(weight)
        choice = draw.params["choice"]
        return _select(choice, indices, 2), _select(choice, weights, 2)

    def pad(self, draw, rows):
        padded = [
            member.pad(d, rows)
            for member, d in zip(
                self.members, self._member_draws(draw), strict=True
            )
        ]
        params = {
            "choice": base.pad_rows(draw.params["choice"], rows, 0),
            "lams": [d.lam for d in padded],
            "members": [d.params for d in padded],
        }
        return base.Draw(
            base.pad_rows(draw.lam, rows, 1.0), draw.partner_index, params
        )

    def _thunks(self, draw, method, *args, **kwargs):
        """One thunk per member: its `method` on its own draw."""
        return [
            functools.partial(getattr(member, method), d, *args, **kwargs)
            for member, d in zip(
                self.members, self._member_draws(draw), strict=True
            )
        ]

    def apply_image(self, draw, image, rank, axes, *, kind="inputs"):
        thunks = self._thunks(draw, "apply_image", image, rank, axes, kind=kind)
        return _chosen(draw.params["choice"], thunks, rank)

    def apply_boxes(self, draw, bounding_boxes, sizes):
        thunks = self._thunks(draw, "apply_boxes", bounding_boxes, sizes)
        widest = self.sources * bounding_boxes["labels"].shape[1]
        padded = [
            functools.partial(lambda t: _pad_boxes(t(), widest), thunk)
            for thunk in thunks
        ]
        ranks = {"boxes": 3, "labels": 2, "weights": 2}
        return _chosen(draw.params["choice"], padded, ranks)

    def apply_padding(self, draw, sequences, mask, rule, float_dtype):
        thunks = self._thunks(
            draw, "apply_padding", sequences, mask, rule, float_dtype
        )
        choice = draw.params["choice"]
        if backend.rank(choice) == 0:
            return _switch(choice, thunks)
        results = [thunk() for thunk in thunks]
        mixed = [
            _select(choice, [r[0][k] for r in results], backend.rank(x))
            for k, x in enumerate(sequences)
        ]
        combined = _select(choice, [r[1] for r in results], 2)
        return mixed, combined, _select(choice, [r[2] for r in results])


def _partners_for(member, partner_index):
    """The first partner columns, as many as `member` draws from."""
    if partner_index is None or backend.rank(partner_index) == 1:
        return partner_index
    if member.sources == 2:
        return partner_index[:, 0]
    return partner_index[:, : member.sources - 1]


def _pad_boxes(mixed, width):
    """A mixed `bounding_boxes` dict padded to `width` boxes (-1, weight
    0), so members with different numbers of sources can be selected."""
    extra = width - mixed["labels"].shape[1]
    if not extra:
        return mixed
    np = backend.ops().numpy
    return {
        "boxes": np.pad(
            mixed["boxes"], [[0, 0], [0, extra], [0, 0]], constant_values=-1
        ),
        "labels": np.pad(
            mixed["labels"], [[0, 0], [0, extra]], constant_values=-1
        ),
        "weights": np.pad(mixed["weights"], [[0, 0], [0, extra]]),
    }
