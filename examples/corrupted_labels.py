"""Table 2 of the paper: memorisation of corrupted labels, ERM against mixup.

A fraction (20%, 50%, 80%) of the training labels is replaced by uniformly
random classes. The paper trains PreAct ResNet-18 on CIFAR-10 for 200
epochs; here a fully-connected network (two hidden layers of 512 ReLU
units, large enough to memorise every noisy label) trains on scikit-learn's
8x8 digits, with Adam whose learning rate is divided by 10 at 50% and 75%
of the epochs (the paper's steps at epochs 100 and 150 of 200).

The methods are the paper's: ERM; ERM + dropout (p = 0.7 at 20%, 0.8 at
50% and 80%, the paper's best); mixup with alpha 8 and 32; mixup + dropout
(alpha 4, p 0.1 at 20%; alpha 8, p 0.3 at 50% and 80%). Dropout follows
every hidden layer. Mixing is `keras_mixup.Mixup` mapped over the batched,
corrupted training set.

Reported, in percent: the best and the last test error over the epochs,
and the final training error on the examples that kept their real label
and on the corrupted ones (measured against the corrupted label: 0 means
the noise was memorised).

Run: `python examples/corrupted_labels.py [--epochs 40] [--seeds 2]`;
`--replot` redraws the figure from the curves a full run saved next to it
(`corrupted_labels.json`).
"""

import command_line

LEVELS = (0.2, 0.5, 0.8)


def build_parser():
    """The example's options (see `command_line.make_parser`)."""
    parser = command_line.make_parser(
        __doc__.splitlines()[0],
        epochs=40,
        alpha=[8.0, 32.0],
        batch_size=64,
        figures=("corrupted_labels.png",),
        replot=True,
    )
    parser.add_argument(
        "--levels",
        type=float,
        nargs="+",
        default=list(LEVELS),
        help="fractions of corrupted training labels",
    )
    command_line.add_hidden(parser, [512, 512])
    parser.add_argument(
        "--learning-rate", type=float, default=1e-3, help="Adam learning rate"
    )
    return parser


if __name__ == "__main__":
    build_parser().parse_args()  # --help answers before TensorFlow loads

import keras  # noqa: E402
import plots  # noqa: E402
import tables  # noqa: E402
import tabular  # noqa: E402
from training import setup  # noqa: E402

import keras_mixup  # noqa: E402


def methods_for(level, alphas):
    """The paper's methods at one corruption level.

    Returns:
        A list of `(name, kind, alpha or None, dropout rate)`; one mixup
        method per alpha in `alphas`. `kind` names the method without the
        parameters that change with the level (the figure's legend).
    """
    dropout = 0.7 if level <= 0.2 else 0.8
    alpha, rate = (4.0, 0.1) if level <= 0.2 else (8.0, 0.3)
    methods = [
        ("ERM", "ERM", None, 0.0),
        (f"ERM + dropout (p={dropout})", "ERM + dropout", None, dropout),
    ]
    methods += [
        (f"mixup (α={a:g})", f"mixup (α={a:g})", a, 0.0) for a in alphas
    ]
    methods.append(
        (
            f"mixup + dropout (α={alpha:g}, p={rate})",
            "mixup + dropout",
            alpha,
            rate,
        )
    )
    return methods


#: Table 2 of the paper (PreAct ResNet-18, CIFAR-10): best and last test
#: error, training error on real and on corrupted labels.
PAPER = {
    (0.2, "ERM"): (12.7, 16.6, 0.05, 0.28),
    (0.2, "ERM + dropout"): (8.8, 10.4, 5.26, 83.55),
    (0.2, "mixup"): (5.9, 6.4, 2.27, 86.32),
    (0.2, "mixup + dropout"): (6.2, 6.2, 1.92, 85.02),
    (0.5, "ERM"): (18.8, 44.6, 0.26, 0.64),
    (0.5, "ERM + dropout"): (14.1, 15.5, 12.71, 86.98),
    (0.5, "mixup"): (11.3, 12.7, 5.84, 85.71),
    (0.5, "mixup + dropout"): (10.9, 10.9, 7.56, 87.90),
    (0.8, "ERM"): (36.5, 73.9, 0.62, 0.83),
    (0.8, "ERM + dropout"): (30.9, 35.1, 29.84, 86.37),
    (0.8, "mixup"): (25.3, 30.9, 18.92, 85.44),
    (0.8, "mixup + dropout"): (24.0, 24.8, 19.70, 87.67),
}

HEADERS = (
    "corruption",
    "method",
    "test error: best",
    "last",
    "train error: real",
    "corrupted",
)


def step_schedule(learning_rate, steps_per_epoch, epochs):
    """The learning rate, divided by 10 at 50% and at 75% of training."""
    boundaries = [
        int(steps_per_epoch * epochs * 0.5),
        int(steps_per_epoch * epochs * 0.75),
    ]
    values = [learning_rate, learning_rate / 10, learning_rate / 100]
    return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)


