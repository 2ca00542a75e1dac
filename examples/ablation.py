"""Table 5 of the paper: an ablation of mixup and of other regularisers.

The paper's ablation (CIFAR-10, PreAct ResNet-18, 200 epochs) compares,
each with two weight decays (1e-4 and 5e-4):

- ERM;
- mixup with its four pairings: all classes or the same class (AC, SC),
  random partners or k nearest neighbours (RP, KNN), that is
  `keras_mixup.Mixup(pairing="random" | "knn" | "same_class" |
  "same_class_knn")`;
- mixing latent representations and labels (AC + RP) at one hidden layer:
  `keras_mixup.MixupModel(mix_at=[name])` on a network with a
  `keras_mixup.MixupLayer` after each hidden layer;
- mixing the inputs only (labels kept, lam ~ Beta(alpha + 1, alpha)):
  `keras_mixup.Mixup(mix_labels=False)`;
- label smoothing (eps 0.05, 0.1, 0.2), with ERM inputs and with mixed
  inputs;
- Gaussian input noise (sigma 0.05, 0.1, 0.2).

The paper's metric is the median test error of the last 10 epochs; here
it is computed for every seed and the table gives its mean (± standard
deviation) over seeds, in percent.

By default it runs on scikit-learn's 8x8 digits (standardised, a
two-hidden-layer ReLU network, SGD with momentum), which takes minutes on
a CPU; `--dataset cifar10` loads CIFAR-10 with TensorFlow Datasets and
trains a small convolutional network (a GPU job).

Run: `python examples/ablation.py [--epochs 30] [--seeds 3]`.
"""

import command_line


def build_parser():
    """The example's options (see `command_line.make_parser`)."""
    parser = command_line.make_parser(
        __doc__.splitlines()[0], epochs=30, seeds=3, alpha=1.0, batch_size=64
    )
    parser.add_argument(
        "--dataset",
        default="digits",
        choices=("digits", "cifar10"),
        help="scikit-learn digits, or CIFAR-10 from TensorFlow Datasets",
    )
    parser.add_argument(
        "--data-dir", default=None, help="TFDS data directory (cifar10)"
    )
    parser.add_argument(
        "--max-examples",
        type=int,
        default=0,
        help="use at most this many examples per split (cifar10; 0: all)",
    )
    _add_regulariser_flags(parser)
    command_line.add_hidden(
        parser, None, "hidden widths (MLP) or convolution filters (cifar10)"
    )
    parser.add_argument(
        "--last",
        type=int,
        default=10,
        help="the median is taken over this many last epochs",
    )
    parser.add_argument(
        "--learning-rate", type=float, default=0.05, help="SGD learning rate"
    )
    parser.add_argument(
        "--knn-k", type=int, default=5, help="neighbours for the knn pairings"
    )
    return parser


def _add_regulariser_flags(parser):
    """The options of the regularisers compared with mixup."""
    parser.add_argument(
        "--weight-decays",
        type=float,
        nargs="+",
        default=[1e-4, 5e-4],
        help="weight decays (one table column each)",
    )
    parser.add_argument(
        "--epsilons",
        type=float,
        nargs="+",
        default=[0.05, 0.1, 0.2],
        help="label smoothing values",
    )
    parser.add_argument(
        "--sigmas",
        type=float,
        nargs="+",
        default=[0.05, 0.1, 0.2],
        help="Gaussian input noise standard deviations",
    )


if __name__ == "__main__":
    build_parser().parse_args()  # --help answers before TensorFlow loads

import images  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tables  # noqa: E402
import tabular  # noqa: E402
import training  # noqa: E402

import keras_mixup  # noqa: E402

#: The pairings of Table 5: (row label, `pairing` argument).
PAIRINGS = (
    ("AC + RP", "random"),
    ("AC + KNN", "knn"),
    ("SC + RP", "same_class"),
    ("SC + KNN", "same_class_knn"),
)

HEADERS_START = ("method", "specification")


# --------------------------------------------------------------------------
# Data and models
# --------------------------------------------------------------------------


