"""Padded sequences: how their padding masks mix (`mask_rule`).

A batch of sequences `x` `[B, T, ...]` with a padding mask `M` `[B, T]`
(True where a step is valid) mixes each example `i` with its partner `j`
under one of three rules; padded steps count as zeros:

    union         valid where either is:  M_i or M_j;
                  x~ = lam * x_i + (1 - lam) * x_j with padding as zeros
                  (a step valid only in the partner holds (1 - lam) * x_j);
                  label weight lam
    intersection  valid where both are:   M_i and M_j;
                  x~ = lam * x_i + (1 - lam) * x_j there, zeros elsewhere;
                  label weight lam
    anchor        each example's own mask M_i; only the steps valid in both
                  are mixed, the others keep x_i; label weight
                  lam' = 1 - (1 - lam) * |M_i and M_j| / |M_i|

The formulas hold step by step, so masks with holes mix as prefixes do.
Steps outside the combined mask hold the example's own padding (so an
example that is not mixed comes back unchanged), and zeros where the rule
drops a valid step of the example (intersection). The default is `"union"`:
it is the plain blend of the two sequences padded with zeros, so lam is
the exact label weight and the rule is symmetric under swapping the two
examples, which the inputs-only form (lam ~ Beta(alpha + 1, alpha), labels
kept) needs to be mixup in expectation. `"anchor"` is not symmetric: in the
inputs-only form it mixes each example's shared steps with its partner and
keeps its own mask and label (a label-preserving augmentation, not mixup
in expectation); lam' is then not used, as no label is blended. At a
`MixupModel`'s hidden mix points the mask is known only in the forward
pass, so the model mixes the labels (or weighs the loss) after it, with
the lam' the mix point found (see `keras_mixup.layers.MixStep`).

A padding mask is one more target a variant applies its draw to
(`Variant.apply_padding`, the target `"padding_mask"`); this module holds
the rules and the split of a batch into its sequences and the rest. It runs
in `tf.data` and in a model on TensorFlow, JAX and PyTorch.
"""

import keras

from keras_mixup import backend, blending, checks

__all__ = [
    "DEFAULT_RULE",
    "PADDING_MASK",
    "RULES",
    "apply_padded",
    "check_batch",
    "check_padding_mask",
    "check_rule",
    "is_padded",
    "mix_padded_dict",
    "mix_padded_inputs",
    "mix_sequences",
    "split_dict",
    "split_padded",
]

#: The mask rules.
RULES = ("union", "intersection", "anchor")
DEFAULT_RULE = "union"
#: The key of the padding mask in a dict of inputs (KerasHub's convention).
PADDING_MASK = "padding_mask"


def check_rule(value):
    """Validates `mask_rule`: one of `RULES`.

    Raises:
        ValueError: naming the value received and the rules.
    """
    return checks.check_choice(
        value, "mask_rule", RULES, " (how padding masks of sequences mix)"
    )


def is_padded(x):
    """Whether `x` is a dict of inputs with a `"padding_mask"` entry."""
    return isinstance(x, dict) and PADDING_MASK in x


def check_padding_mask(mask, name=PADDING_MASK):
    """A padding mask as a bool tensor `[B, T]`.

    Raises:
        ValueError: for another dtype or rank, naming `name`.
    """
    mask = checks.to_tensor(mask)
    dtype = backend.dtype_name(mask)
    if dtype != "bool" or backend.rank(mask) != 2:
        raise ValueError(
            f"`{name}` must be a bool tensor [batch, time], True where a "
            f"step is valid; received {dtype}{list(mask.shape)}."
        )
    return mask


def _is_sequence(leaf, mask):
    """Whether `leaf` has the mask's batch and time axes. An unknown size
    matches any batch size; a time axis of unknown size (`padded_batch`)
    matches only another unknown one, as a feature axis is known."""
    if backend.rank(leaf) is None or backend.rank(leaf) < 2:
        return False
    (batch, time), (rows, steps) = leaf.shape[:2], mask.shape
    if steps is None:
        return time is None
    return (batch is None or rows is None or batch == rows) and (
        time is None or time == steps
    )


