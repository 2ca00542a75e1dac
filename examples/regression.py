"""Regression: ERM, mixup and C-Mixup (partners with similar labels).

Mixing two examples whose labels are far apart puts the blended label on
the chord between them, which for a non-linear target is off the curve:
C-Mixup (Yao et al., NeurIPS 2022, arXiv:2210.05775) draws each partner
with probability proportional to `exp(-|y_i - y_j|^2 / (2 sigma^2))`
instead (`keras_mixup.Mixup(pairing="label_kernel", label_bandwidth=
sigma)`). Here, at CPU scale, on two tasks:

- `diabetes`: scikit-learn's diabetes data (442 patients, 10 features,
  disease progression after one year), each seed with its own 80/20
  split;
- `sine`: a 1-D synthetic task, `y = sin(2x) + x / 2 + N(0, 0.1^2)` with
  x uniform in [-3, 3], 64 training points (a fresh draw per seed) and a
  test grid of 1000 noiseless points: a non-linear curve whose distant
  points mixup would join by chords.

Targets are standardised with the training set's mean and deviation (so
`--bandwidth` is in units of the target's standard deviation) and the RMSE
is reported in the target's own units, mean ± std over seeds. The network
is a fully-connected ReLU network trained with Adam on the mean squared
error; mixing is a `keras_mixup.Mixup` mapped over the batches.

Run: `python examples/regression.py [--epochs 100] [--seeds 5]`.
"""

import command_line

TASKS = ("diabetes", "sine")


def build_parser():
    """The example's options (see `command_line.make_parser`)."""
    parser = command_line.make_parser(
        __doc__.splitlines()[0],
        epochs=100,
        alpha=[0.5, 2.0],
        batch_size=32,
        seeds=5,
    )
    parser.add_argument(
        "--bandwidth",
        type=float,
        default=0.2,
        help="C-Mixup's sigma, in standard deviations of the target",
    )
    parser.add_argument(
        "--tasks",
        nargs="+",
        default=list(TASKS),
        choices=TASKS,
        help="the regression tasks",
    )
    command_line.add_hidden(parser, [64, 64])
    parser.add_argument(
        "--learning-rate", type=float, default=1e-3, help="Adam learning rate"
    )
    return parser


if __name__ == "__main__":
    build_parser().parse_args()  # --help answers before TensorFlow loads

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tables  # noqa: E402
import tabular  # noqa: E402
import tensorflow as tf  # noqa: E402
import training  # noqa: E402

import keras_mixup  # noqa: E402


def load_task(name, seed):
    """`(x_train, y_train, x_test, y_test)`, float32, targets `[N, 1]`."""
    if name == "sine":
        rng = np.random.default_rng(seed)
        x_train = rng.uniform(-3, 3, size=(64, 1))
        noise = rng.normal(0, 0.1, size=(64, 1))
        x_test = np.linspace(-3, 3, 1000)[:, None]
        curve = lambda x: np.sin(2 * x) + x / 2  # noqa: E731
        data = (x_train, curve(x_train) + noise, x_test, curve(x_test))
    else:
        from sklearn.datasets import load_diabetes
        from sklearn.model_selection import train_test_split

        x, y = load_diabetes(return_X_y=True)
        x_train, x_test, y_train, y_test = train_test_split(
            x, y[:, None], test_size=0.2, random_state=seed
        )
        mean, std = x_train.mean(0), x_train.std(0)
        data = ((x_train - mean) / std, y_train, (x_test - mean) / std, y_test)
    return tuple(np.asarray(a, "float32") for a in data)


def methods(args):
    """`(name, Mixup options or None)` for ERM, mixup and C-Mixup."""
    found = [("ERM", None)]
    for alpha in args.alpha:
        found.append((f"mixup α={alpha:g}", {"alpha": alpha}))
        found.append(
            (
                f"C-Mixup α={alpha:g}, σ={args.bandwidth:g}",
                {
                    "alpha": alpha,
                    "pairing": "label_kernel",
                    "label_bandwidth": args.bandwidth,
                },
            )
        )
    return found


def fit_and_score(options, seed, data, args):
    """Trains one network on standardised targets; its test RMSE."""
    x_train, y_train, x_test, y_test = data
    mean, std = y_train.mean(), y_train.std()
    training.setup(seed)
    ds = tf.data.Dataset.from_tensor_slices((x_train, (y_train - mean) / std))
    ds = ds.shuffle(len(x_train), seed=seed).batch(args.batch_size)
    if options is not None:
        ds = ds.map(keras_mixup.Mixup(seed=seed, **options))
    model = tabular.mlp(x_train.shape[1:], 1, hidden=args.hidden)
    model.compile(
        keras.optimizers.Adam(args.learning_rate),
        "mse",
        run_eagerly=args.quick,  # a few steps: tracing costs more
    )
    model.fit(
        ds.prefetch(2), epochs=args.epochs, verbose=args.verbose, shuffle=False
    )
    predicted = tabular.predict_logits(model, x_test) * std + mean
    return float(np.sqrt(np.mean((predicted - y_test) ** 2)))


def run_all(args):
    """Every task, method and seed: `{(task, method): [RMSE per seed]}`."""
    results = {}
    for task in args.tasks:
        for seed in range(args.seeds):
            data = load_task(task, seed)
            for name, options in methods(args):
                rmse = fit_and_score(options, seed, data, args)
                results.setdefault((task, name), []).append(rmse)
    return results


def main(argv=None):
    """Runs the experiment and prints the table.

    Returns:
        A dict: `"headers"` and `"rows"` of the printed table (one row per
        method, one column per task), and `"results"` mapping `(task,
        method)` to the per-seed test RMSEs.
    """
    args = build_parser().parse_args(argv)
    if args.quick:
        args.epochs, args.seeds, args.hidden, args.alpha = 2, 1, [16], [2.0]
    results = run_all(args)
    headers = ["method", *(f"{task}: test RMSE" for task in args.tasks)]
    rows = [
        [
            name,
            *(
                tables.format_mean_std(results[task, name], 3)
                for task in args.tasks
            ),
        ]
        for name, _ in methods(args)
    ]
    tables.print_table(
        headers,
        rows,
        f"MLP {args.hidden}, {args.epochs} epochs, batch {args.batch_size}: "
        f"test RMSE, mean ± std over {args.seeds} seeds",
    )
    return {"headers": headers, "rows": rows, "results": results}


if __name__ == "__main__":
    main()
