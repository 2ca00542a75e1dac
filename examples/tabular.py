"""Tabular data and fully-connected networks, trained on in-memory arrays.

- data: `load_tabular` (the UCI data sets scikit-learn ships),
  `load_digits_images`, `split`, `corrupt_labels`, `gaussian_noise`;
- the model: `mlp`;
- training and evaluation: `train_dataset`, `fit_classifier` (ERM or a
  mixup map, extra callbacks such as a mixup schedule), `EpochErrors`,
  `error_rate`, `predict_logits`.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from command_line import TABULAR  # noqa: E402
from training import (  # noqa: E402
    add_weight_decay,
    batch_and_mix,
    compile_classifier,
)

__all__ = [
    "EpochErrors",
    "TABULAR",
    "corrupt_labels",
    "error_rate",
    "fit_classifier",
    "gaussian_noise",
    "load_digits_images",
    "load_tabular",
    "mlp",
    "predict_logits",
    "split",
    "train_dataset",
]


def load_tabular(name):
    """Loads a data set scikit-learn ships.

    Args:
        name: one of `TABULAR`: "iris", "wine", "breast_cancer" (UCI
            data sets) or "digits" (UCI optical recognition of handwritten
            digits, 8x8 images flattened to 64 features in [0, 16]).

    Returns:
        `(x, y, num_classes)`: float32 features `[N, D]` and int32 labels.
    """
    from sklearn import datasets

    loaders = {
        "iris": datasets.load_iris,
        "wine": datasets.load_wine,
        "breast_cancer": datasets.load_breast_cancer,
        "digits": datasets.load_digits,
    }
    if name not in loaders:
        raise ValueError(f"`name` must be one of {TABULAR}; received {name!r}.")
    x, y = loaders[name](return_X_y=True)
    return x.astype("float32"), y.astype("int32"), int(y.max()) + 1


def load_digits_images():
    """scikit-learn's 8x8 digits as images `[N, 8, 8, 1]` in [0, 1]."""
    x, y, num_classes = load_tabular("digits")
    return (x / 16.0).reshape(-1, 8, 8, 1).astype("float32"), y, num_classes


def split(x, y, *, test_fraction=0.2, seed=0, standardize=False):
    """A stratified train/test split, optionally standardised.

    Args:
        x: features or images, first axis the examples.
        y: integer labels.
        test_fraction: the fraction held out for testing. Defaults to
            `0.2`.
        seed: the split's random seed. Defaults to `0`.
        standardize: scale features to zero mean and unit variance with the
            training set's statistics. Defaults to `False`.

    Returns:
        `(x_train, y_train, x_test, y_test)`.
    """
    from sklearn.model_selection import train_test_split

    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_fraction, random_state=seed, stratify=y
    )
    if standardize:
        mean = x_train.mean(axis=0)
        std = x_train.std(axis=0)
        std[std == 0] = 1.0
        x_train = (x_train - mean) / std
        x_test = (x_test - mean) / std
    return (
        x_train.astype("float32"),
        y_train,
        x_test.astype("float32"),
        y_test,
    )


def corrupt_labels(y, fraction, num_classes, seed):
    """Replaces a fraction of the labels by uniformly random classes.

    As in the paper (and Zhang et al. 2017), a replaced label is drawn from
    all classes, so about 1 in `num_classes` keeps its true value.

    Args:
        y: integer labels.
        fraction: the fraction of examples whose label is replaced.
        num_classes: the number of classes.
        seed: the random seed.

    Returns:
        `(noisy_labels, corrupted)`: the new labels and a boolean mask of
        the examples whose label was replaced.
    """
    rng = np.random.default_rng(seed)
    y = np.asarray(y)
    count = int(round(fraction * len(y)))
    corrupted = np.zeros(len(y), bool)
    corrupted[rng.choice(len(y), size=count, replace=False)] = True
    noisy = y.copy()
    noisy[corrupted] = rng.integers(0, num_classes, size=count)
    return noisy.astype(y.dtype), corrupted


def gaussian_noise(sigma, seed=0):
    """A map function adding N(0, sigma^2) noise to the inputs of a batch.

    Applied after a label-encoding map (it expects float inputs). A
    baseline for ablations: input noise instead of mixup.
    """
    generator = tf.random.Generator.from_seed(seed)

    def add_noise(x, y):
        noise_seed = generator.uniform_full_int([2], dtype=tf.int64)
        noise_seed = tf.cast(noise_seed % (2**31 - 1), tf.int32)
        noise = tf.random.stateless_normal(
            tf.shape(x), seed=noise_seed, stddev=sigma, dtype=x.dtype
        )
        return x + noise, y

    return add_noise


