"""Figure 4 of the paper: ERM against mixup on Google speech commands.

Utterances come from TensorFlow Datasets (`speech_commands`: 12 classes,
ten words plus "silence" and "unknown") and become log-mel spectrograms
with `tf.signal`: 16 kHz waveforms padded or cropped to 1 s, a 25 ms
Hann window every 10 ms (98 frames), 40 mel bins from 20 Hz to 8 kHz,
then log. (The paper used normalised linear spectrograms zero-padded to
160 x 101; log-mel features are the common choice today.) Mixup is
applied to the spectrograms, as in the paper, by a `keras_mixup.Mixup`
mapped over the batched training set, and switched on only after a
warm-up of five epochs of ERM by `keras_mixup.MixupSchedule(mixup,
start_epoch=5)`.

Networks: LeNet (two convolutional and two fully-connected hidden layers)
and VGG-11 (eight 3x3 convolutions with batch norm), chosen by `--model`.
Training: Adam, batch 100, 30 epochs, learning rate 3e-3 divided by 10
every 10 epochs (`--learning-rate`, `--epochs`, `--batch-size`).
Prints the last and the best test error of ERM and of mixup with
alpha 0.1 and 0.2.

Run: `python examples/speech_commands.py --model lenet` (or `vgg11`).
"""

import command_line

#: The networks `--model` takes (built by `MODELS`).
MODEL_NAMES = ("lenet", "vgg11")


def build_parser():
    """The example's options (see `command_line.make_parser`)."""
    parser = command_line.make_parser(
        __doc__.splitlines()[0],
        epochs=30,
        seeds=1,
        alpha=[0.1, 0.2],
        batch_size=100,
    )
    parser.add_argument(
        "--model", default="lenet", choices=MODEL_NAMES, help="network"
    )
    parser.add_argument(
        "--width", type=float, default=1.0, help="channel width multiplier"
    )
    parser.add_argument(
        "--learning-rate", type=float, default=3e-3, help="Adam learning rate"
    )
    parser.add_argument(
        "--start-epoch",
        type=int,
        default=5,
        help="the first epoch (from 0) that mixes",
    )
    parser.add_argument("--data-dir", default=None, help="TFDS data directory")
    parser.add_argument(
        "--max-examples",
        type=int,
        default=0,
        help="train on at most this many examples (0: all)",
    )
    return parser


if __name__ == "__main__":
    build_parser().parse_args()  # --help answers before TensorFlow loads

import images  # noqa: E402
import keras  # noqa: E402
import tables  # noqa: E402
import tensorflow as tf  # noqa: E402
import training  # noqa: E402

import keras_mixup  # noqa: E402

SAMPLE_RATE = 16_000
FRAME_LENGTH = 400  # 25 ms
FRAME_STEP = 160  # 10 ms
FFT_LENGTH = 512
MEL_BINS = 40

HEADERS = ("model", "method", "test error: last", "best")

#: VGG-11's convolutions ("M": 2x2 max pooling).
VGG11 = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")


# --------------------------------------------------------------------------
# Features
# --------------------------------------------------------------------------


def log_mel_spectrogram(audio):
    """A waveform (int16 or float, any length) -> log-mel `[98, 40, 1]`.

    The waveform is scaled to [-1, 1] (int16), zero-padded or cropped to
    one second at 16 kHz, then: STFT (25 ms Hann window, 10 ms hop, 512-point
    FFT), magnitude, 40 mel bins (20 Hz to 8 kHz), `log(mel + 1e-6)`.
    """
    audio = tf.convert_to_tensor(audio)
    if audio.dtype.is_integer:
        audio = tf.cast(audio, tf.float32) / 32768.0
    audio = tf.cast(audio, tf.float32)[:SAMPLE_RATE]
    audio = tf.pad(audio, [[0, SAMPLE_RATE - tf.shape(audio)[0]]])
    audio = tf.ensure_shape(audio, [SAMPLE_RATE])
    stft = tf.signal.stft(
        audio,
        frame_length=FRAME_LENGTH,
        frame_step=FRAME_STEP,
        fft_length=FFT_LENGTH,
    )
    mel_matrix = tf.signal.linear_to_mel_weight_matrix(
        num_mel_bins=MEL_BINS,
        num_spectrogram_bins=FFT_LENGTH // 2 + 1,
        sample_rate=SAMPLE_RATE,
        lower_edge_hertz=20.0,
        upper_edge_hertz=SAMPLE_RATE / 2,
    )
    mel = tf.tensordot(tf.abs(stft), mel_matrix, 1)
    return tf.math.log(mel + 1e-6)[..., tf.newaxis]


