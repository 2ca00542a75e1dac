"""Loss mixing, `MixupModel(..., mix_loss=True)`, and the targets the
compiled loss and metrics of a `MixupModel` see.

With loss mixing a training step mixes the inputs (at any mix point, with
any variant) and not the labels, and trains on

    lam * L(y_i, f(x~)) + (1 - lam) * L(y_j, f(x~))

with the compiled loss L, whatever it is (sparse cross-entropy with
`ignore_class`, CTC, mean squared error, a custom loss). It is computed
through sample weights, so L keeps its compiled reduction:

    L(y, f(x~), sample_weight=lam * w) + L(y[p], f(x~), (1 - lam) * w[p])

is exactly the formula under Keras' `"sum_over_batch_size"` and `"sum"`
reductions, with lam the draw's label weight (a cut variant's exact pixel
fraction) and p the partner index. A loss that masks positions
(`ignore_class`) divides each term by its own count of valid positions:
the same count when the partners are a permutation of the batch (random
pairing). `"mean_with_sample_weight"` divides each term by its own weights'
sum, which undoes lam: `compile` refuses it.
"""

import contextlib

import keras

from keras_mixup import backend, engine, labels, variants

__all__ = ["LossMixing", "check_loss", "encode_targets"]

#: The words that name a loss taking class ids or label sequences.
_IDS_LOSSES = ("sparse", "ctc")


def _loss_names(loss):
    """`(leaf, name)` for each loss of a compiled structure."""
    for leaf in keras.tree.flatten(loss):
        name = leaf if isinstance(leaf, str) else type(leaf).__name__
        if callable(leaf) and not isinstance(leaf, keras.losses.Loss):
            name = getattr(leaf, "__name__", name)
        yield leaf, str(name).lower()


def check_loss(loss, *, mix_loss, num_classes):
    """Refuses a loss the model cannot train with.

    Raises:
        ValueError: without `mix_loss`, for a sparse or CTC loss (the labels
            are mixed, so they are one-hot); with it, for such a loss with
            `num_classes` set (the labels would reach it one-hot), or a
            `"mean_with_sample_weight"` reduction (it undoes lam).
    """
    for leaf, name in _loss_names(loss):
        takes_ids = any(word in name for word in _IDS_LOSSES)
        if takes_ids and not mix_loss:
            raise ValueError(
                "MixupModel mixes the labels, so it trains on one-hot (soft) "
                "labels, integer class ids one-hot encoded with "
                "`num_classes`: compile it with a categorical loss such as "
                "'categorical_crossentropy', or pass `mix_loss=True` to mix "
                "the loss instead of the labels (any loss, sparse and CTC "
                f"included); received the loss {leaf!r}."
            )
        if takes_ids and num_classes is not None:
            raise ValueError(
                f"The loss {leaf!r} takes class ids, but `num_classes="
                f"{num_classes}` one-hot encodes them: with `mix_loss=True` "
                "the labels reach the loss as given, so drop `num_classes`."
            )
        if mix_loss and getattr(leaf, "reduction", None) == (
            "mean_with_sample_weight"
        ):
            raise ValueError(
                "`mix_loss=True` weighs the two terms of the loss with lam "
                "and 1 - lam through sample weights, which the reduction "
                "'mean_with_sample_weight' divides out again; use "
                "'sum_over_batch_size' (the default) or 'sum'; received "
                f"the loss {leaf!r}."
            )


def encode_targets(y, num_classes, *, keep_ids=False):
    """Labels as the compiled loss and metrics see them: class ids one-hot
    encoded with `num_classes`, with the training step's checks (Keras
    builds the compiled loss and metrics on unmixed labels before the
    first step, and evaluation never mixes). With `keep_ids` (loss
    mixing), integer labels without `num_classes` are kept as they are."""
    if y is None:
        return y
    encode = _encoder(
        num_classes, lambda t: labels.encode_labels(t, num_classes), keep_ids
    )
    return keras.tree.map_structure(encode, y)


def _encoder(num_classes, encode, keep_ids):
    """`encode`, except for class ids kept as they are (`keep_ids` without
    `num_classes`)."""

    def encoded(tensor):
        if keep_ids and num_classes is None and backend.is_integer(tensor):
            return tensor
        return encode(tensor)

    return encoded


def _expanded(tensor, rank):
    """`tensor` with trailing axes of size 1 up to `rank`."""
    for _ in range(rank - len(tensor.shape)):
        tensor = backend.ops().numpy.expand_dims(tensor, -1)
    return tensor


def _scaled(lam, label, weight, per_position):
    """`lam * weight`, shaped to broadcast against the loss values of
    `label` (per example, per step of a sequence, per pixel); with
    `per_position`, class ids of rank >= 2 get one weight per id."""
    rank = max(len(label.shape), 1 if weight is None else len(weight.shape))
    scaled = _expanded(lam, rank)
    if weight is not None:
        weight = backend.ops().core.cast(weight, backend.dtype_name(lam))
        scaled = scaled * _expanded(weight, rank)
    if per_position and backend.is_integer(label) and len(label.shape) > 1:
        ops = backend.ops()  # a product, not a view Keras cannot write
        ones = ops.numpy.ones(ops.core.shape(label), backend.dtype_name(lam))
        scaled = scaled * ones
    return scaled


