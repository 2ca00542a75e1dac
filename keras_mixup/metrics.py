"""`ExpectedCalibrationError`: calibration measured as a stateful metric.

Written with `keras.ops` only, so it runs on every Keras 3 backend; the
module imports no TensorFlow itself.
"""

import collections

import keras
from keras import ops

from keras_mixup import backend, checks

__all__ = ["ExpectedCalibrationError"]


def _static_shape(tensor):
    return tuple(tensor.shape)


def _check_batch(name, shape, pred_shape):
    """Raises if the static batch sizes of `name` and `y_pred` differ."""
    if shape[0] is not None and pred_shape[0] is not None:
        if shape[0] != pred_shape[0]:
            raise ValueError(
                f"`{name}` and `y_pred` must have the same batch size; "
                f"received `{name}` of shape {shape} and `y_pred` of shape "
                f"{pred_shape}."
            )


#: Per example ([B] each): the confidence, the predicted and the true class.
_Decisions = collections.namedtuple(
    "_Decisions", ["confidence", "predicted", "true"]
)


def _binary_decisions(y_true, y_pred, from_logits, dtype):
    """Binary: `y_pred` holds p(class 1); the same as the rows [1-p, p]."""
    pred_shape = _static_shape(y_pred)
    true_shape = _static_shape(y_true)
    if len(true_shape) not in (1, 2) or true_shape[1:] not in ((), (1,)):
        raise ValueError(
            "With one probability per example (`y_pred` of shape [B] or "
            "[B, 1]), `y_true` must be of shape [B] or [B, 1] (0/1 labels, "
            f"or soft labels thresholded at 0.5); received `y_true` of shape "
            f"{true_shape} and `y_pred` of shape {pred_shape}."
        )
    _check_batch("y_true", true_shape, pred_shape)
    p = ops.reshape(ops.cast(y_pred, dtype), (-1,))
    if from_logits:
        p = ops.sigmoid(p)
    # argmax of [1 - p, p] takes class 0 on a tie, as TFP's argmax does.
    predicted = ops.cast(ops.greater(p, 0.5), "int32")
    y_true = ops.cast(ops.reshape(y_true, (-1,)), dtype)
    true = ops.cast(ops.greater(y_true, 0.5), "int32")
    return _Decisions(ops.maximum(p, 1.0 - p), predicted, true)


def _multiclass_true(y_true, pred_shape):
    """Class ids [B] from ids [B] or [B, 1], or one-hot/soft [B, K]."""
    true_shape = _static_shape(y_true)
    num_classes = pred_shape[-1]
    if len(true_shape) == 1 or (len(true_shape) == 2 and true_shape[1] == 1):
        _check_batch("y_true", true_shape, pred_shape)
        return ops.cast(ops.reshape(y_true, (-1,)), "int32")
    if len(true_shape) == 2 and true_shape[1] == num_classes:
        _check_batch("y_true", true_shape, pred_shape)
        return ops.cast(ops.argmax(y_true, axis=-1), "int32")
    raise ValueError(
        "`y_true` must be class ids of shape [B] or [B, 1], or one-hot or "
        f"soft labels of shape [B, {num_classes}] like `y_pred`; received "
        f"`y_true` of shape {true_shape} and `y_pred` of shape {pred_shape}."
    )


def _decisions(y_true, y_pred, from_logits, dtype):
    """Confidence, predicted and true class of each example, checked."""
    y_true = ops.convert_to_tensor(y_true)
    y_pred = ops.convert_to_tensor(y_pred)
    pred_shape = _static_shape(y_pred)
    if len(pred_shape) == 1 or (len(pred_shape) == 2 and pred_shape[1] == 1):
        return _binary_decisions(y_true, y_pred, from_logits, dtype)
    if len(pred_shape) != 2:
        raise ValueError(
            "`y_pred` must be of shape [B, K] (K class probabilities, or "
            "logits with `from_logits=True`), or [B] or [B, 1] (the "
            f"probability of class 1); received shape {pred_shape}."
        )
    true = _multiclass_true(y_true, pred_shape)
    y_pred = ops.cast(y_pred, dtype)
    probs = ops.softmax(y_pred, axis=-1) if from_logits else y_pred
    predicted = ops.cast(ops.argmax(y_pred, axis=-1), "int32")
    return _Decisions(ops.max(probs, axis=-1), predicted, true)


def _weights(sample_weight, like, dtype):
    """`sample_weight` (None, a scalar, [B] or [B, 1]) as a [B] tensor."""
    if sample_weight is None:
        return ops.ones_like(like)
    sample_weight = ops.convert_to_tensor(sample_weight)
    shape = _static_shape(sample_weight)
    if len(shape) > 2 or (len(shape) == 2 and shape[1] != 1):
        raise ValueError(
            "`sample_weight` must be a scalar, or of shape [B] or [B, 1]; "
            f"received shape {shape}."
        )
    if shape:
        _check_batch("sample_weight", shape, _static_shape(like))
    weights = ops.reshape(ops.cast(sample_weight, dtype), (-1,))
    return ops.broadcast_to(weights, ops.shape(like))


