"""Shared code of the examples: arguments, data, models, training, tables.

Every example script imports this module (it sits next to them, so
`python examples/<name>.py` finds it) and keeps only what is specific to
its experiment. Nothing here mixes anything itself: mixing is always done
by the public `keras_mixup` API, passed in as a `tf.data` map function.

Sections:

- set-up: `setup`, `pyplot`, `make_parser`, `figure_path`;
- data: `load_tabular`, `load_digits_images`, `split`, `corrupt_labels`,
  `train_dataset`, `batch_and_mix`, `encode_labels`, `gaussian_noise`;
- TFDS images: `load_tfds`, `decode_image`, `normalize`, `pad_crop_flip`,
  `random_resized_crop`, `center_crop`;
- models: `mlp`, `preact_resnet18`, `preact_resnet`, `wide_resnet`,
  `resnet50`, `build_image_model` (`IMAGE_MODELS`), `add_weight_decay`;
- training on arrays: `compile_classifier`, `fit_classifier`,
  `EpochErrors`, `error_rate`, `predict_logits`, `median_of_last`;
- training on TFDS pipelines: `add_image_flags`, `mixed_precision_policy`,
  `distribution_strategy`, `WarmupStepDecay`, `fit_image_classifier`;
- results: `mean_std`, `format_mean_std`, `format_table`, `print_table`.

Built to take the examples still to come: `fit_classifier` and
`fit_image_classifier` train any Keras model on float labels (a mixup model
wrapper too) and take extra callbacks (a mixup schedule); the ablation's
baselines are here (`encode_labels(label_smoothing=...)`, `gaussian_noise`,
`add_weight_decay`, `median_of_last` over the per-epoch errors that
`EpochErrors` records).
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse  # noqa: E402
import math  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

#: Where figures go unless `--figures` says otherwise.
FIGURES_DIR = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "figures"
)

#: The data sets scikit-learn ships that the examples use.
TABULAR = ("iris", "wine", "breast_cancer", "digits")


# --------------------------------------------------------------------------
# Set-up
# --------------------------------------------------------------------------


def setup(seed=None):
    """Quietens TensorFlow and, given a seed, seeds Python, NumPy and Keras."""
    tf.get_logger().setLevel("ERROR")
    if seed is not None:
        keras.utils.set_random_seed(int(seed))


def pyplot():
    """Returns `matplotlib.pyplot` on the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def make_parser(description, *, epochs, seeds, alpha, batch_size):
    """An argument parser with the flags every example shares.

    Args:
        description: the script's one-line description.
        epochs: the default number of epochs (`None`: no `--epochs`).
        seeds: the default number of seeds, runs per configuration
            (`None`: no `--seeds`).
        alpha: the default mixup alpha (a float, or a list for `nargs`).
        batch_size: the default batch size.

    Returns:
        An `argparse.ArgumentParser` with `--epochs`, `--seeds`, `--alpha`,
        `--batch-size`, `--quick`, `--figures` and `--verbose`; add the
        script's own flags to it.
    """
    parser = argparse.ArgumentParser(description=description)
    if epochs is not None:
        parser.add_argument(
            "--epochs", type=int, default=epochs, help="training epochs"
        )
    if seeds is not None:
        parser.add_argument(
            "--seeds",
            type=int,
            default=seeds,
            help="number of runs per configuration (seeds 0, 1, ...)",
        )
    if isinstance(alpha, (list, tuple)):
        parser.add_argument(
            "--alpha",
            type=float,
            nargs="+",
            default=list(alpha),
            help="mixup Beta(alpha, alpha) concentration(s)",
        )
    else:
        parser.add_argument(
            "--alpha",
            type=float,
            default=alpha,
            help="mixup Beta(alpha, alpha) concentration",
        )
    parser.add_argument(
        "--batch-size", type=int, default=batch_size, help="batch size"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a tiny configuration that runs in seconds (for the tests)",
    )
    parser.add_argument(
        "--figures",
        default=None,
        help="directory for the PNG figures ('' for none); defaults to "
        "examples/figures, or none with --quick",
    )
    parser.add_argument(
        "--verbose", type=int, default=0, help="Keras fit verbosity"
    )
    return parser