def _term_weights(lam, y, sample_weight, per_position):
    """One term's sample weights, a structure like `y` (or like
    `sample_weight` when that is nested)."""
    if sample_weight is None or not keras.tree.is_nested(sample_weight):
        return keras.tree.map_structure(
            lambda t: _scaled(lam, t, sample_weight, per_position), y
        )
    return keras.tree.map_structure(
        lambda t, w: _scaled(lam, t, w, per_position), y, sample_weight
    )


def _take(structure, index):
    if structure is None:
        return None
    take = backend.ops().numpy.take
    return keras.tree.map_structure(lambda t: take(t, index, axis=0), structure)


class LossMixing:
    """The loss mixing of one `MixupModel`.

    Args:
        enabled: `mix_loss`.
    """

    def __init__(self, enabled):
        self.enabled = enabled
        #: Whether class ids of rank >= 2 get a weight per id (see
        #: `compiled_with`).
        self.per_position = False
        #: The `keras_mixup.models.StepPlan` of the step being trained on,
        #: while it mixes the loss or its labels are deferred, else `None`.
        self.plan = None

    @property
    def draw(self):
        """`(lam [B], partner_index [B])` the loss of the step being
        trained on is mixed with (lam: the plan's label weights), or
        `None` (no loss mixing, or outside a training step)."""
        if self.plan is None or not self.enabled:
            return None
        return self.plan.label_weight(), self.plan.partner_index

    def targets(self, mixing, y, sample_weight):
        """A step's labels and weights, unmixed: labels encoded as
        `mixing` (the model's engine) encodes them, class ids kept
        without `num_classes`; weights as floats."""
        if y is not None:
            y = keras.tree.map_structure(self.encoder(mixing), y)
        if sample_weight is not None:
            sample_weight = keras.tree.map_structure(
                engine.float_weights, sample_weight
            )
        return y, sample_weight

    def compiled_with(self, loss):
        """Notes the compiled `loss`. On PyTorch, Keras multiplies the
        weights by a loss's mask in place (`ignore_class`), which cannot
        broadcast a weight `[B, 1]` to the mask `[B, T]`: there, unless the
        loss is CTC's (one value per sequence), the weights of class ids
        of rank >= 2 get the ids' shape, one weight per id, which the
        per-id values of sparse losses take exactly."""
        per_sequence = any("ctc" in name for _, name in _loss_names(loss))
        torch = backend.keras_backend() == "torch"
        self.per_position = torch and not per_sequence

    def encoder(self, mixing):
        """How a step encodes labels: as `mixing` (the model's engine)
        does; with loss mixing, class ids without `num_classes` kept."""
        if not self.enabled:
            return mixing.encode
        num_classes = mixing.options["num_classes"]
        return _encoder(num_classes, mixing.encode, keep_ids=True)

    @contextlib.contextmanager
    def training(self, plan):
        """The block of one training step on `plan` (its `StepPlan`): with
        loss mixing, the loss is mixed with its label weights and partners;
        with labels deferred (`plan.deferred`), the labels are (see
        `mixed_labels`). Nothing is set otherwise."""
        if self.enabled or plan.deferred:
            self.plan = plan
        try:
            yield
        finally:
            self.plan = None

    def mixed_labels(self, mixing, y, sample_weight):
        """In a step whose labels are deferred (without loss mixing), the
        labels and weights (encoded) blended with the plan's label weights,
        known once the forward pass ran, by `mixing` (the model's engine)'s
        variant; else as they are."""
        plan = self.plan
        if plan is None or self.enabled or not plan.deferred:
            return y, sample_weight
        draw = variants.Draw(plan.label_weight(), plan.partner_index, {})
        _, y, sample_weight = engine.apply_rest(
            mixing, draw, None, y, sample_weight
        )
        return y, sample_weight

    def loss(self, model_loss, compiled_loss, y, y_pred, sample_weight):
        """`model_loss(y, y_pred, lam * w) + compiled_loss(y[p], y_pred,
        (1 - lam) * w[p])` in a loss-mixing step (`model_loss` adds the
        model's own losses, once), else `model_loss` as it is."""
        if self.draw is None:
            return model_loss(y, y_pred, sample_weight)
        lam, index = self.draw
        own = _term_weights(lam, y, sample_weight, self.per_position)
        partner_y = _take(y, index)
        partner_weight = _take(sample_weight, index)
        partner = _term_weights(
            1.0 - lam, partner_y, partner_weight, self.per_position
        )
        first = model_loss(y, y_pred, own)
        second = compiled_loss(partner_y, y_pred, partner)
        cast = backend.ops().core.cast
        return first + cast(second, backend.dtype_name(first))

    def metrics_targets(self, y, sample_weight):
        """The labels and weights the compiled metrics see: in a
        loss-mixing step, those of the source each mixed example holds
        most of (its own for lam >= 0.5, else its partner's), as the argmax
        of blended labels would say."""
        if self.draw is None:
            return y, sample_weight
        lam, index = self.draw
        where = backend.ops().numpy.where
        own = lam >= 0.5

        def dominant(first, second):
            return where(_expanded(own, len(first.shape)), first, second)

        def pick(structure):
            if structure is None:
                return None
            return keras.tree.map_structure(
                dominant, structure, _take(structure, index)
            )

        return pick(y), pick(sample_weight)