#: What `update_state` refuses, in the order of the `refused` counts.
_REFUSED = (
    "`y_pred` must hold probabilities in [0, 1] (logits need "
    "`from_logits=True`), finite logits with `from_logits=True`",
    "`y_true` must hold class ids in [0, K) (whole numbers), or labels in "
    "[0, 1] for one probability per example",
    "`sample_weight` must hold finite weights >= 0",
)


def _refused_predictions(y_pred, from_logits):
    """Per example `[B]`: predictions no calibration error can take."""
    flat = ops.reshape(y_pred, (ops.shape(y_pred)[0], -1))
    bad = ops.logical_not(ops.isfinite(flat))
    if not from_logits:
        bad = ops.logical_or(bad, ops.logical_or(flat < 0, flat > 1))
    return ops.any(bad, axis=-1)


def _refused_labels(y_true, y_pred, dtype):
    """Per example `[B]`: labels outside what `_decisions` reads."""
    pred_shape = _static_shape(y_pred)
    binary = len(pred_shape) == 1 or pred_shape[-1] == 1
    values = ops.cast(y_true, dtype)
    values = ops.reshape(values, (ops.shape(values)[0], -1))
    if binary:
        bad = ops.logical_or(values < 0, values > 1)
    elif values.shape[-1] == 1:
        bad = ops.logical_or(values < 0, values >= pred_shape[-1])
        bad = ops.logical_or(bad, ops.not_equal(values, ops.floor(values)))
    else:
        bad = ops.logical_or(values < 0, values > 1)
    bad = ops.logical_or(bad, ops.logical_not(ops.isfinite(values)))
    return ops.any(bad, axis=-1)


def _refused_weights(sample_weight, like, dtype):
    """Per example `[B]`: NaN, infinite or negative weights."""
    weights = _weights(sample_weight, like, dtype)
    bad = ops.logical_not(ops.isfinite(weights))
    return ops.logical_or(bad, weights < 0), weights


def _is_symbolic(tensor):
    """Whether `tensor` is traced (its values unknown here)."""
    machinery = backend.keras_backend()
    if machinery == "tensorflow":
        import tensorflow as tf

        return not tf.executing_eagerly()
    if machinery == "jax":
        import jax

        return isinstance(tensor, jax.core.Tracer)
    # PyTorch: Keras describes a call with tensors on the "meta" device.
    return bool(getattr(tensor, "is_meta", False))


