"""Table 4 of the paper: ERM against mixup on UCI tabular data.

The paper's network: two hidden layers of 128 ReLU units, Adam with its
default settings, mini-batches of 16, 10 epochs. Here on the UCI data sets
scikit-learn ships: Iris (which the paper's table has), Wine, Breast Cancer
(Wisconsin diagnostic) and Optical Recognition of Handwritten Digits. Each
seed draws its own stratified 80/20 split (features standardised with the
training statistics) and its own initialisation, used by every method; the
table gives the mean and standard deviation of the test error (percent).

Mixing is `keras_mixup.Mixup` mapped over the batched training set.

Run: `python examples/uci_tabular.py [--epochs 10] [--seeds 10]`.
"""

import command_line


def build_parser():
    """The example's options (see `command_line.make_parser`)."""
    parser = command_line.make_parser(
        __doc__.splitlines()[0], epochs=10, seeds=5, alpha=[1.0], batch_size=16
    )
    parser.add_argument(
        "--datasets",
        nargs="+",
        default=list(command_line.TABULAR),
        choices=command_line.TABULAR,
        help="scikit-learn data sets",
    )
    command_line.add_hidden(parser, [128, 128])
    return parser


if __name__ == "__main__":
    build_parser().parse_args()  # --help answers before TensorFlow loads

import tables  # noqa: E402
import tabular  # noqa: E402
from training import setup  # noqa: E402

import keras_mixup  # noqa: E402

#: Table 4 of the paper (test error, percent), for the data sets here.
PAPER = {"iris": (21.3, 17.3)}


def run(dataset, alpha, seed, args):
    """Trains one network on one split; returns its test error (percent).

    `alpha=None` trains with ERM.
    """
    x, y, num_classes = tabular.load_tabular(dataset)
    x_train, y_train, x_test, y_test = tabular.split(
        x, y, test_fraction=0.2, seed=seed, standardize=True
    )
    setup(seed)
    model = tabular.mlp(x_train.shape[1:], num_classes, hidden=args.hidden)
    mixup = None
    if alpha is not None:
        mixup = keras_mixup.Mixup(alpha, num_classes=num_classes, seed=seed)
    tabular.fit_classifier(
        model,
        x_train,
        y_train,
        num_classes=num_classes,
        epochs=args.epochs,
        batch_size=args.batch_size,
        mixup=mixup,
        seed=seed,
        verbose=args.verbose,
        # One epoch: tracing the steps costs more than running them.
        run_eagerly=args.quick,
    )
    return tabular.error_rate(model, x_test, y_test)


def main(argv=None):
    """Runs the experiment and prints the table.

    Returns:
        A dict: `"headers"` and `"rows"` of the printed table (one row per
        data set) and `"errors"`, mapping `(dataset, method)` to the list
        of test errors, one per seed.
    """
    args = build_parser().parse_args(argv)
    if args.quick:
        args.epochs, args.seeds = 1, 1
        args.datasets = ["iris", "wine"]
        args.hidden = [16, 16]
    methods = [("ERM", None)] + [(f"mixup α={a:g}", a) for a in args.alpha]
    errors = {}
    for dataset in args.datasets:
        for name, alpha in methods:
            errors[dataset, name] = [
                run(dataset, alpha, seed, args) for seed in range(args.seeds)
            ]
    headers = ["data set"] + [name for name, _ in methods]
    headers.append("paper: ERM / mixup")
    rows = []
    for dataset in args.datasets:
        row = [dataset]
        row += [tables.format_mean_std(errors[dataset, n]) for n, _ in methods]
        paper = PAPER.get(dataset)
        row.append(f"{paper[0]} / {paper[1]}" if paper else "-")
        rows.append(row)
    tables.print_table(
        headers,
        rows,
        f"Test error (%), mean ± std over {args.seeds} seeds; "
        f"{args.epochs} epochs, batch {args.batch_size}, hidden "
        f"{args.hidden}",
    )
    return {"headers": headers, "rows": rows, "errors": errors}


if __name__ == "__main__":
    main()
