"""Calibration: ERM, label smoothing, mixup and RegMixup, measured by ECE.

Thulasidasan et al. (NeurIPS 2019, arXiv:1905.11001) find that networks
trained with mixup are better calibrated than ERM ones: the confidence of
their predictions (the largest softmax probability) is closer to their
accuracy. RegMixup (Pinto et al., NeurIPS 2022, arXiv:2206.14502) adds the
clean loss back to keep ERM's accuracy with mixup's calibration. Here, at
CPU scale: a fully-connected network (two hidden layers of 512 ReLU units,
large enough to fit the training set) on scikit-learn's 8x8 digits, Adam,
each seed with its own stratified 80/20 split and initialisation, shared by
every method. The methods:

- ERM (one-hot labels);
- label smoothing (`--label-smoothing`, 0.1);
- mixup (`keras_mixup.Mixup` mapped over the batches; `--alpha`);
- RegMixup (`keras_mixup.MixupModel(clean_loss_weight=1)`, alpha 10:
  `--regmixup-alpha`, `--clean-loss-weight`).

Reported, on the test set: the top-1 error, the expected calibration error
(`keras_mixup.metrics.ExpectedCalibrationError`, 15 equal-width bins), the
mean confidence and the negative log-likelihood, mean ± std over seeds;
and a reliability diagram per method (`calibration.png`: accuracy against
confidence per bin, the test predictions of every seed pooled).

Run: `python examples/calibration.py [--epochs 60] [--seeds 5]`.
"""

import command_line


def build_parser():
    """The example's options (see `command_line.make_parser`)."""
    parser = command_line.make_parser(
        __doc__.splitlines()[0],
        epochs=60,
        alpha=[0.2],
        batch_size=64,
        seeds=5,
        figures=("calibration.png",),
    )
    parser.add_argument(
        "--label-smoothing",
        type=float,
        default=0.1,
        help="the label smoothing of the label smoothing baseline",
    )
    parser.add_argument(
        "--regmixup-alpha",
        type=float,
        default=10.0,
        help="RegMixup's alpha (its paper uses 10 to 20)",
    )
    parser.add_argument(
        "--clean-loss-weight",
        type=float,
        default=1.0,
        help="RegMixup's weight of the clean loss",
    )
    parser.add_argument(
        "--num-bins", type=int, default=15, help="ECE confidence bins"
    )
    command_line.add_hidden(parser, [512, 512])
    parser.add_argument(
        "--learning-rate", type=float, default=1e-3, help="Adam learning rate"
    )
    return parser


if __name__ == "__main__":
    build_parser().parse_args()  # --help answers before TensorFlow loads

import keras  # noqa: E402
import numpy as np  # noqa: E402
import plots  # noqa: E402
import tables  # noqa: E402
import tabular  # noqa: E402
import training  # noqa: E402

import keras_mixup  # noqa: E402

HEADERS = ("method", "test error (%)", "ECE (%)", "confidence (%)", "NLL")


def methods(args):
    """The methods: a list of `(name, options)`; options say how the
    labels are prepared (`smoothing`, a mixup `alpha`) or how the model
    trains (`regmixup`: `(alpha, clean loss weight)`)."""
    found = [("ERM", {})]
    found.append(
        (
            f"label smoothing {args.label_smoothing:g}",
            {"smoothing": args.label_smoothing},
        )
    )
    found += [(f"mixup α={a:g}", {"alpha": a}) for a in args.alpha]
    regmixup = (args.regmixup_alpha, args.clean_loss_weight)
    found.append(
        (
            f"RegMixup α={regmixup[0]:g}, w={regmixup[1]:g}",
            {"regmixup": regmixup},
        )
    )
    return found


def train(options, seed, data, args):
    """Trains one network; returns its test logits."""
    x_train, y_train, x_test, _, num_classes = data
    training.setup(seed)
    model = tabular.mlp(x_train.shape[1:], num_classes, hidden=args.hidden)
    if "regmixup" in options:
        alpha, weight = options["regmixup"]
        model = keras_mixup.MixupModel(
            model,
            alpha=alpha,
            num_classes=num_classes,
            clean_loss_weight=weight,
            seed=seed,
        )
    labels = training.encode_labels(num_classes, options.get("smoothing", 0))
    if "alpha" in options:
        labels = keras_mixup.Mixup(
            options["alpha"], num_classes=num_classes, seed=seed
        )
    tabular.fit_classifier(
        model,
        x_train,
        y_train,
        num_classes=num_classes,
        epochs=args.epochs,
        batch_size=args.batch_size,
        mixup=labels,
        seed=seed,
        optimizer=keras.optimizers.Adam(args.learning_rate),
        verbose=args.verbose,
    )
    return tabular.predict_logits(model, x_test)


