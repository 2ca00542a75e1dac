"""RegMixup (Pinto et al., NeurIPS 2022) inside `MixupModel`'s step, on
every backend.

RegMixup trains on `mixed loss + w * clean loss`. The step joins the mixed
batch and the unmixed one into one batch of twice the rows (the clean rows
are their own partners at every mix point, so they pass unmixed) and runs
Keras' own training step on it: the gradient, the optimizer and the
metrics state are Keras', on TensorFlow, JAX and PyTorch alike. The model's
`compute_loss` splits the predictions back: the mixed loss is the compiled
loss on the mixed rows plus the model's own losses (weight regularisers,
counted once), the clean loss the compiled loss on the clean rows. Batch
statistics (`BatchNormalization`) are those of both halves together.
"""

import contextlib

import keras

from keras_mixup import backend, variants
from keras_mixup.layers import MixStep

__all__ = ["RegMixup"]


def _rows(structure, start, stop):
    if structure is None:
        return None
    return keras.tree.map_structure(lambda t: t[start:stop], structure)


def _join(mixed, clean):
    concatenate = backend.ops().numpy.concatenate
    return keras.tree.map_structure(
        lambda a, b: concatenate(
            [a, backend.ops().core.cast(b, backend.dtype_name(a))], axis=0
        ),
        mixed,
        clean,
    )


def _pad_step(step, rows):
    """A layer's instruction for the joined batch: the clean rows are their
    own partners (lam 1), so the blend returns them exactly."""
    if step.draw is None:
        return step
    lam, partner_index = step.draw[:2]
    np = backend.ops().numpy
    partner_index = np.concatenate(
        [partner_index, np.arange(rows, 2 * rows, dtype="int32")], axis=0
    )
    lam = variants.pad_rows(lam, rows, 1.0)
    return MixStep(step.engine, (lam, partner_index), step.chosen, step.index)


class RegMixup:
    """The RegMixup part of one `MixupModel`.

    Args:
        weight: `clean_loss_weight`, > 0 to train with RegMixup.
    """

    def __init__(self, weight):
        self.weight = weight
        names = ("mixed_loss", "clean_loss") if weight else ()
        #: The trackers of the two parts, reported by training steps only.
        self.trackers = [keras.metrics.Mean(name=name) for name in names]
        #: The mixed rows of the batch being trained on, or `None`.
        self.rows = None

    def join(self, mixed, clean, steps, encode):
        """The joined batch `(x, y, sample_weight)`, the layers'
        instructions for it and the number of mixed rows; without RegMixup
        the mixed batch, `steps` and `None`."""
        if not self.weight:
            return mixed, steps, None
        x, y, sample_weight = mixed
        clean_x, clean_y, clean_weight = clean
        rows = backend.ops().core.shape(keras.tree.flatten(x)[0])[0]
        joined_y = None if y is None else _join(y, encode(clean_y))
        weights = None
        if sample_weight is not None or clean_weight is not None:
            ones = backend.ops().numpy.ones([rows], "float32")
            weights = _join(
                ones if sample_weight is None else sample_weight,
                ones if clean_weight is None else clean_weight,
            )
        joined = (_join(x, clean_x), joined_y, weights)
        return joined, [_pad_step(step, rows) for step in steps], rows

    @contextlib.contextmanager
    def training(self, rows):
        """The block of one training step on a joined batch whose first
        `rows` rows are mixed (`None`: no RegMixup)."""
        self.rows = rows
        try:
            yield
        finally:
            self.rows = None

    def loss(self, model_loss, compiled_loss, y, y_pred, sample_weight):
        """`mixed loss + weight * clean loss` on the joined batch, the two
        parts recorded; `model_loss` is the model's loss on given rows."""
        rows = self.rows
        mixed = model_loss(
            _rows(y, 0, rows),
            _rows(y_pred, 0, rows),
            _rows(sample_weight, 0, rows),
        )
        clean = compiled_loss(
            _rows(y, rows, None),
            _rows(y_pred, rows, None),
            _rows(sample_weight, rows, None),
        )
        for tracker, value in zip(self.trackers, (mixed, clean), strict=True):
            tracker.update_state(_unscaled(value), sample_weight=rows)
        cast = backend.ops().core.cast
        return mixed + cast(self.weight, backend.dtype_name(mixed)) * clean

    def metrics_rows(self, y, y_pred, sample_weight):
        """The rows the compiled metrics see: the mixed ones."""
        if self.rows is None:
            return y, y_pred, sample_weight
        rows = self.rows
        return (
            _rows(y, 0, rows),
            _rows(y_pred, 0, rows),
            _rows(sample_weight, 0, rows),
        )

    def logs(self, logs):
        """The logs of a step: the parts only while training."""
        if self.rows is not None:
            return logs
        names = {tracker.name for tracker in self.trackers}
        return {k: v for k, v in logs.items() if k not in names}


def _unscaled(loss):
    """A loss as the user reads it: Keras' losses divide by the number of
    replicas under `tf.distribute` (summed over replicas in the step)."""
    if backend.name() != "tensorflow":
        return loss
    from keras_mixup.backend import tf

    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return loss * tf.cast(replicas, loss.dtype) if replicas > 1 else loss