def mlp(
    input_shape,
    num_classes,
    *,
    hidden=(128, 128),
    dropout=0.0,
    weight_decay=0.0,
    name="mlp",
):
    """A fully-connected ReLU network that outputs logits.

    Args:
        input_shape: the shape of one example (flattened first).
        num_classes: the number of outputs.
        hidden: the width of each hidden layer. Defaults to `(128, 128)`,
            the paper's UCI network.
        dropout: the dropout rate after each hidden layer. Defaults to
            `0.0`.
        weight_decay: see `add_weight_decay`. Defaults to `0.0`.
        name: the model name. Defaults to `"mlp"`.
    """
    inputs = keras.Input(tuple(input_shape))
    h = keras.layers.Flatten()(inputs)
    for width in hidden:
        h = keras.layers.Dense(width, activation="relu")(h)
        if dropout:
            h = keras.layers.Dropout(dropout)(h)
    outputs = keras.layers.Dense(num_classes, dtype="float32")(h)
    model = keras.Model(inputs, outputs, name=name)
    return add_weight_decay(model, weight_decay)


def train_dataset(
    x, y, *, batch_size, num_classes, mixup=None, seed=0, extra_maps=()
):
    """A shuffled, batched training `tf.data.Dataset` of one-hot labels.

    Args:
        x: the training inputs (an array or a `tf.data`-compatible
            structure).
        y: the integer training labels.
        batch_size: the batch size.
        num_classes: the number of classes.
        mixup: a map function applied to every batch, such as
            `keras_mixup.Mixup(alpha, num_classes=num_classes, seed=seed)`,
            returning float labels; `None` one-hot encodes the labels (ERM).
            Defaults to `None`.
        seed: the shuffle seed. Defaults to `0`.
        extra_maps: further batch map functions, applied after `mixup`.
            Defaults to `()`.

    Returns:
        A `tf.data.Dataset` of `(x, y)` batches, reshuffled every epoch.
    """
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    ds = ds.shuffle(len(y), seed=seed, reshuffle_each_iteration=True)
    return batch_and_mix(
        ds,
        batch_size=batch_size,
        num_classes=num_classes,
        mixup=mixup,
        extra_maps=extra_maps,
    )


def error_rate(model, x, y, batch_size=1024):
    """The top-1 error of a logits model on `(x, y)`, in percent."""
    logits = predict_logits(model, x, batch_size)
    return float(100.0 * np.mean(np.argmax(logits, axis=-1) != np.asarray(y)))


def predict_logits(model, x, batch_size=1024):
    """The model's outputs on `x` (inference mode), as a NumPy array."""
    outputs = [
        np.asarray(model.predict_on_batch(x[i : i + batch_size]))
        for i in range(0, len(x), batch_size)
    ]
    return np.concatenate(outputs)


class EpochErrors(keras.callbacks.Callback):
    """Records the top-1 error (percent) on named sets after every epoch.

    Args:
        sets: a dict `name -> (x, y)` of arrays and integer labels.

    Attributes:
        errors: a dict `name -> list` of errors, one per epoch.
    """

    def __init__(self, sets):
        super().__init__()
        self.sets = dict(sets)
        self.errors = {name: [] for name in self.sets}

    def on_epoch_end(self, epoch, logs=None):
        for name, (x, y) in self.sets.items():
            self.errors[name].append(error_rate(self.model, x, y))


def fit_classifier(
    model,
    x_train,
    y_train,
    *,
    num_classes,
    epochs,
    batch_size,
    mixup=None,
    seed=0,
    optimizer=None,
    eval_sets=None,
    callbacks=(),
    extra_maps=(),
    verbose=0,
    run_eagerly=False,
):
    """Trains a logits classifier on arrays, ERM or with a mixup map.

    Args:
        model: an uncompiled Keras model giving logits (or any model, such
            as a mixup wrapper, that trains on float labels).
        x_train: the training inputs.
        y_train: the integer training labels.
        num_classes: the number of classes.
        epochs: the number of epochs.
        batch_size: the batch size.
        mixup: a batch map function (a `keras_mixup.Mixup`), or `None` for
            ERM. Defaults to `None`.
        seed: the shuffle seed. Defaults to `0`.
        optimizer: a Keras optimizer. Defaults to Adam with learning rate
            1e-3.
        eval_sets: a dict `name -> (x, y)` evaluated after every epoch.
            Defaults to `None`.
        callbacks: more Keras callbacks (such as a mixup schedule).
            Defaults to `()`.
        extra_maps: batch map functions applied after the mixing (such as
            `gaussian_noise`). Defaults to `()`.
        verbose: Keras fit verbosity. Defaults to `0`.
        run_eagerly: train (and predict) without tracing the steps, for
            runs of a few steps (`--quick`). Defaults to `False`.

    Returns:
        A dict `name -> list` of per-epoch errors (percent) for every set
        in `eval_sets`, plus `"loss"`, the per-epoch training loss.
    """
    if optimizer is None:
        optimizer = keras.optimizers.Adam(1e-3)
    compile_classifier(model, optimizer, run_eagerly=run_eagerly)
    recorder = EpochErrors(eval_sets or {})
    ds = train_dataset(
        x_train,
        y_train,
        batch_size=batch_size,
        num_classes=num_classes,
        mixup=mixup,
        seed=seed,
        extra_maps=extra_maps,
    )
    history = model.fit(
        ds,
        epochs=epochs,
        callbacks=[recorder, *callbacks],
        verbose=verbose,
        shuffle=False,  # the dataset reshuffles itself every epoch
    )
    return {**recorder.errors, "loss": list(history.history["loss"])}
