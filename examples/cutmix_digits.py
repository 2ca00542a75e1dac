"""ERM, mixup, CutMix and the mixup/CutMix switch on 8x8 digits (a CNN).

A CPU-sized comparison of the mixing family modern image recipes use:
scikit-learn's 8x8 digits (1797 images, pixels in [0, 1], a stratified
80/20 split), a small CNN (two 3x3 convolutions of 32 and 64 filters,
global average pooling, Adam), trained

- by ERM;
- with mixup, `keras_mixup.Mixup(alpha)`;
- with CutMix, `keras_mixup.CutMix(cutmix_alpha)`;
- with the switch, `keras_mixup.Mixup(alpha, cutmix_alpha=...,
  switch_prob=...)`, the DeiT / ConvNeXt recipe (mixup 0.8, CutMix 1.0,
  switch 0.5; one choice per example here).

It prints the test error of the last epoch and the best epoch, mean ± std
over seeds, and saves a figure of CutMix'd digits with their label weights
(`cutmix_digits.png`).

Run: `python examples/cutmix_digits.py [--epochs 40] [--seeds 3]`.
"""

import command_line


def build_parser():
    """The example's options (see `command_line.make_parser`)."""
    parser = command_line.make_parser(
        __doc__.splitlines()[0],
        epochs=40,
        seeds=3,
        alpha=0.8,
        batch_size=64,
        figures=("cutmix_digits.png",),
    )
    parser.add_argument(
        "--cutmix-alpha", type=float, default=1.0, help="CutMix Beta(a, a)"
    )
    parser.add_argument(
        "--switch-prob",
        type=float,
        default=0.5,
        help="the switch's probability of CutMix over mixup",
    )
    return parser


if __name__ == "__main__":
    build_parser().parse_args()  # --help answers before TensorFlow loads

import keras  # noqa: E402
import numpy as np  # noqa: E402
import plots  # noqa: E402
import tables  # noqa: E402
import tabular  # noqa: E402
from training import setup  # noqa: E402

import keras_mixup  # noqa: E402

HEADERS = ("method", "test error: last epoch", "best epoch")


def small_cnn(num_classes):
    """Two 3x3 convolutions, global average pooling, logits."""
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
            keras.layers.Conv2D(64, 3, padding="same", activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(num_classes),
        ]
    )


def mixers(args, num_classes, seed):
    """The four methods' batch map functions (`None` for ERM)."""
    return {
        "ERM": None,
        f"mixup (α={args.alpha:g})": keras_mixup.Mixup(
            args.alpha, num_classes=num_classes, seed=seed
        ),
        f"CutMix (α={args.cutmix_alpha:g})": keras_mixup.CutMix(
            args.cutmix_alpha, num_classes=num_classes, seed=seed
        ),
        f"switch (p={args.switch_prob:g})": keras_mixup.Mixup(
            args.alpha,
            num_classes=num_classes,
            cutmix_alpha=args.cutmix_alpha,
            switch_prob=args.switch_prob,
            seed=seed,
        ),
    }


def run_seed(seed, data, args):
    """Trains the four networks of one seed; returns their test errors
    per epoch, by method."""
    x_train, y_train, x_test, y_test, num_classes = data
    errors = {}
    for name, mixer in mixers(args, num_classes, seed).items():
        setup(seed)
        history = tabular.fit_classifier(
            small_cnn(num_classes),
            x_train,
            y_train,
            num_classes=num_classes,
            epochs=args.epochs,
            batch_size=args.batch_size,
            mixup=mixer,
            seed=seed,
            eval_sets={"test": (x_test, y_test)},
            verbose=args.verbose,
            run_eagerly=args.quick,  # a few steps: tracing costs more
        )
        errors[name] = history["test"]
    return errors


def plot_cutmixed(x, y, num_classes, path, args):
    """Eight CutMix'd digits, their pasted boxes outlined, each titled
    with its label weights (the draw is made apart from the paste, so its
    boxes can be drawn)."""
    plt = plots.pyplot()
    engine = keras_mixup.CutMix(
        args.cutmix_alpha, num_classes=num_classes, seed=3
    ).engine
    x, y = x[:8], y[:8]
    draw = engine.draw(8, x, y)
    images, labels, _ = engine.apply(draw, x, y)
    fig, axes = plt.subplots(1, 8, figsize=(12, 2.6))
    lows, highs = (draw.params[key].numpy() for key in ("lows", "highs"))
    boxes = zip(lows, highs, strict=True)
    panels = zip(axes, images.numpy(), labels.numpy(), boxes, strict=True)
    for ax, image, label, (low, high) in panels:
        ax.imshow(image[..., 0], cmap="gray_r", vmin=0, vmax=1)
        (y0, x0), (y1, x1) = low - 0.5, high - 0.5
        ax.add_patch(
            plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec="red")
        )
        top = np.argsort(label)[::-1][:2]
        ax.set_title(
            "\n".join(f"{c}: {label[c]:.2f}" for c in top if label[c] > 0)
        )
        ax.axis("off")
    fig.suptitle(
        "CutMix (α=1) on 8x8 digits: the partner's pixels in the red box; "
        "label weights = pixels kept"
    )
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    plots.save_figure(fig, path)


def main(argv=None):
    """Runs the comparison and prints the table.

    Returns:
        A dict: `"headers"` and `"rows"` of the printed table, `"errors"`
        mapping each method to its per-seed per-epoch test errors, and
        `"figures"`.
    """
    args = build_parser().parse_args(argv)
    if args.quick:
        args.epochs, args.seeds = 1, 1
    x, y, num_classes = tabular.load_digits_images()
    x_train, y_train, x_test, y_test = tabular.split(x, y, seed=0)
    if args.quick:  # a few batches: enough to run every method's steps
        x_train, y_train = x_train[:256], y_train[:256]
    data = (x_train, y_train, x_test, y_test, num_classes)
    errors = {}
    for seed in range(args.seeds):
        for name, curve in run_seed(seed, data, args).items():
            errors.setdefault(name, []).append(curve)
    rows = [
        [
            name,
            tables.format_mean_std([c[-1] for c in curves]),
            tables.format_mean_std([min(c) for c in curves]),
        ]
        for name, curves in errors.items()
    ]
    tables.print_table(
        HEADERS,
        rows,
        f"8x8 digits, small CNN, {args.epochs} epochs, batch "
        f"{args.batch_size}: test error (%), mean ± std over {args.seeds} "
        "seeds",
    )
    path = command_line.figure_path(args, "cutmix_digits.png")
    if path:
        plot_cutmixed(x_test, y_test, num_classes, path, args)
        print(f"saved {path}")
    return {
        "headers": list(HEADERS),
        "rows": rows,
        "errors": errors,
        "figures": [path] if path else [],
    }


if __name__ == "__main__":
    main()