def load(args):
    """`(x_train, y_train, x_test, y_test, num_classes)` for `--dataset`."""
    if args.dataset == "digits":
        x, y, num_classes = tabular.load_tabular("digits")
        x_train, y_train, x_test, y_test = tabular.split(
            x, y, test_fraction=0.2, seed=0, standardize=True
        )
        return x_train, y_train, x_test, y_test, num_classes
    import tensorflow_datasets as tfds

    arrays = {}
    for split in ("train", "test"):
        ds, _, num_classes = images.load_tfds(
            args.dataset, split, data_dir=args.data_dir
        )
        if args.max_examples:
            ds = ds.take(args.max_examples)
        pictures, labels = zip(*tfds.as_numpy(ds), strict=True)
        arrays[split] = (
            np.stack(pictures).astype("float32") / 255.0,
            np.asarray(labels, "int32"),
        )
    (x_train, y_train), (x_test, y_test) = arrays["train"], arrays["test"]
    mean = x_train.mean(axis=(0, 1, 2))
    std = x_train.std(axis=(0, 1, 2)) + 1e-6
    x_train = (x_train - mean) / std
    x_test = (x_test - mean) / std
    return x_train, y_train, x_test, y_test, num_classes


def mix_layer_name(index):
    """The name of the MixupLayer after hidden layer `index` (from 1)."""
    return f"mix_hidden{index}"


def network(input_shape, num_classes, args, weight_decay, *, mix_points):
    """The classifier; with `mix_points`, a `MixupLayer` after each hidden
    layer, for a `keras_mixup.MixupModel` to pick one.

    Only the hidden-layer methods get MixupLayers: under plain `fit` a
    MixupLayer mixes its inputs (the inputs-only form), so the other
    methods' networks have none. Digits: an MLP with `--hidden` widths;
    images: one 3x3 convolution block (conv, batch norm, ReLU, 2x2 max
    pool) per `--hidden` width, then global pooling.
    """
    inputs = keras.Input(tuple(input_shape))
    h = inputs
    convolutional = len(input_shape) == 3
    for index, width in enumerate(args.hidden, start=1):
        if convolutional:
            h = keras.layers.Conv2D(width, 3, padding="same", use_bias=False)(h)
            h = keras.layers.BatchNormalization()(h)
            h = keras.layers.ReLU()(h)
            h = keras.layers.MaxPooling2D()(h)
        else:
            h = keras.layers.Dense(width, activation="relu")(h)
        if mix_points:
            h = keras_mixup.MixupLayer(name=mix_layer_name(index))(h)
    if convolutional:
        h = keras.layers.GlobalAveragePooling2D()(h)
    outputs = keras.layers.Dense(num_classes, dtype="float32")(h)
    model = keras.Model(inputs, outputs, name="ablation_net")
    return training.add_weight_decay(model, weight_decay)


# --------------------------------------------------------------------------
# Methods
# --------------------------------------------------------------------------


def methods(args):
    """The rows of the table: `(method, specification, options)`.

    `options` is a dict of keyword arguments for `run`: `pairing` (mix the
    inputs and labels with a `Mixup` of that pairing), `layer` (mix at
    hidden layer `layer` with a `MixupModel`), `inputs_only` (a `Mixup`
    with `mix_labels=False`), `smoothing` (label smoothing eps) and
    `sigma` (Gaussian input noise).
    """
    rows = [("ERM", "-", {})]
    for label, pairing in args.pairings:
        rows.append(("mixup", label, {"pairing": pairing}))
    for layer in range(1, len(args.hidden) + 1):
        rows.append(
            (
                "mix latent + labels (AC + RP)",
                f"hidden layer {layer}",
                {"layer": layer},
            )
        )
    rows.append(("mix inputs only", "AC + RP", {"inputs_only": True}))
    for eps in args.epsilons:
        rows.append(("label smoothing", f"ε = {eps:g}", {"smoothing": eps}))
    for eps in args.epsilons:
        rows.append(
            (
                "mix inputs + label smoothing",
                f"ε = {eps:g}",
                {"inputs_only": True, "smoothing": eps},
            )
        )
    for sigma in args.sigmas:
        rows.append(
            ("Gaussian input noise", f"σ = {sigma:g}", {"sigma": sigma})
        )
    return rows