def run(level, alpha, dropout, seed, data, args):
    """Trains one network; returns its per-epoch test errors and the final
    training errors on the real and the corrupted labels."""
    x_train, y_train, x_test, y_test, num_classes = data
    noisy, corrupted = tabular.corrupt_labels(
        y_train, level, num_classes, seed=seed
    )
    setup(seed)
    model = tabular.mlp(
        x_train.shape[1:], num_classes, hidden=args.hidden, dropout=dropout
    )
    mixup = None
    if alpha is not None:
        mixup = keras_mixup.Mixup(alpha, num_classes=num_classes, seed=seed)
    steps = -(-len(y_train) // args.batch_size)
    optimizer = keras.optimizers.Adam(
        step_schedule(args.learning_rate, steps, args.epochs)
    )
    history = tabular.fit_classifier(
        model,
        x_train,
        noisy,
        num_classes=num_classes,
        epochs=args.epochs,
        batch_size=args.batch_size,
        mixup=mixup,
        seed=seed,
        optimizer=optimizer,
        eval_sets={"test": (x_test, y_test)},
        verbose=args.verbose,
    )
    real = tabular.error_rate(model, x_train[~corrupted], y_train[~corrupted])
    wrong = tabular.error_rate(model, x_train[corrupted], noisy[corrupted])
    return history["test"], real, wrong


def plot_curves(curves, path, args):
    """Test error by epoch, one panel per corruption level (mean of seeds).

    `curves` maps `(level, method name)` to the per-seed error curves; the
    legend names each method without the parameters the level changes,
    which each panel's title gives instead.
    """
    panels = {}
    for level in args.levels:
        methods = methods_for(level, args.alpha)
        kinds = {name: kind for name, kind, _, _ in methods}
        (_, _, _, dropout), (*_, alpha, rate) = methods[1], methods[-1]
        title = (
            f"{level:.0%} corrupted labels\ndropout p={dropout:g}; "
            f"mixup + dropout α={alpha:g}, p={rate:g}"
        )
        panels[title] = {
            kind: curves[level, name] for name, kind in kinds.items()
        }
    plots.plot_curves(
        panels,
        path,
        xlabel="epoch",
        ylabel="test error (%)",
        title="scikit-learn 8x8 digits, MLP "
        f"{'-'.join(map(str, args.hidden))}, Adam: test error by epoch "
        f"({plots.mean_of_seeds(args.seeds)})",
    )


def run_all(args):
    """Trains every method at every level and seed.

    Returns:
        `(rows, results, curves)`: the table's rows, and dicts keyed by
        `(level, method)` of per-seed results and test error curves.
    """
    x, y, num_classes = tabular.load_tabular("digits")
    x_train, y_train, x_test, y_test = tabular.split(x / 16.0, y, seed=0)
    data = (x_train, y_train, x_test, y_test, num_classes)
    results, curves, rows = {}, {}, []
    for level in args.levels:
        for name, _, alpha, dropout in methods_for(level, args.alpha):
            runs = [
                run(level, alpha, dropout, seed, data, args)
                for seed in range(args.seeds)
            ]
            curves[level, name] = [r[0] for r in runs]
            result = {
                "best": [min(r[0]) for r in runs],
                "last": [r[0][-1] for r in runs],
                "real": [r[1] for r in runs],
                "corrupted": [r[2] for r in runs],
            }
            results[level, name] = result
            rows.append(
                [f"{level:.0%}", name]
                + [tables.format_mean_std(result[k]) for k in result]
            )
    return rows, results, curves


def main(argv=None):
    """Runs the experiment, prints the table and saves the figure.

    Returns:
        A dict: `"headers"` and `"rows"` of the printed table (one row per
        corruption level and method), `"results"` mapping `(level, method)`
        to a dict of per-seed lists (`best`, `last`, `real`, `corrupted`),
        `"curves"` mapping it to the per-seed test error curves, and
        `"figures"` listing the saved figures.
    """
    args = build_parser().parse_args(argv)
    if args.quick:
        args.epochs, args.seeds, args.levels = 2, 1, [0.5]
        args.hidden, args.alpha = [32, 32], [8.0]
    path = command_line.figure_path(args, "corrupted_labels.png")
    if args.replot:
        plots.replot_curves(path)
        print(f"saved {path}")
        return {"figures": [path]}
    rows, results, curves = run_all(args)
    tables.print_table(
        HEADERS,
        rows,
        f"digits, {args.epochs} epochs, MLP {args.hidden}, batch "
        f"{args.batch_size}: errors (%), mean ± std over {args.seeds} seeds",
    )
    paper_rows = [
        [f"{level:.0%}", method, *values]
        for (level, method), values in PAPER.items()
        if level in args.levels
    ]
    tables.print_table(
        HEADERS, paper_rows, "The paper (PreAct ResNet-18 on CIFAR-10)"
    )
    if path:
        plot_curves(curves, path, args)
        print(f"saved {path}")
    return {
        "headers": list(HEADERS),
        "rows": rows,
        "results": results,
        "curves": curves,
        "figures": [path] if path else [],
    }


if __name__ == "__main__":
    main()
