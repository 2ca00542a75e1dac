"""Image classification: TFDS data, augmentations, ResNets, training.

- data (TensorFlow Datasets): `load_tfds`, `decode_image`, `normalize`;
- augmentations: `pad_crop_flip` (CIFAR), `random_resized_crop` and
  `center_crop` (ImageNet);
- models: `preact_resnet18`, `preact_resnet`, `wide_resnet`, `resnet50`,
  `build_image_model` (by the name `--model` takes, `IMAGE_MODELS`);
- training: `dtype_policy` (a context manager), `mixed_precision_policy`,
  `distribution_strategy`, `WarmupStepDecay`, `fit_image_classifier`.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import contextlib  # noqa: E402

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from training import add_weight_decay, compile_classifier  # noqa: E402

import keras_mixup  # noqa: E402

__all__ = [
    "IMAGE_MODELS",
    "WarmupStepDecay",
    "build_image_model",
    "center_crop",
    "decode_image",
    "distribution_strategy",
    "dtype_policy",
    "fit_image_classifier",
    "load_tfds",
    "method_name",
    "mixed_precision_policy",
    "mixup_from_flags",
    "normalize",
    "pad_crop_flip",
    "preact_resnet",
    "preact_resnet18",
    "random_resized_crop",
    "resnet50",
    "wide_resnet",
]


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


@contextlib.contextmanager
def dtype_policy(name):
    """Sets the global Keras dtype policy for a block, then restores it.

    Args:
        name: a Keras dtype policy name ("float32", "mixed_float16",
            "mixed_bfloat16").

    Example:

    >>> with dtype_policy("mixed_bfloat16"):
    ...     inside = keras.config.dtype_policy().name
    >>> inside, keras.config.dtype_policy().name
    ('mixed_bfloat16', 'float32')
    """
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


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


def mixup_from_flags(method, args, *, num_classes, seed):
    """The `keras_mixup.Mixup` that `add_image_flags`' options describe
    (`--alpha`, `--cutmix-alpha`, `--switch-prob`, `--label-smoothing`)
    for `--methods` entry "mixup", or `None` for "erm"."""
    if method != "mixup":
        return None
    return keras_mixup.Mixup(
        args.alpha,
        num_classes=num_classes,
        cutmix_alpha=args.cutmix_alpha,
        switch_prob=args.switch_prob,
        label_smoothing=args.label_smoothing,
        seed=seed,
    )


def method_name(method, alpha, cutmix_alpha=None, switch_prob=0.5):
    """The table and legend name of `--methods` entry "erm" or "mixup"
    (with `cutmix_alpha`, the mixup/CutMix switch)."""
    if method == "erm":
        return "ERM"
    if cutmix_alpha is None:
        return f"mixup (α={alpha:g})"
    return (
        f"mixup (α={alpha:g}) / CutMix (α={cutmix_alpha:g}), "
        f"switch {switch_prob:g}"
    )


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
    run_eagerly=False,
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
        run_eagerly: train and validate without tracing the steps, for
            runs of a few steps (`--quick`). Defaults to `False`.

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
            model,
            built,
            metrics=metrics,
            jit_compile=jit_compile,
            run_eagerly=run_eagerly,
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