@keras.saving.register_keras_serializable(package="keras_mixup")
class ExpectedCalibrationError(keras.metrics.Metric):
    """Expected calibration error (ECE), accumulated over batches.

    Each prediction falls in one of `num_bins` equal-width bins of its
    confidence (the largest probability), and the metric reports
    `sum_b (count_b / N) * |accuracy_b - confidence_b|` over every batch
    since `reset_state()`, as `tfp.stats.expected_calibration_error`.
    `y_pred` is `[B, K]` probabilities (or logits), or `[B]` / `[B, 1]`
    p(class 1); `y_true` is class ids, or one-hot or soft labels. See the
    guide "Calibration, regression and RegMixup".

    Args:
        num_bins: the number of bins, an int >= 1. Defaults to `15`.
        from_logits: whether `y_pred` holds logits. Defaults to `False`.
        name: the metric's name. Defaults to
            `"expected_calibration_error"`.
        dtype: the dtype of the accumulators and the result. Defaults to
            `None` (Keras's float type).

    Returns:
        A `keras.metrics.Metric`; `result()` is a scalar in [0, 1].

    Raises:
        ValueError: for a bad `num_bins` or `from_logits`; in
            `update_state`, for a `y_pred` not of rank 1 or 2, or a
            `y_true` or `sample_weight` that does not fit it.

    Example:

    ```python
    metric = keras_mixup.metrics.ExpectedCalibrationError(num_bins=10)
    # Right at 0.9 and 0.65, wrong at 0.75: (0.1 + 0.35 + 0.75) / 3 = 0.4.
    metric.update_state([0, 1, 1], [[0.9, 0.1], [0.35, 0.65], [0.75, 0.25]])
    assert abs(float(metric.result()) - 0.4) < 1e-6
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    ece = keras_mixup.metrics.ExpectedCalibrationError(from_logits=True)
    model.compile("adam", "mse", metrics=[ece])  # logged by fit, evaluate
    logs = model.evaluate(np.random.rand(8, 4), np.eye(3)[np.arange(8) % 3],
                          return_dict=True, verbose=0)
    ```
    """

    def __init__(
        self,
        num_bins=15,
        from_logits=False,
        name="expected_calibration_error",
        dtype=None,
    ):
        super().__init__(name=name, dtype=dtype)
        self.num_bins = checks.check_int(num_bins, "num_bins", minimum=1)
        self.from_logits = checks.check_bool(from_logits, "from_logits")
        self.bin_counts = self._bin_variable("bin_counts")
        self.bin_confidences = self._bin_variable("bin_confidences")
        self.bin_correct = self._bin_variable("bin_correct")
        #: Per kind of refused input (see `_REFUSED`), how many examples
        #: `update_state` left out since the last `reset_state()`.
        self.refused = self.add_variable(
            shape=(len(_REFUSED),),
            initializer="zeros",
            dtype=self.dtype,
            name="refused",
        )

    def _bin_variable(self, name):
        return self.add_variable(
            shape=(self.num_bins,),
            initializer="zeros",
            dtype=self.dtype,
            name=name,
        )

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Adds a batch to the per-bin sums.

        Args:
            y_true: class ids `[B]` or `[B, 1]`, or one-hot or soft labels
                `[B, K]`; 0/1 labels `[B]` or `[B, 1]` in the binary case.
            y_pred: probabilities (or logits) `[B, K]`, or the probability
                of class 1 `[B]` or `[B, 1]`.
            sample_weight: a weight per example, `[B]`, `[B, 1]` or a
                scalar. Defaults to `None` (every example weighs 1).

        Raises:
            ValueError: for a `y_pred` not of rank 1 or 2, or a `y_true` or
                `sample_weight` whose shape does not fit `y_pred`.
        """
        y_true = ops.convert_to_tensor(y_true)
        y_pred = ops.convert_to_tensor(y_pred)
        decided = _decisions(y_true, y_pred, self.from_logits, self.dtype)
        confidence = decided.confidence
        bad_weights, weights = _refused_weights(
            sample_weight, confidence, self.dtype
        )
        refused = ops.stack(
            [
                _refused_predictions(y_pred, self.from_logits),
                _refused_labels(y_true, y_pred, self.dtype),
                bad_weights,
            ]
        )
        self.refused.assign_add(ops.sum(ops.cast(refused, self.dtype), 1))
        # Refused examples count nowhere: `result` reports them instead.
        left_out = ops.any(refused, axis=0)
        weights = ops.where(left_out, 0.0, weights)
        confidence = ops.where(left_out, 0.0, confidence)
        correct = ops.cast(
            ops.equal(decided.predicted, decided.true), self.dtype
        )
        bins = ops.floor(confidence * float(self.num_bins))
        bins = ops.clip(bins, 0.0, float(self.num_bins - 1))
        # One-hot sums rather than a matmul: exact float32 on every device
        # (matmuls may run in TF32 on GPUs).
        in_bin = ops.one_hot(
            ops.cast(bins, "int32"), self.num_bins, dtype=self.dtype
        )
        in_bin = in_bin * weights[:, None]
        self.bin_counts.assign_add(ops.sum(in_bin, axis=0))
        self.bin_confidences.assign_add(
            ops.sum(in_bin * confidence[:, None], axis=0)
        )
        self.bin_correct.assign_add(ops.sum(in_bin * correct[:, None], axis=0))

    def result(self):
        """The ECE of every example since the last `reset_state()`.

        Raises:
            ValueError: where the values are known (eagerly, and at the
                end of a `fit` epoch or an `evaluate`), if `update_state`
                refused an example (see the class docstring); inside a
                traced step the result is then NaN.
        """
        # (count_b / N) * |correct_b / count_b - confidences_b / count_b|
        # = |correct_b - confidences_b| / N; an empty bin adds 0.
        total = ops.sum(self.bin_counts)
        gaps = ops.sum(ops.abs(self.bin_correct - self.bin_confidences))
        value = ops.divide_no_nan(gaps, total)
        refused = ops.convert_to_tensor(self.refused)
        if not _is_symbolic(refused):
            _raise_refused(ops.convert_to_numpy(refused))
        return ops.where(ops.sum(refused) > 0, float("nan"), value)

    def reset_state(self):
        """Empties every bin."""
        for variable in (
            self.bin_counts,
            self.bin_confidences,
            self.bin_correct,
            self.refused,
        ):
            variable.assign(ops.zeros(variable.shape, dtype=variable.dtype))

    def __repr__(self):
        return (
            f"ExpectedCalibrationError(num_bins={self.num_bins}, "
            f"from_logits={self.from_logits}, name={self.name!r})"
        )

    def get_config(self):
        """Returns the constructor arguments."""
        config = super().get_config()
        config.update(num_bins=self.num_bins, from_logits=self.from_logits)
        return config


def _raise_refused(counts):
    """Raises for the refused examples `counts` (per kind) if any."""
    found = [
        f"{message} ({int(count)} examples)"
        for message, count in zip(_REFUSED, counts, strict=True)
        if count > 0
    ]
    if found:
        raise ValueError(
            "ExpectedCalibrationError left out examples since the last "
            "reset_state(), whose calibration error is undefined: "
            + "; ".join(found)
            + ". Fix the inputs (or reset the metric)."
        )
