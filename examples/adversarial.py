"""Table 3 of the paper: robustness to adversarial examples, ERM and mixup.

The paper attacks ResNet-101 models trained on ImageNet with the Fast
Gradient Sign Method (FGSM, one step of size epsilon along the sign of the
input gradient of the loss) and its iterative form (I-FGSM: 10 steps of
epsilon / 10, each projected back onto the epsilon ball), and reports the
top-1 error on the attacked validation set:

- white box: each model is attacked through its own gradients;
- black box: the examples are crafted on a first ERM model, and a second
  ERM model and the mixup model are evaluated on them.

Here the networks are fully-connected (two hidden layers of 512 ReLU
units, Adam) on scikit-learn's 8x8 digits with pixels in [0, 1];
adversarial images are clipped to [0, 1]. Mixing is `keras_mixup.Mixup`
mapped over the batched training set, with alpha 0.2 by default (the paper's
ImageNet ResNets use 0.2, its ResNeXts 0.4). A figure shows the white-box
FGSM error as epsilon grows.

Run: `python examples/adversarial.py [--epsilon 0.1] [--seeds 3]`;
`--replot` redraws the figure from the curves a full run saved next to it
(`adversarial.json`).
"""

import command_line


def build_parser():
    """The example's options (see `command_line.make_parser`)."""
    parser = command_line.make_parser(
        __doc__.splitlines()[0],
        epochs=30,
        seeds=3,
        alpha=0.2,
        batch_size=64,
        figures=("adversarial.png",),
        replot=True,
    )
    parser.add_argument(
        "--epsilon", type=float, default=0.1, help="the attack's L-inf bound"
    )
    parser.add_argument(
        "--steps", type=int, default=10, help="I-FGSM iterations"
    )
    parser.add_argument(
        "--curve-epsilons",
        type=float,
        nargs="+",
        default=[0.0, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3],
        help="epsilons of the figure's white-box FGSM curve",
    )
    command_line.add_hidden(parser, [512, 512])
    return parser


if __name__ == "__main__":
    build_parser().parse_args()  # --help answers before TensorFlow loads

import keras  # noqa: E402
import numpy as np  # noqa: E402
import plots  # noqa: E402
import tables  # noqa: E402
import tabular  # noqa: E402
import tensorflow as tf  # noqa: E402
from training import setup  # noqa: E402

import keras_mixup  # noqa: E402

HEADERS = (
    "model",
    "clean",
    "white box: FGSM",
    "I-FGSM",
    "black box: FGSM",
    "I-FGSM",
)

#: Table 3 of the paper (ImageNet, ResNet-101, top-1 error, percent):
#: `model -> (white FGSM, white I-FGSM, black FGSM, black I-FGSM)`.
PAPER = {"ERM": (90.7, 99.9, 57.0, 57.3), "mixup": (75.2, 99.6, 46.0, 40.9)}


def loss_sign_gradient(model, x, y, num_classes):
    """The sign of the gradient of the cross-entropy with respect to x."""
    x = tf.convert_to_tensor(x)
    labels = tf.one_hot(y, num_classes)
    with tf.GradientTape() as tape:
        tape.watch(x)
        logits = model(x, training=False)
        loss = keras.losses.categorical_crossentropy(
            labels, logits, from_logits=True
        )
    return tf.sign(tape.gradient(loss, x))


def attack(model, x, y, num_classes, *, epsilon, steps=1):
    """FGSM (`steps=1`) or I-FGSM: `steps` signed-gradient steps of size
    `epsilon / steps`, each clipped to the epsilon ball around `x` and to
    [0, 1]. Returns the adversarial examples as a NumPy array."""
    x = tf.convert_to_tensor(x)
    adversarial = x
    for _ in range(steps):
        step = loss_sign_gradient(model, adversarial, y, num_classes)
        adversarial = adversarial + (epsilon / steps) * step
        adversarial = tf.clip_by_value(adversarial, x - epsilon, x + epsilon)
        adversarial = tf.clip_by_value(adversarial, 0.0, 1.0)
    return adversarial.numpy()


def train(alpha, seed, data, args):
    """Trains one network (ERM if `alpha` is None) and returns it."""
    x_train, y_train, _, _, num_classes = data
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
    )
    return model