def figure_path(args, name):
    """The path of figure `name` under `args.figures`, or `None` if off.

    Without `--figures`, figures go to `FIGURES_DIR`, except in `--quick`
    runs, which save none (so they never overwrite the real ones).
    """
    directory = args.figures
    if directory is None:
        directory = None if args.quick else FIGURES_DIR
    if not directory:
        return None
    os.makedirs(directory, exist_ok=True)
    return os.path.join(directory, name)


# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------


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


# --------------------------------------------------------------------------
# Image data sets from TensorFlow Datasets (CIFAR, ImageNet)
# --------------------------------------------------------------------------


def load_tfds(name, split, *, data_dir=None, shuffle_files=False, decode=True):
    """Loads `(image, label)` pairs with `tfds.load`.

    Args:
        name: the TFDS name ("cifar10", "cifar100", "imagenet2012", ...).
        split: the split ("train", "test", "validation", "train[:10%]").
        data_dir: the TFDS data directory. Defaults to `None` (TFDS'
            default, `~/tensorflow_datasets`).
        shuffle_files: shuffle the input files. Defaults to `False`.
        decode: decode the images; `False` keeps the encoded bytes (decode
            them with `decode_image` after shuffling, so a shuffle buffer
            holds small JPEGs rather than full images). Defaults to `True`.

    Returns:
        `(ds, num_examples, num_classes)`.
    """
    import tensorflow_datasets as tfds

    ds, info = tfds.load(
        name,
        split=split,
        data_dir=data_dir,
        as_supervised=True,
        with_info=True,
        shuffle_files=shuffle_files,
        decoders=None if decode else {"image": tfds.decode.SkipDecoding()},
    )
    num_examples = int(ds.cardinality())
    if num_examples < 0:  # unknown: ask the metadata
        num_examples = info.splits[split].num_examples
    return ds, num_examples, info.features["label"].num_classes


def decode_image(encoded):
    """Encoded image bytes (JPEG, PNG) -> a uint8 `[H, W, 3]` image."""
    image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
    return tf.ensure_shape(image, [None, None, 3])


def normalize(image, mean, std):
    """uint8 image -> float32, per-channel `(image / 255 - mean) / std`."""
    image = tf.cast(image, tf.float32) / 255.0
    return (image - tf.constant(mean)) / tf.constant(std)


def pad_crop_flip(image, padding=4):
    """CIFAR augmentation: zero-pad by `padding`, random crop back to the
    original size, random horizontal flip."""
    height, width, channels = image.shape
    image = tf.pad(image, [[padding, padding], [padding, padding], [0, 0]])
    image = tf.image.random_crop(image, [height, width, channels])
    return tf.image.random_flip_left_right(image)


def random_resized_crop(image, size, area=(0.08, 1.0), ratio=(3 / 4, 4 / 3)):
    """ImageNet augmentation: a random crop of 8% to 100% of the area and
    3/4 to 4/3 aspect ratio, resized to `size` x `size`, randomly flipped
    (the Inception / ResNet training crop)."""
    begin, crop_size, _ = tf.image.sample_distorted_bounding_box(
        tf.shape(image),
        bounding_boxes=tf.constant([0.0, 0.0, 1.0, 1.0], shape=[1, 1, 4]),
        min_object_covered=0.1,
        aspect_ratio_range=ratio,
        area_range=area,
        max_attempts=10,
        use_image_if_no_bounding_boxes=True,
    )
    image = tf.slice(image, begin, crop_size)
    image = tf.image.resize(image, [size, size], method="bilinear")
    image = tf.image.random_flip_left_right(image)
    return tf.cast(tf.clip_by_value(image, 0, 255), tf.uint8)


