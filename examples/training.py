"""What every example's training shares: seeds, labels, batches, compiling.

- `setup` quietens TensorFlow and seeds Python, NumPy and Keras;
- `encode_labels` one-hot encodes (and smooths) labels: the ERM
  counterpart of a `keras_mixup.Mixup` map, so one loss serves both;
- `batch_and_mix` batches a `tf.data` pipeline and mixes every batch;
- `compile_classifier` compiles a logits model for float labels;
- `add_weight_decay` puts an L2 penalty on every kernel.

Nothing here mixes anything itself: mixing is always done by the public
`keras_mixup` API, passed in as a `tf.data` map function.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

__all__ = [
    "add_weight_decay",
    "batch_and_mix",
    "compile_classifier",
    "encode_labels",
    "setup",
]


def setup(seed=None):
    """Quietens TensorFlow and, given a seed, seeds Python, NumPy and Keras."""
    tf.get_logger().setLevel("ERROR")
    if seed is not None:
        keras.utils.set_random_seed(int(seed))


def encode_labels(num_classes, label_smoothing=0.0):
    """A map function one-hot encoding (and smoothing) integer labels.

    The ERM counterpart of a `keras_mixup.Mixup` map function: both give
    float labels `[B, num_classes]`, so one loss serves both.
    """

    def encode(x, y):
        y = tf.one_hot(tf.cast(tf.reshape(y, [-1]), tf.int32), num_classes)
        if label_smoothing:
            y = y * (1.0 - label_smoothing) + label_smoothing / num_classes
        return x, y

    return encode


def batch_and_mix(
    ds,
    *,
    batch_size,
    num_classes,
    mixup=None,
    extra_maps=(),
    drop_remainder=False,
):
    """Batches a dataset of `(x, integer label)` and mixes every batch.

    Mixing is a map **after** `batch`, so partners come from the same
    batch. Maps run sequentially, so a seeded `keras_mixup.Mixup` gives a
    reproducible stream; `prefetch` overlaps them with training.

    Args:
        ds: a dataset of single examples `(x, y)`, `y` an integer label.
        batch_size: the batch size.
        num_classes: the number of classes.
        mixup: a batch map function returning float labels (a
            `keras_mixup.Mixup`), or `None` to one-hot encode (ERM).
            Defaults to `None`.
        extra_maps: further batch map functions, applied after `mixup`.
            Defaults to `()`.
        drop_remainder: drop the last, short batch. Defaults to `False`.

    Returns:
        A prefetched `tf.data.Dataset` of `(x, y)` batches, `y` float
        `[B, num_classes]`.
    """
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    ds = ds.map(mixup if mixup is not None else encode_labels(num_classes))
    for fn in extra_maps:
        ds = ds.map(fn)
    return ds.prefetch(tf.data.AUTOTUNE)


def compile_classifier(
    model, optimizer, *, metrics=(), jit_compile=False, run_eagerly=False
):
    """Compiles a logits model for float (one-hot, smoothed or mixed)
    labels with categorical cross-entropy (`run_eagerly`: the `--quick`
    runs of a few steps, which tracing would cost more than it saves)."""
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.CategoricalCrossentropy(from_logits=True),
        metrics=list(metrics),
        jit_compile=jit_compile,
        run_eagerly=run_eagerly,
    )
    return model


def add_weight_decay(model, weight_decay):
    """Puts an L2 penalty `weight_decay / 2 * ||w||^2` on every kernel.

    Its gradient is `weight_decay * w`, the weight decay of SGD in the
    paper's (PyTorch) code; biases and batch-norm parameters are left out.
    Works on any built model, `keras.applications` ones included.

    Returns:
        The model.
    """
    if weight_decay:
        regularizer = keras.regularizers.L2(weight_decay / 2)
        for variable in model.trainable_weights:
            if variable.path.endswith("kernel"):
                variable.regularizer = regularizer
    return model
