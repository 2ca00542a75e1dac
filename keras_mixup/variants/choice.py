"""A choice among variants, with probabilities: the switch of the DeiT
recipe, and any mix of registered names (`variant={name: probability}`).

Each member draws its own parameters for the whole batch; the choice draws,
per example (or per batch, as `mode` says), which member applies. Per
batch, only the chosen member's apply runs (a switch: `tf.switch_case`,
`jax.lax.switch`, a Python branch on PyTorch; XLA and `jax.jit` compile
it); per example, every member's result is computed and each target takes
the chosen member's (one select per target, which XLA fuses with the
members' passes). On PyTorch, which runs eagerly, the choice is drawn
first and only what is chosen is computed: per batch, the chosen member's
draw alone; per example, each member drawn and applied on the sub-batch
of the examples that chose it (with their partners), its results put back
in their rows. The label weight is the chosen member's.

Members may draw from different numbers of sources (mixup two, Mosaic
four): the choice draws as many partners as its widest member and gives
each member the first ones it needs; labels are then the sum over the
chosen member's sources (`source_weights`, padded with the example itself
at weight 0), and boxes are padded to the widest member's before the
select.
"""

import functools

import keras

from keras_mixup import backend, blending, checks, spatial
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
        if backend.name() == "torch":
            return _draw_on_torch(self, context)
        draws = [
            member.draw(context.child(index))
            for index, member in enumerate(self.members)
        ]
        choice = self._draw_choice(context)
        params = {
            "choice": choice,
            "lams": [d.lam for d in draws],
            "members": [d.params for d in draws],
        }
        lam = _select(choice, params["lams"])
        return base.Draw(lam, None, params)

    def _draw_choice(self, context):
        """int32 of the draw's shape: the member each example (or the
        batch) takes."""
        ops = backend.ops()
        uniform = backend.uniform(context.shape, context.seed(99))
        choice = ops.numpy.zeros(context.shape, dtype="int32")
        bound = 0.0
        for probability in self.probabilities[:-1]:
            bound += probability
            choice = choice + ops.core.cast(uniform >= bound, "int32")
        return choice

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
        choice = draw.params["choice"]
        if _per_row(draw):

            def run(member, sub, sources):
                index, weight = _widened(self.sources, member, sub)
                found = sources.index_select(0, index.reshape(-1))
                return found.view(index.shape), weight

            return _on_rows(self, draw, run)
        thunks = [
            functools.partial(_widened, self.sources, member, d)
            for member, d in zip(
                self.members, self._member_draws(draw), strict=True
            )
        ]
        if backend.rank(choice) == 0:
            return _switch(choice, thunks)
        found = [thunk() for thunk in thunks]
        return (
            _select(choice, [index for index, _ in found], 2),
            _select(choice, [weight for _, weight in found], 2),
        )

    def pad(self, draw, rows):
        choice = draw.params["choice"]
        if backend.rank(choice) == 0:
            return draw  # one draw for the batch
        params = {
            "choice": base.pad_rows(choice, rows, 0),
            "lams": list(draw.params["lams"]),
            "members": list(draw.params["members"]),
        }
        if "rows" in draw.params:  # the added examples take member 0
            first = base.Draw(params["lams"][0], None, params["members"][0])
            first = self.members[0].pad(first, rows)
            params["lams"][0], params["members"][0] = first.lam, first.params
            params["rows"] = list(draw.params["rows"])
            params["rows"][0] = _added_rows(params["rows"][0], choice, rows)
        else:
            padded = [
                member.pad(d, rows)
                for member, d in zip(
                    self.members, self._member_draws(draw), strict=True
                )
            ]
            params["lams"] = [d.lam for d in padded]
            params["members"] = [d.params for d in padded]
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
        if _per_row(draw):
            run = _row_run("apply_image", [image], rank, axes, kind=kind)
            return _on_rows(self, draw, run)
        thunks = self._thunks(draw, "apply_image", image, rank, axes, kind=kind)
        return _chosen(draw.params["choice"], thunks, rank)

    def apply_boxes(self, draw, bounding_boxes, sizes):
        widest = self.sources * bounding_boxes["labels"].shape[1]
        if _per_row(draw):
            run = _row_run("apply_boxes", [bounding_boxes], sizes)
            return _on_rows(self, draw, lambda *a: _pad_boxes(run(*a), widest))
        thunks = self._thunks(draw, "apply_boxes", bounding_boxes, sizes)
        padded = [
            functools.partial(lambda t: _pad_boxes(t(), widest), thunk)
            for thunk in thunks
        ]
        ranks = {"boxes": 3, "labels": 2, "weights": 2}
        return _chosen(draw.params["choice"], padded, ranks)

    def apply_padding(self, draw, sequences, mask, rule, float_dtype):
        choice = draw.params["choice"]
        if _per_row(draw):
            run = _row_run(
                "apply_padding", [sequences, mask], rule, float_dtype
            )
            return _on_rows(self, draw, run)
        thunks = self._thunks(
            draw, "apply_padding", sequences, mask, rule, float_dtype
        )
        if backend.rank(choice) == 0:
            return _switch(choice, thunks)
        return _select_padding(choice, [thunk() for thunk in thunks])