def center_crop(image, size, resize_ratio=256 / 224):
    """ImageNet evaluation: resize the shorter side to `size *
    resize_ratio` (256 for 224), then take the central `size` x `size`."""
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = size * resize_ratio / tf.reduce_min(shape)
    new_shape = tf.cast(tf.round(shape * scale), tf.int32)
    image = tf.image.resize(image, new_shape, method="bilinear")
    top = (new_shape[0] - size) // 2
    left = (new_shape[1] - size) // 2
    image = image[top : top + size, left : left + size]
    image = tf.ensure_shape(image, [size, size, None])
    return tf.cast(tf.clip_by_value(image, 0, 255), tf.uint8)


# --------------------------------------------------------------------------
# Image-classifier training: precision, devices, schedule, loop
# --------------------------------------------------------------------------


def add_image_flags(parser, *, model, learning_rate, weight_decay):
    """Adds the flags the CIFAR and ImageNet examples share."""
    parser.add_argument(
        "--model",
        default=model,
        choices=sorted(IMAGE_MODELS),
        help="the network",
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        default=["erm", "mixup"],
        choices=["erm", "mixup"],
        help="train with ERM, with mixup, or both",
    )
    parser.add_argument("--data-dir", default=None, help="TFDS data directory")
    parser.add_argument(
        "--learning-rate",
        type=float,
        default=learning_rate,
        help="peak SGD learning rate",
    )
    parser.add_argument(
        "--weight-decay", type=float, default=weight_decay, help="L2 factor"
    )
    parser.add_argument(
        "--mixed-precision",
        action="store_true",
        help="mixed_float16 on GPU (mixed_bfloat16 elsewhere)",
    )
    parser.add_argument(
        "--distribute",
        action="store_true",
        help="train on every local GPU with tf.distribute.MirroredStrategy",
    )
    parser.add_argument(
        "--jit-compile",
        action="store_true",
        help="compile the training step with XLA",
    )
    parser.add_argument(
        "--checkpoint-dir",
        default=None,
        help="back up every epoch here and resume from it "
        "(keras.callbacks.BackupAndRestore)",
    )


def mixed_precision_policy(enabled):
    """The Keras dtype policy name `--mixed-precision` asks for."""
    if not enabled:
        return "float32"
    if tf.config.list_physical_devices("GPU"):
        return "mixed_float16"
    return "mixed_bfloat16"


def distribution_strategy(enabled):
    """`MirroredStrategy` over the local devices, or the default strategy."""
    if enabled:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


class WarmupStepDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up, then the learning rate divided by 10 at each
    boundary (Goyal et al. 2017 for ImageNet; no warm-up for CIFAR).

    Args:
        learning_rate: the peak learning rate.
        steps_per_epoch: optimizer steps in an epoch.
        boundaries: the epochs at which the rate is divided by 10.
        warmup_epochs: epochs of linear warm-up from 0. Defaults to `0`.
    """

    def __init__(
        self, learning_rate, steps_per_epoch, boundaries, warmup_epochs=0
    ):
        self.learning_rate = float(learning_rate)
        self.steps_per_epoch = int(steps_per_epoch)
        self.boundaries = [int(b) for b in boundaries]
        self.warmup_epochs = float(warmup_epochs)

    def __call__(self, step):
        epoch = tf.cast(step, tf.float32) / self.steps_per_epoch
        drops = tf.add_n(
            [tf.cast(epoch >= b, tf.float32) for b in self.boundaries]
            or [tf.constant(0.0)]
        )
        rate = self.learning_rate * tf.pow(0.1, drops)
        if self.warmup_epochs:
            rate *= tf.minimum(1.0, (epoch + 1e-3) / self.warmup_epochs)
        return rate

    def get_config(self):
        return {
            "learning_rate": self.learning_rate,
            "steps_per_epoch": self.steps_per_epoch,
            "boundaries": self.boundaries,
            "warmup_epochs": self.warmup_epochs,
        }


def fit_image_classifier(
    build_model,
    train_ds,
    val_ds,
    *,
    epochs,
    steps_per_epoch,
    schedule,
    strategy,
    top5=False,
    momentum=0.9,
    optimizer=None,
    callbacks=(),
    jit_compile=False,
    checkpoint_dir=None,
    verbose=0,
):
    """Trains a classifier on `tf.data` pipelines, validating every epoch.

    Made for image-like inputs (CIFAR, ImageNet, spectrograms): the model
    is built and compiled under `strategy.scope()`, trained with SGD (or
    `optimizer`) on float labels.

    Args:
        build_model: a function of no argument returning the (uncompiled)
            logits model; called inside `strategy.scope()`.
        train_ds: batched training data with float (one-hot or mixed)
            labels.
        val_ds: batched validation data with one-hot labels.
        epochs: the number of epochs.
        steps_per_epoch: training batches per epoch.
        schedule: the learning rate (a float or a schedule).
        strategy: a `tf.distribute.Strategy`.
        top5: record the top-5 error as well. Defaults to `False`.
        momentum: SGD (Nesterov-free) momentum. Defaults to `0.9`.
        optimizer: a function of no argument returning the optimizer
            (called inside the scope), instead of SGD with `schedule` and
            `momentum`. Defaults to `None`.
        callbacks: more Keras callbacks (such as a mixup schedule).
            Defaults to `()`.
        jit_compile: XLA-compile the train step. Defaults to `False`.
        checkpoint_dir: a directory for `BackupAndRestore`, or `None`.
            Defaults to `None`.
        verbose: Keras fit verbosity. Defaults to `0`.

    Returns:
        A dict of per-epoch lists: `"top1"` (and `"top5"`) validation
        error in percent, and `"loss"`, the training loss.
    """
    with strategy.scope():
        model = build_model()
        metrics = [keras.metrics.CategoricalAccuracy(name="top1")]
        if top5:
            metrics.append(
                keras.metrics.TopKCategoricalAccuracy(5, name="top5")
            )
        if optimizer is None:
            built = keras.optimizers.SGD(schedule, momentum=momentum)
        else:
            built = optimizer()
        compile_classifier(
            model, built, metrics=metrics, jit_compile=jit_compile
        )
    callbacks = list(callbacks)
    if checkpoint_dir:
        callbacks.append(keras.callbacks.BackupAndRestore(checkpoint_dir))
    history = model.fit(
        train_ds,
        validation_data=val_ds,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        callbacks=callbacks,
        verbose=verbose,
        shuffle=False,  # the dataset shuffles itself
    ).history
    result = {
        "top1": [100.0 * (1.0 - a) for a in history["val_top1"]],
        "loss": list(history["loss"]),
    }
    if top5:
        result["top5"] = [100.0 * (1.0 - a) for a in history["val_top5"]]
    return result


# --------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------


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


def _conv(filters, kernel_size, strides=1):
    return keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding="same",
        use_bias=False,
        kernel_initializer="he_normal",
    )


def _bn_relu(x):
    x = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5)(x)
    return keras.layers.ReLU()(x)


def _preact_block(x, filters, strides, dropout=0.0):
    """A pre-activation basic block (He et al., "Identity mappings")."""
    pre = _bn_relu(x)
    if strides != 1 or x.shape[-1] != filters:
        shortcut = _conv(filters, 1, strides)(pre)
    else:
        shortcut = x
    h = _conv(filters, 3, strides)(pre)
    h = _bn_relu(h)
    if dropout:
        h = keras.layers.Dropout(dropout)(h)
    h = _conv(filters, 3, 1)(h)
    return keras.layers.Add()([h, shortcut])


def _classifier(h, num_classes, dropout=0.0):
    h = _bn_relu(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    if dropout:
        h = keras.layers.Dropout(dropout)(h)
    # float32 logits under mixed precision.
    return keras.layers.Dense(num_classes, dtype="float32")(h)


def preact_resnet(
    input_shape,
    num_classes,
    *,
    blocks=(2, 2, 2, 2),
    width=64,
    stem="cifar",
    weight_decay=0.0,
    dropout=0.0,
    name="preact_resnet",
):
    """A pre-activation ResNet of basic blocks that outputs logits.

    Args:
        input_shape: the image shape `(H, W, C)`.
        num_classes: the number of classes.
        blocks: basic blocks per stage; stage `i` has `width * 2**i`
            filters and (after the first) stride 2. Defaults to
            `(2, 2, 2, 2)`, ResNet-18.
        width: the first stage's filters. Defaults to `64`.
        stem: `"cifar"` (one 3x3 convolution) or `"imagenet"` (7x7 stride 2
            and a 3x3 stride 2 max pool). Defaults to `"cifar"`.
        weight_decay: see `add_weight_decay`. Defaults to `0.0`.
        dropout: dropout before the classifier. Defaults to `0.0`.
        name: the model name. Defaults to `"preact_resnet"`.
    """
    inputs = keras.Input(tuple(input_shape))
    if stem == "cifar":
        h = _conv(width, 3)(inputs)
    elif stem == "imagenet":
        h = _conv(width, 7, 2)(inputs)
        h = _bn_relu(h)
        h = keras.layers.MaxPooling2D(3, 2, padding="same")(h)
    else:
        raise ValueError(
            f"`stem` must be 'cifar' or 'imagenet'; received {stem!r}."
        )
    for stage, count in enumerate(blocks):
        filters = width * 2**stage
        for block in range(count):
            strides = 2 if stage > 0 and block == 0 else 1
            h = _preact_block(h, filters, strides)
    outputs = _classifier(h, num_classes, dropout)
    model = keras.Model(inputs, outputs, name=name)
    return add_weight_decay(model, weight_decay)


def preact_resnet18(input_shape, num_classes, **kwargs):
    """PreAct ResNet-18 (the paper's CIFAR and corrupted-label network)."""
    kwargs.setdefault("name", "preact_resnet18")
    return preact_resnet(input_shape, num_classes, **kwargs)


def wide_resnet(
    input_shape,
    num_classes,
    *,
    depth=28,
    widen=10,
    weight_decay=0.0,
    dropout=0.0,
    name=None,
):
    """WideResNet-depth-widen (Zagoruyko and Komodakis), logits out.

    Args:
        input_shape: the image shape `(H, W, C)`.
        num_classes: the number of classes.
        depth: `6 n + 4` layers. Defaults to `28`.
        widen: the widening factor. Defaults to `10`.
        weight_decay: see `add_weight_decay`. Defaults to `0.0`.
        dropout: dropout inside each block. Defaults to `0.0`.
        name: the model name. Defaults to `"wide_resnet{depth}_{widen}"`.
    """
    if (depth - 4) % 6:
        raise ValueError(f"`depth` must be 6 n + 4; received {depth}.")
    count = (depth - 4) // 6
    inputs = keras.Input(tuple(input_shape))
    h = _conv(16, 3)(inputs)
    for stage, filters in enumerate((16 * widen, 32 * widen, 64 * widen)):
        for block in range(count):
            strides = 2 if stage > 0 and block == 0 else 1
            h = _preact_block(h, filters, strides, dropout)
    outputs = _classifier(h, num_classes)
    name = name or f"wide_resnet{depth}_{widen}"
    model = keras.Model(inputs, outputs, name=name)
    return add_weight_decay(model, weight_decay)


def resnet50(input_shape, num_classes, *, weight_decay=0.0, name="resnet50"):
    """ResNet-50 from `keras.applications`, random weights, logits out."""
    backbone = keras.applications.ResNet50(
        weights=None, include_top=False, input_shape=tuple(input_shape)
    )
    h = keras.layers.GlobalAveragePooling2D()(backbone.output)
    outputs = keras.layers.Dense(num_classes, dtype="float32")(h)
    model = keras.Model(backbone.input, outputs, name=name)
    return add_weight_decay(model, weight_decay)


#: Image classifiers by the name `--model` takes.
IMAGE_MODELS = {
    "preact_resnet18": preact_resnet18,
    "wide_resnet28_10": wide_resnet,
    "resnet50": resnet50,
}


def build_image_model(
    name, input_shape, num_classes, *, quick=False, weight_decay=0.0
):
    """Builds one of `IMAGE_MODELS`; `quick` shrinks it to a toy size.

    The ImageNet stem (7x7 stride 2, max pool) is used for inputs larger
    than 64 pixels, the CIFAR one (3x3) otherwise.
    """
    if name not in IMAGE_MODELS:
        raise ValueError(
            f"`--model` must be one of {sorted(IMAGE_MODELS)}; received "
            f"{name!r}."
        )
    stem = "imagenet" if input_shape[0] > 64 else "cifar"
    if name == "preact_resnet18":
        if quick:
            return preact_resnet(
                input_shape,
                num_classes,
                blocks=(1, 1),
                width=8,
                stem=stem,
                weight_decay=weight_decay,
                name="preact_resnet_tiny",
            )
        return preact_resnet18(
            input_shape, num_classes, stem=stem, weight_decay=weight_decay
        )
    if name == "wide_resnet28_10":
        depth, widen = (10, 1) if quick else (28, 10)
        return wide_resnet(
            input_shape,
            num_classes,
            depth=depth,
            widen=widen,
            weight_decay=weight_decay,
        )
    # ResNet-50 has no small variant: `quick` keeps the full network.
    return resnet50(input_shape, num_classes, weight_decay=weight_decay)


# --------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------


def compile_classifier(model, optimizer, *, metrics=(), jit_compile=False):
    """Compiles a logits model for float (one-hot, smoothed or mixed)
    labels with categorical cross-entropy."""
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.CategoricalCrossentropy(from_logits=True),
        metrics=list(metrics),
        jit_compile=jit_compile,
    )
    return model


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

    Returns:
        A dict `name -> list` of per-epoch errors (percent) for every set
        in `eval_sets`, plus `"loss"`, the per-epoch training loss.
    """
    if optimizer is None:
        optimizer = keras.optimizers.Adam(1e-3)
    compile_classifier(model, optimizer)
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


def median_of_last(errors, count):
    """The median of the last `count` values (the paper's ablation metric)."""
    return float(np.median(errors[-count:]))


# --------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------


def mean_std(values):
    """`(mean, standard deviation)` of a list of numbers (ddof 0)."""
    values = np.asarray(values, dtype="float64")
    return float(values.mean()), float(values.std())


def format_mean_std(values, digits=1):
    """`"mean ± std"` of a list of numbers (just the value if only one)."""
    mean, std = mean_std(values)
    if len(values) == 1:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def format_table(headers, rows, title=None, digits=2):
    """A Markdown table: `headers` a list of strings, `rows` of values.

    Floats are printed with `digits` decimals (`nan` as is); other values
    with `str`.
    """

    def cell(value):
        if isinstance(value, float):
            return "nan" if math.isnan(value) else f"{value:.{digits}f}"
        return str(value)

    text = [[cell(v) for v in row] for row in rows]
    widths = [
        max(len(str(h)), *(len(r[i]) for r in text)) if text else len(str(h))
        for i, h in enumerate(headers)
    ]
    lines = []
    if title:
        lines += [title, ""]
    lines.append(
        "| "
        + " | ".join(
            str(h).ljust(w) for h, w in zip(headers, widths, strict=True)
        )
        + " |"
    )
    lines.append("| " + " | ".join("-" * w for w in widths) + " |")
    for row in text:
        lines.append(
            "| "
            + " | ".join(v.ljust(w) for v, w in zip(row, widths, strict=True))
            + " |"
        )
    return "\n".join(lines)


def print_table(headers, rows, title=None, digits=2):
    """Prints `format_table(...)` and a blank line."""
    print(format_table(headers, rows, title, digits), end="\n\n", flush=True)