def calibration(logits, labels, num_bins):
    """Test error, ECE, mean confidence (percent), NLL and the bin sums."""
    metric = keras_mixup.metrics.ExpectedCalibrationError(
        num_bins=num_bins, from_logits=True
    )
    metric.update_state(labels, logits)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return {
        "error": 100.0 * float(np.mean(log_p.argmax(1) != labels)),
        "ece": 100.0 * float(metric.result()),
        "confidence": 100.0 * float(np.exp(log_p.max(1)).mean()),
        "nll": float(-log_p[np.arange(len(labels)), labels].mean()),
        "bins": {
            name: np.asarray(getattr(metric, name)).tolist()
            for name in ("bin_counts", "bin_correct", "bin_confidences")
        },
    }


def run_all(args):
    """Trains every method on every seed's split.

    Returns:
        A dict `method -> list of per-seed calibration results`.
    """
    x, y, num_classes = tabular.load_tabular("digits")
    results = {name: [] for name, _ in methods(args)}
    for seed in range(args.seeds):
        x_train, y_train, x_test, y_test = tabular.split(x / 16.0, y, seed=seed)
        data = (x_train, y_train, x_test, y_test, num_classes)
        for name, options in methods(args):
            logits = train(options, seed, data, args)
            results[name].append(calibration(logits, y_test, args.num_bins))
    return results


def table_rows(results):
    """One row per method: mean ± std over seeds of each measure."""
    rows = []
    for name, runs in results.items():
        cells = [
            tables.format_mean_std([r[key] for r in runs], digits)
            for key, digits in (
                ("error", 1),
                ("ece", 1),
                ("confidence", 1),
                ("nll", 3),
            )
        ]
        rows.append([name, *cells])
    return rows


def pooled_bins(runs):
    """The bin sums of every seed, added: `(counts, correct, confidences)`."""
    return tuple(
        np.sum([r["bins"][name] for r in runs], axis=0)
        for name in ("bin_counts", "bin_correct", "bin_confidences")
    )


def reliability_diagram(results, path, args):
    """Accuracy against confidence per bin, one panel per method."""
    plt = plots.pyplot()
    names = list(results)
    fig, axes = plt.subplots(
        1, len(names), figsize=(3.2 * len(names), 3.6), sharey=True
    )
    edges = np.linspace(0.0, 1.0, args.num_bins + 1)
    width = edges[1] - edges[0]
    for ax, name in zip(np.atleast_1d(axes), names, strict=True):
        counts, correct, confidences = pooled_bins(results[name])
        seen = counts > 0
        accuracy = np.where(seen, correct / np.maximum(counts, 1), 0.0)
        mean_conf = np.where(seen, confidences / np.maximum(counts, 1), 0.0)
        ax.bar(edges[:-1], accuracy, width, align="edge", label="accuracy")
        ax.bar(
            edges[:-1][seen],
            (mean_conf - accuracy)[seen],
            width,
            bottom=accuracy[seen],
            align="edge",
            color="none",
            edgecolor="crimson",
            hatch="//",
            label="gap to confidence",
        )
        share = counts / counts.sum()
        ax.stairs(share, edges, color="grey", label="share of examples")
        ax.plot([0, 1], [0, 1], "k--", linewidth=1)
        ece = np.mean([r["ece"] for r in results[name]])
        ax.set_title(f"{name}\nECE {ece:.1f}%", fontsize=9)
        ax.set_xlabel("confidence")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
    np.atleast_1d(axes)[0].set_ylabel("accuracy")
    np.atleast_1d(axes)[0].legend(loc="upper left", fontsize=8)
    fig.suptitle(
        f"Reliability on the digits test sets, MLP {args.hidden}, "
        f"{args.epochs} epochs ({args.seeds} seed"
        f"{'s' if args.seeds > 1 else ''} pooled)",
        fontsize=10,
    )
    fig.tight_layout()
    plots.save_figure(fig, path, results=results)


def main(argv=None):
    """Runs the experiment, prints the table and saves the figure.

    Returns:
        A dict: `"headers"` and `"rows"` of the printed table (one row per
        method), `"results"` mapping each method to its per-seed results
        (`error`, `ece`, `confidence`, `nll`, `bins`), and `"figures"`
        listing the saved figures.
    """
    args = build_parser().parse_args(argv)
    if args.quick:
        args.epochs, args.seeds, args.hidden = 2, 1, [32]
    path = command_line.figure_path(args, "calibration.png")
    results = run_all(args)
    rows = table_rows(results)
    tables.print_table(
        HEADERS,
        rows,
        f"digits, MLP {args.hidden}, {args.epochs} epochs, batch "
        f"{args.batch_size}: test set, mean ± std over {args.seeds} seeds",
    )
    if path:
        reliability_diagram(results, path, args)
        print(f"saved {path}")
    return {
        "headers": list(HEADERS),
        "rows": rows,
        "results": results,
        "figures": [path] if path else [],
    }


if __name__ == "__main__":
    main()