def evaluate(seed, data, args):
    """Trains the three networks of one seed and attacks them.

    Returns:
        `(errors, curves)`: `errors[model]` is the list of the table's five
        errors; `curves[model]` the white-box FGSM errors at each
        `args.curve_epsilons`.
    """
    _, _, x_test, y_test, num_classes = data
    models = {
        "ERM": train(None, seed, data, args),
        "mixup": train(args.alpha, seed, data, args),
    }
    # The black-box source: another ERM model, with its own seed.
    source = train(None, seed + 1000, data, args)
    black = {
        steps: attack(
            source,
            x_test,
            y_test,
            num_classes,
            epsilon=args.epsilon,
            steps=steps,
        )
        for steps in (1, args.steps)
    }
    errors, curves = {}, {}
    for name, model in models.items():
        row = [tabular.error_rate(model, x_test, y_test)]
        for steps in (1, args.steps):
            white = attack(
                model,
                x_test,
                y_test,
                num_classes,
                epsilon=args.epsilon,
                steps=steps,
            )
            row.append(tabular.error_rate(model, white, y_test))
        for steps in (1, args.steps):
            row.append(tabular.error_rate(model, black[steps], y_test))
        errors[name] = row
        curves[name] = [
            tabular.error_rate(
                model,
                attack(model, x_test, y_test, num_classes, epsilon=eps),
                y_test,
            )
            for eps in args.curve_epsilons
        ]
    return errors, curves


def plot_curves(curves, path, args):
    """White-box FGSM error against epsilon, ERM and mixup."""
    label = f"mixup (α={args.alpha:g})"
    hidden = "-".join(map(str, args.hidden))
    plots.plot_curves(
        {
            "white-box FGSM attack": {
                "ERM": curves["ERM"],
                label: curves["mixup"],
            }
        },
        path,
        xlabel="epsilon (pixels in [0, 1])",
        ylabel="top-1 test error (%)",
        title=f"scikit-learn 8x8 digits, MLP {hidden} "
        f"({plots.mean_of_seeds(args.seeds)})",
        x=args.curve_epsilons,
        marker="o",
    )


def main(argv=None):
    """Runs the experiment and prints the table.

    Returns:
        A dict: `"headers"` and `"rows"` of the printed table (ERM and
        mixup), `"errors"` mapping each model to its per-seed rows of
        errors, and `"curves"` its per-seed white-box FGSM error curves.
    """
    args = build_parser().parse_args(argv)
    if args.quick:
        args.epochs, args.seeds, args.steps = 1, 1, 2
        args.hidden, args.curve_epsilons = [32, 32], [0.0, 0.1]
    path = command_line.figure_path(args, "adversarial.png")
    if args.replot:
        plots.replot_curves(path)
        print(f"saved {path}")
        return {"figures": [path]}
    x, y, num_classes = tabular.load_tabular("digits")
    x_train, y_train, x_test, y_test = tabular.split(x / 16.0, y, seed=0)
    data = (x_train, y_train, x_test, y_test, num_classes)
    errors = {"ERM": [], "mixup": []}
    curves = {"ERM": [], "mixup": []}
    for seed in range(args.seeds):
        seed_errors, seed_curves = evaluate(seed, data, args)
        for name in errors:
            errors[name].append(seed_errors[name])
            curves[name].append(seed_curves[name])
    rows = []
    for name, runs in errors.items():
        label = name if name == "ERM" else f"mixup (α={args.alpha:g})"
        columns = np.asarray(runs).T
        rows.append([label, *(tables.format_mean_std(c) for c in columns)])
    tables.print_table(
        HEADERS,
        rows,
        f"digits, MLP {args.hidden}, {args.epochs} epochs: top-1 error (%), "
        f"epsilon {args.epsilon:g}, I-FGSM {args.steps} steps, mean ± std "
        f"over {args.seeds} seeds",
    )
    tables.print_table(
        HEADERS,
        [[name, "-", *values] for name, values in PAPER.items()],
        "The paper (ImageNet, ResNet-101, epsilon 4 of 255)",
        digits=1,
    )
    if path:
        plot_curves(curves, path, args)
        print(f"saved {path}")
    return {
        "headers": list(HEADERS),
        "rows": rows,
        "errors": errors,
        "curves": curves,
        "figures": [path] if path else [],
    }


if __name__ == "__main__":
    main()