def num_frames():
    """The number of spectrogram frames of one second (98)."""
    return 1 + (SAMPLE_RATE - FRAME_LENGTH) // FRAME_STEP


def datasets(args, alpha, seed, *, train=None, test=None, num_classes=None):
    """The training and test pipelines of one run.

    Args:
        args: the parsed flags.
        alpha: the mixup alpha, or `None` for ERM.
        seed: the shuffle and mixup seed.
        train, test, num_classes: `(audio, label)` datasets to use instead
            of loading `speech_commands` with TFDS (a synthetic set).

    Returns:
        `(train, test, mixup)`: batched datasets of `(spectrogram, float
        label)` and the `keras_mixup.Mixup` mapped over `train` (`None`
        for ERM), for a `MixupSchedule`.
    """
    if train is None:
        train, num_train, num_classes = images.load_tfds(
            "speech_commands",
            "train",
            data_dir=args.data_dir,
            shuffle_files=True,
        )
        test, _, _ = images.load_tfds(
            "speech_commands", "test", data_dir=args.data_dir
        )
    if args.max_examples:
        train = train.take(args.max_examples)
        test = test.take(args.max_examples // 2)

    def features(audio, label):
        return log_mel_spectrogram(audio), label

    auto = tf.data.AUTOTUNE
    train = train.map(features, num_parallel_calls=auto).cache()
    train = train.shuffle(10_000, seed=seed, reshuffle_each_iteration=True)
    mixup = None
    if alpha is not None:
        mixup = keras_mixup.Mixup(alpha, num_classes=num_classes, seed=seed)
    train = training.batch_and_mix(
        train,
        batch_size=args.batch_size,
        num_classes=num_classes,
        mixup=mixup,
    )
    test = test.map(features, num_parallel_calls=auto).cache()
    test = training.batch_and_mix(
        test, batch_size=args.batch_size, num_classes=num_classes
    )
    return train, test, mixup


# --------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------


def lenet(input_shape, num_classes, *, width=1.0):
    """LeNet-5: two 5x5 convolutions with max pooling, then dense 120, 84."""
    inputs = keras.Input(tuple(input_shape))
    h = keras.layers.Conv2D(int(6 * width), 5, activation="relu")(inputs)
    h = keras.layers.MaxPooling2D()(h)
    h = keras.layers.Conv2D(int(16 * width), 5, activation="relu")(h)
    h = keras.layers.MaxPooling2D()(h)
    h = keras.layers.Flatten()(h)
    h = keras.layers.Dense(int(120 * width), activation="relu")(h)
    h = keras.layers.Dense(int(84 * width), activation="relu")(h)
    outputs = keras.layers.Dense(num_classes, dtype="float32")(h)
    return keras.Model(inputs, outputs, name="lenet")


def vgg11(input_shape, num_classes, *, width=1.0):
    """VGG-11 with batch norm (3x3 convolutions), then a linear classifier."""
    inputs = keras.Input(tuple(input_shape))
    h = inputs
    for item in VGG11:
        if item == "M":
            h = keras.layers.MaxPooling2D(padding="same")(h)
            continue
        h = keras.layers.Conv2D(
            max(1, int(item * width)), 3, padding="same", use_bias=False
        )(h)
        h = keras.layers.BatchNormalization()(h)
        h = keras.layers.ReLU()(h)
    h = keras.layers.Flatten()(h)
    outputs = keras.layers.Dense(num_classes, dtype="float32")(h)
    return keras.Model(inputs, outputs, name="vgg11")


MODELS = {"lenet": lenet, "vgg11": vgg11}


# --------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------


class MixingProbe(keras.callbacks.Callback):
    """Records, at the start of each epoch, whether a `Mixup` is on.

    Put it after the `MixupSchedule` in the callbacks: it reads the switch
    that the schedule has just set for the epoch.
    """

    def __init__(self, mixup):
        super().__init__()
        self.mixup = mixup
        self.active = []

    def on_epoch_begin(self, epoch, logs=None):
        self.active.append(bool(self.mixup.mixing_state.active.numpy()))


def run(alpha, seed, args, data=None):
    """Trains one network.

    Returns:
        `(errors, mixing)`: the per-epoch test errors (percent) and, per
        epoch, whether mixup was on (`[]` for ERM).
    """
    training.setup(seed)
    train, test, mixup = datasets(args, alpha, seed, **(data or {}))
    num_classes = train.element_spec[1].shape[-1]
    model = MODELS[args.model](
        (num_frames(), MEL_BINS, 1), num_classes, width=args.width
    )
    steps = int(train.cardinality())
    boundaries = [10 * steps, 20 * steps]
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay(
        boundaries, [args.learning_rate * f for f in (1.0, 0.1, 0.01)]
    )
    training.compile_classifier(
        model,
        keras.optimizers.Adam(schedule),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
    )
    callbacks, probe = [], None
    if mixup is not None:
        probe = MixingProbe(mixup)
        callbacks = [
            keras_mixup.MixupSchedule(mixup, start_epoch=args.start_epoch),
            probe,
        ]
    history = model.fit(
        train,
        validation_data=test,
        epochs=args.epochs,
        callbacks=callbacks,
        verbose=args.verbose,
        shuffle=False,  # the dataset shuffles itself
    ).history
    errors = [100.0 * (1.0 - a) for a in history["val_accuracy"]]
    return errors, probe.active if probe else []


def main(argv=None, data=None):
    """Runs ERM and mixup and prints the table.

    Args:
        argv: the command-line arguments. Defaults to `None` (`sys.argv`).
        data: a dict `train`, `test` (datasets of `(audio, label)`) and
            `num_classes` to use instead of TFDS `speech_commands`.
            Defaults to `None`.

    Returns:
        A dict: `"headers"` and `"rows"` of the printed table, `"curves"`
        (method -> per-seed lists of per-epoch test errors) and
        `"mixing"` (method -> per-seed lists of per-epoch on/off flags).
    """
    args = build_parser().parse_args(argv)
    if args.quick:
        # Six epochs, so that the warm-up (epochs 0-4) and one mixed epoch
        # both happen.
        args.epochs, args.seeds, args.batch_size = 6, 1, 16
        args.alpha = args.alpha[-1:]
        args.max_examples = args.max_examples or 64
        args.width = 0.25 if args.model == "vgg11" else args.width
    methods = [("ERM", None)] + [(f"mixup α={a:g}", a) for a in args.alpha]
    curves, mixing, rows = {}, {}, []
    for name, alpha in methods:
        runs = [run(alpha, seed, args, data) for seed in range(args.seeds)]
        curves[name] = [errors for errors, _ in runs]
        mixing[name] = [flags for _, flags in runs]
        rows.append(
            [
                args.model,
                name,
                tables.format_mean_std([c[-1] for c in curves[name]]),
                tables.format_mean_std([min(c) for c in curves[name]]),
            ]
        )
    tables.print_table(
        list(HEADERS),
        rows,
        f"speech commands, {args.model}: test error (%), mean ± std over "
        f"{args.seeds} seeds; {args.epochs} epochs, mixup from epoch "
        f"{args.start_epoch}",
    )
    return {
        "headers": list(HEADERS),
        "rows": rows,
        "curves": curves,
        "mixing": mixing,
    }


if __name__ == "__main__":
    main()