def split_padded(x, mask, owner):
    """Splits the leaves of `x` into the sequences the mask pads (float
    leaves with its batch and time axes) and the others.

    Returns:
        `(sequences, others, repack)`; `repack(sequences, others)` puts
        mixed leaves back in the structure.

    Raises:
        ValueError: for integer leaves with the mask's axes (token ids),
            or when no leaf has them.
    """
    leaves = keras.tree.flatten(x)
    found = [_is_sequence(leaf, mask) for leaf in leaves]
    for leaf, is_sequence in zip(leaves, found, strict=True):
        if is_sequence and not backend.is_floating(leaf):
            raise ValueError(
                f"{owner} blends padded sequences, but an input of dtype "
                f"{backend.dtype_name(leaf)}{list(leaf.shape)} has the "
                "padding mask's batch and time axes: integer token ids "
                "cannot be blended. Mix the embeddings in the model "
                "instead: `Embedding(..., mask_zero=True)` followed by "
                "`keras_mixup.MixupLayer` (wordMixup), under `MixupModel("
                "..., mix_at='latent')` to mix the labels too."
            )
    if not any(found):
        raise ValueError(
            f"{owner} got a padding mask of shape {list(mask.shape)} but no "
            "float input with its batch and time axes [batch, time, ...]; "
            f"received inputs of shapes {[list(t.shape) for t in leaves]}."
        )

    def repack(sequences, others):
        sequences, others = iter(sequences), iter(others)
        merged = [next(sequences) if s else next(others) for s in found]
        return keras.tree.pack_sequence_as(x, merged)

    sequences = [leaf for leaf, s in zip(leaves, found, strict=True) if s]
    others = [leaf for leaf, s in zip(leaves, found, strict=True) if not s]
    return sequences, others, repack


def _along(mask, rank):
    """A mask `[B, T]` shaped `[B, T, 1, ...]` to broadcast against a
    rank-`rank` sequence."""
    for _ in range(rank - 2):
        mask = backend.ops().numpy.expand_dims(mask, -1)
    return mask


def _mix_one(x, partner, masks, lam, rule):
    """One sequence mixed under `rule`; `masks`: `(own, partner's,
    combined, both)`, bool `[B, T]`."""
    where = backend.ops().numpy.where
    rank = backend.rank(x)
    own, other, combined, both = (_along(m, rank) for m in masks)
    if rule == "anchor":
        return where(both, blending.blend_pair(x, partner, lam), x)
    zeros = backend.ops().numpy.zeros_like(x)
    blended = blending.blend_pair(
        where(own, x, zeros), where(other, partner, zeros), lam
    )
    return where(combined, blended, where(own, zeros, x))


def mix_sequences(sequences, mask, lam, partner_index, rule, float_dtype):
    """Mixes padded sequences with their partners under a mask rule.

    Args:
        sequences: float tensors `[B, T, ...]` (integer ones are cast to
            `float_dtype`).
        mask: bool `[B, T]`, True where a step is valid.
        lam: float `[B]` or `[]`, the blend weight of each example.
        partner_index: int32 `[B]`.
        rule: one of `RULES`.
        float_dtype: the dtype integer sequences are blended in.

    Returns:
        `(mixed, combined_mask, label_weight)`: the sequences mixed, the
        combined mask (bool `[B, T]`) and the weight of each example's own
        label (float32 `[B]`; lam under union and intersection, lam' under
        anchor; see the module docstring).
    """
    ops = backend.ops()
    np = ops.numpy
    partner_mask = np.take(mask, partner_index, axis=0)
    both = np.logical_and(mask, partner_mask)
    combined = {
        "union": np.logical_or(mask, partner_mask),
        "intersection": both,
        "anchor": mask,
    }[rule]
    masks = (mask, partner_mask, combined, both)
    mixed = []
    for x in sequences:
        if not backend.is_floating(x):
            x = ops.core.cast(x, float_dtype)
        partner = np.take(x, partner_index, axis=0)
        mixed.append(_mix_one(x, partner, masks, lam, rule))
    lam = ops.core.cast(lam, "float32")
    if rule == "anchor":  # per example, whatever the mode
        own = np.sum(ops.core.cast(mask, "float32"), axis=1)
        shared = np.sum(ops.core.cast(both, "float32"), axis=1)
        lam = 1.0 - (1.0 - lam) * shared / np.maximum(own, 1.0)
    return mixed, combined, lam