def run(data, options, weight_decay, seed, args):
    """Trains one network; returns its per-epoch test errors (percent)."""
    x_train, y_train, x_test, y_test, num_classes = data
    training.setup(seed)
    model = network(
        x_train.shape[1:],
        num_classes,
        args,
        weight_decay,
        mix_points="layer" in options,
    )
    mixup = None
    extra_maps = []
    smoothing = options.get("smoothing", 0.0)
    if "pairing" in options:
        knn = {"knn_k": args.knn_k} if "knn" in options["pairing"] else {}
        mixup = keras_mixup.Mixup(
            args.alpha,
            num_classes=num_classes,
            pairing=options["pairing"],
            seed=seed,
            **knn,
        )
    elif options.get("inputs_only"):
        mixup = keras_mixup.Mixup(
            args.alpha, num_classes=num_classes, mix_labels=False, seed=seed
        )
        # The labels come back as integer ids: encode (and smooth) them.
        extra_maps.append(training.encode_labels(num_classes, smoothing))
    elif smoothing:
        mixup = training.encode_labels(num_classes, smoothing)  # ERM + eps
    if "sigma" in options:
        extra_maps.append(tabular.gaussian_noise(options["sigma"], seed))
    if "layer" in options:
        model = keras_mixup.MixupModel(
            model,
            alpha=args.alpha,
            num_classes=num_classes,
            mix_at=[mix_layer_name(options["layer"])],
            seed=seed,
        )
    optimizer = keras.optimizers.SGD(args.learning_rate, momentum=0.9)
    errors = tabular.fit_classifier(
        model,
        x_train,
        y_train,
        num_classes=num_classes,
        epochs=args.epochs,
        batch_size=args.batch_size,
        mixup=mixup,
        seed=seed,
        optimizer=optimizer,
        eval_sets={"test": (x_test, y_test)},
        extra_maps=extra_maps,
        verbose=args.verbose,
        # Eleven models of four steps: tracing costs more than running.
        run_eagerly=args.quick,
    )
    return errors["test"]


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------


def main(argv=None):
    """Runs the ablation and prints the table.

    Returns:
        A dict: `"headers"` and `"rows"` of the printed table (one row per
        method, a cell per weight decay: the mean ± std over seeds of the
        median test error of the last epochs), and `"curves"`, mapping
        `(method, specification, weight_decay)` to the per-seed lists of
        per-epoch test errors.
    """
    args = build_parser().parse_args(argv)
    if args.hidden is None:
        args.hidden = [128, 128] if args.dataset == "digits" else [32, 64, 128]
    args.pairings = PAIRINGS
    if args.quick:
        args.epochs, args.seeds, args.last = 1, 1, 1
        args.weight_decays = args.weight_decays[-1:]
        args.hidden = [16, 16] if args.dataset == "digits" else [4, 4]
        args.epsilons, args.sigmas = args.epsilons[:1], args.sigmas[:1]
        args.max_examples = args.max_examples or 64
    data = load(args)
    if args.quick:  # four batches: enough to run every method's steps
        data = (data[0][:256], data[1][:256], *data[2:])
    rows, curves = [], {}
    for method, spec, options in methods(args):
        row = [method, spec]
        for weight_decay in args.weight_decays:
            runs = [
                run(data, options, weight_decay, seed, args)
                for seed in range(args.seeds)
            ]
            curves[method, spec, weight_decay] = runs
            medians = [tables.median_of_last(r, args.last) for r in runs]
            row.append(tables.format_mean_std(medians, digits=2))
        rows.append(row)
    headers = list(HEADERS_START)
    headers += [f"weight decay {wd:g}" for wd in args.weight_decays]
    tables.print_table(
        headers,
        rows,
        f"{args.dataset}: median test error (%) of the last {args.last} "
        f"epochs, mean ± std over {args.seeds} seeds; {args.epochs} epochs, "
        f"batch {args.batch_size}, hidden {args.hidden}, alpha {args.alpha:g}",
    )
    return {"headers": headers, "rows": rows, "curves": curves}


if __name__ == "__main__":
    main()