def _draw_on_torch(variant, context):
    """The draw on PyTorch: the choice first, then per batch only the
    chosen member's draw (the others `None`), per example each
    member's on as many examples as chose it (`"rows"`, their
    indices)."""
    import torch

    choice = variant._draw_choice(context)
    if not context.per_example:
        index = int(choice)
        draws = [None] * len(variant.members)
        draws[index] = variant.members[index].draw(context.child(index))
        params = {
            "choice": choice,
            "lams": [d and d.lam for d in draws],
            "members": [d and d.params for d in draws],
        }
        return base.Draw(draws[index].lam, None, params)
    rows = [
        torch.nonzero(choice == index).view(-1)
        for index in range(len(variant.members))
    ]
    draws = [
        member.draw(context.child(index).for_rows(rows[index].shape[0]))
        for index, member in enumerate(variant.members)
    ]
    lam = torch.empty(choice.shape, device=choice.device)
    for index, found in zip(rows, draws, strict=True):
        lam.index_copy_(0, index, found.lam.reshape(-1))
    params = {
        "choice": choice,
        "rows": rows,
        "lams": [d.lam for d in draws],
        "members": [d.params for d in draws],
    }
    return base.Draw(lam, None, params)


def _on_rows(variant, draw, run):
    """Per example on PyTorch: `run(member, sub_draw, sources)` on each
    member's sub-batch (`_sub_batch`; `sources`, int32, the rows of the
    batch it is made of), the results' first rows (the examples') put
    back in their rows. `None` for an empty batch (then every member's
    draw is the batch's)."""
    placed = []
    for member, rows, lam, params in zip(
        variant.members,
        draw.params["rows"],
        draw.params["lams"],
        draw.params["members"],
        strict=True,
    ):
        count = rows.shape[0]
        if count == 0:
            continue
        partners = _partners_for(member, draw.partner_index)[rows]
        sub, sources = _sub_batch(member, rows, partners, lam, params)
        found = run(member, sub, sources)
        first = keras.tree.map_structure(lambda t, n=count: t[:n], found)
        placed.append((rows, first))
    if not placed:
        return None
    size = draw.params["choice"].shape[0]

    def place(*leaves):
        out = leaves[0].new_empty((size, *leaves[0].shape[1:]))
        for (rows, _), leaf in zip(placed, leaves, strict=True):
            out.index_copy_(0, rows, leaf)
        return out

    return keras.tree.map_structure(place, *(r for _, r in placed))


def _widened(sources, member, draw):
    """`member.source_weights(draw)` padded to the widest member's
    sources (the example itself at weight 0)."""
    np = backend.ops().numpy
    index, weight = member.source_weights(draw)
    extra = sources - index.shape[1]
    if extra:
        itself = np.repeat(index[:, :1], extra, axis=1)
        index = np.concatenate([index, itself], axis=1)
        weight = np.pad(weight, [[0, 0], [0, extra]])
    return index, weight


def _per_row(draw):
    """Whether the draw is a per-example one of PyTorch's, each member
    drawn on its own rows (`_draw_on_torch`), for a batch of at least
    one example."""
    return "rows" in draw.params and draw.params["choice"].shape[0] > 0


def _row_run(method, batch, *rest, **kwargs):
    """A `run` of `_on_rows`: the member's `method` on its sub-batch of
    the batch-first structures `batch`, then `rest` and `kwargs`."""

    def run(member, draw, sources):
        taken = keras.tree.map_structure(
            lambda t: checks.to_tensor(t).index_select(0, sources), batch
        )
        return getattr(member, method)(draw, *taken, *rest, **kwargs)

    return run


def _select_padding(choice, results):
    """Each example's chosen `apply_padding` result, of every member's
    `results`: `(mixed, combined_mask, label_weight)`."""
    mixed = [
        _select(choice, [r[0][k] for r in results], backend.rank(x))
        for k, x in enumerate(results[0][0])
    ]
    combined = _select(choice, [r[1] for r in results], 2)
    return mixed, combined, _select(choice, [r[2] for r in results])


def _added_rows(rows, choice, count):
    """`rows` and the `count` rows added after the batch (`choice`)."""
    import torch

    size = choice.shape[0]
    added = torch.arange(size, size + count, device=rows.device)
    return torch.cat([rows, added])


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


def _sub_batch(member, rows, partners, lam, params):
    """The sub-batch of the examples that chose `member` (`rows`, their
    partners `partners`), drawn on them (`lam`, `params`): the examples,
    then each partner column as a partner batch is appended (its rows
    their own partners and unmixed: `Variant.pad`).

    Returns:
        `(draw, sources)`: the member's draw on the sub-batch, and int32
        `[sources * count]`, the batch's row of each of its rows.
    """
    import torch

    count = rows.shape[0]
    sources = torch.cat([rows[:, None], partners.view(count, -1)], 1)
    width = sources.shape[1]
    position = torch.arange(
        width * count, dtype=torch.int32, device=rows.device
    )
    own = position[count:].view(width - 1, count).T
    alone = position[count:, None].expand(-1, width - 1)
    index = torch.cat([own, alone])
    if member.sources == 2:
        index = index[:, 0]
    draw = member.pad(base.Draw(lam, index, params), (width - 1) * count)
    return draw, sources.T.reshape(-1).int()