def mix_padded_inputs(engine, draw, x, mask):
    """Applies a draw to the inputs of a batch of padded sequences.

    Args:
        engine: the `keras_mixup.engine.MixingEngine`.
        draw: its `keras_mixup.variants.Draw`.
        x: the inputs, a tensor or structure; its float leaves with the
            mask's batch and time axes are mixed under `mask_rule`, the
            others blended with lam.
        mask: bool `[B, T]`, checked (`check_padding_mask`).

    Returns:
        `(x, combined_mask, label_weight)`: the label weight of each
        example's own label, float32 `[B]` (lam, or lam' under
        `"anchor"`).

    Raises:
        ValueError: as `split_padded`; for a variant without a rule for
            padding masks.
    """
    engine.settings.check_targets([PADDING_MASK])
    sequences, others, repack = split_padded(x, mask, engine.owner)
    dtype = keras.config.dtype_policy().compute_dtype
    sequences, combined, weight = engine.variant.apply_padding(
        draw, sequences, mask, engine.options["mask_rule"], dtype
    )
    if others:
        others = engine.variant.apply_labels(
            draw, others, fused=engine.options["fused"]
        )
    return repack(sequences, others), combined, weight


def apply_padded(
    engine, draw, x, mask, y=None, sample_weight=None, *, mix_labels=None
):
    """Applies a draw to a batch of padded sequences, labels included.

    Args:
        engine: the `keras_mixup.engine.MixingEngine`.
        draw: its `keras_mixup.variants.Draw`.
        x: the inputs (see `mix_padded_inputs`).
        mask: bool `[B, T]`, checked (`check_padding_mask`).
        y: the labels, or `None`. Defaults to `None`.
        sample_weight: per-example weights, or `None`. Defaults to `None`.
        mix_labels: whether the labels and weights are blended with the
            rule's label weight; without it they come back as given (the
            inputs-only form). Defaults to `None`: the option.

    Returns:
        `(x, y, sample_weight, combined_mask)`.

    Raises:
        ValueError: as `mix_padded_inputs`.
    """
    if mix_labels is None:
        mix_labels = engine.options["mix_labels"]
    x, combined, weight = mix_padded_inputs(engine, draw, x, mask)
    if mix_labels:
        # Labels and weights: an empty structure stands for the inputs.
        label_draw = draw._replace(lam=weight)
        _, y, sample_weight = engine.apply(
            label_draw, (), y, sample_weight, mix_labels=True
        )
    return x, y, sample_weight, combined


def split_dict(x, name="x"):
    """`(inputs without the mask, mask checked)` of a padded dict."""
    rest = {k: v for k, v in x.items() if k != PADDING_MASK}
    mask = check_padding_mask(x[PADDING_MASK], f"{name}[{PADDING_MASK!r}]")
    return rest, mask


def check_batch(x, y=None, sample_weight=None, *, prefix="", check_values=True):
    """`keras_mixup.checks.check_batch`, with a dict of inputs that holds a
    `"padding_mask"` checked apart (a bool mask is not blended).

    Returns:
        `(x, y, sample_weight, batch_size)`.
    """
    if not is_padded(x):
        return checks.check_batch(
            x, y, sample_weight, prefix=prefix, check_values=check_values
        )
    rest, mask = split_dict(x, f"{prefix}x")
    rest, y, sample_weight, size = checks.check_batch(
        rest, y, sample_weight, prefix=prefix, check_values=check_values
    )
    checks.batch_size(rest, mask)
    return {**rest, PADDING_MASK: mask}, y, sample_weight, size


def mix_padded_dict(engine, x, y=None, sample_weight=None, *, inputs_only):
    """Checks, draws and mixes a dict of inputs with a `"padding_mask"`
    entry; the combined mask comes back under the same key.

    Returns:
        `(x, y, sample_weight)`, `None` entries kept.
    """
    x, y, sample_weight, size = engine.check_batch(x, y, sample_weight)
    rest, mask = split_dict(x)
    draw = engine.draw(size, rest, y, inputs_only=inputs_only)
    rest, y, sample_weight, mask = apply_padded(
        engine, draw, rest, mask, y, sample_weight, mix_labels=not inputs_only
    )
    return {**rest, PADDING_MASK: mask}, y, sample_weight
