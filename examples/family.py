"""ERM against every variant of the mixing family on digits (a small CNN).

A CPU-sized comparison of the mixing family: scikit-learn's 8x8 digits
(1797 images, pixels in [0, 1], a stratified 80/20 split), upscaled to
`--size` pixels a side (bilinear; 16 by default, so that a cut, a grid of
holes or four tiles cover more than a few pixels), a small CNN (3x3
convolutions of 32 and 64 filters with a 2x2 max pooling between them,
global average pooling, Adam), trained

- by ERM;
- with each variant of `--variants` (mixup, CutMix, FMix, ResizeMix,
  GridMix, Mosaic by default), `keras_mixup.Mixup(variant=name,
  alpha=...)` with the variant's own defaults otherwise; a name that is
  not registered in this keras_mixup is skipped with a printed note, so
  the example runs each variant as soon as it is merged;
- with a choice among all of them (`variant={name: 1/k, ...}`), one
  choice per example.

It prints the test error of the last epoch and of the best epoch, mean ±
std over seeds, saves a figure of each variant's output on the same test
digits with its label weights, where each pixel comes from (outlined) and
the digits' boxes moved by the variant (`family.png`), and the per-seed,
per-epoch test errors beside it (`family.json`); `--replot` redraws the
figure of a saved run without training.

Run: `python examples/family.py [--epochs 30] [--seeds 3] [--size 16]`.
"""

import command_line

#: The variants compared by default, in the order of the table.
VARIANTS = ("mixup", "cutmix", "fmix", "resizemix", "gridmix", "mosaic")


def build_parser():
    """The example's options (see `command_line.make_parser`)."""
    parser = command_line.make_parser(
        __doc__.splitlines()[0],
        epochs=30,
        seeds=3,
        alpha=1.0,
        batch_size=64,
        figures=("family.png",),
        replot=True,
    )
    parser.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help="the variants compared, comma-separated (names of "
        "keras_mixup.variants.REGISTRY; others are skipped)",
    )
    parser.add_argument(
        "--size", type=int, default=16, help="the digits' side in pixels"
    )
    parser.add_argument(
        "--no-choice",
        dest="choice",
        action="store_false",
        help="leave out the choice among all the variants",
    )
    return parser


if __name__ == "__main__":
    build_parser().parse_args()  # --help answers before TensorFlow loads

import argparse  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import plots  # noqa: E402
import tables  # noqa: E402
import tabular  # noqa: E402
import tensorflow as tf  # noqa: E402
from training import setup  # noqa: E402

import keras_mixup  # noqa: E402

HEADERS = ("method", "test error: last epoch", "best epoch")


def registered_variants(names):
    """The names of `names` (comma-separated) that are registered, in
    order; prints a note for each one that is not."""
    registry = keras_mixup.variants.REGISTRY
    known = []
    for name in (n.strip() for n in names.split(",")):
        if not name:
            continue
        if name in registry:
            known.append(name)
        else:
            print(
                f"note: skipping {name!r}: not a variant of this keras_mixup "
                f"(registered: {', '.join(sorted(registry))})"
            )
    return known


def load_images(size):
    """The digits as `[N, size, size, 1]` images in [0, 1], and labels."""
    x, y, num_classes = tabular.load_digits_images()
    if size != x.shape[1]:
        x = tf.image.resize(x, (size, size), "bilinear").numpy()
        x = np.clip(x, 0.0, 1.0)
    return x.astype("float32"), y, num_classes


def small_cnn(size, num_classes):
    """Two 3x3 convolutions with a 2x2 max pooling between them (so that
    the second sees 8x8 pixels of 16x16 digits), global average pooling,
    logits."""
    return keras.Sequential(
        [
            keras.Input((size, size, 1)),
            keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(64, 3, padding="same", activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(num_classes),
        ]
    )


def methods(args, variants):
    """`{method name: variant= value or None (ERM)}`, in table order."""
    table = {"ERM": None}
    table.update({name: name for name in variants})
    if args.choice and len(variants) > 1:
        share = 1.0 / len(variants)
        table[f"choice of {len(variants)}"] = dict.fromkeys(variants, share)
    return table


def run_seed(seed, data, args, table):
    """Trains one network per method; returns each one's test error per
    epoch, by method."""
    x_train, y_train, x_test, y_test, num_classes = data
    errors = {}
    for name, variant in table.items():
        setup(seed)
        mixer = None
        if variant is not None:
            mixer = keras_mixup.Mixup(
                alpha=args.alpha,
                variant=variant,
                num_classes=num_classes,
                seed=seed,
            )
        history = tabular.fit_classifier(
            small_cnn(args.size, num_classes),
            x_train,
            y_train,
            num_classes=num_classes,
            epochs=args.epochs,
            batch_size=args.batch_size,
            mixup=mixer,
            seed=seed,
            eval_sets={"test": (x_test, y_test)},
            verbose=args.verbose,
        )
        errors[name] = history["test"]
    return errors


def summary_rows(errors):
    """The table's rows: last-epoch and best-epoch error, mean ± std."""
    return [
        [
            name,
            tables.format_mean_std([c[-1] for c in curves]),
            tables.format_mean_std([min(c) for c in curves]),
        ]
        for name, curves in errors.items()
    ]


def digit_boxes(x, y):
    """keras's `bounding_boxes` ("xyxy", pixels): one box a digit, around
    its ink (pixels above 0.25), labelled with its class."""
    boxes = []
    for image in x[..., 0] > 0.25:
        rows, cols = np.flatnonzero(image.any(1)), np.flatnonzero(image.any(0))
        boxes.append([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1])
    return {
        "boxes": np.asarray(boxes, "float32")[:, None],
        "labels": np.asarray(y, "int32")[:, None],
    }


def mixed_panels(variant, x, y, num_classes, seed):
    """One draw of `variant` applied to the digits `x`, to a map of each
    pixel's source (each image filled with its index) and, where the
    variant takes them, to the digits' boxes. Returns `(images, labels,
    sources, boxes or None)` as NumPy arrays."""
    options = dict(alpha=1.0, variant=variant, num_classes=num_classes)
    engine = keras_mixup.Mixup(seed=seed, **options).engine
    with_boxes = "bounding_boxes" in engine.variant.takes
    if with_boxes:  # the box format is refused where boxes are not taken
        options["bounding_box_format"] = "xyxy"
        engine = keras_mixup.Mixup(seed=seed, **options).engine
    draw = engine.draw(len(x), x, y)
    images, labels, _ = engine.apply(draw, x, y)
    ids = np.arange(len(x), dtype="float32")[:, None, None, None]
    sources, _, _ = engine.apply(draw, np.broadcast_to(ids, x.shape).copy(), y)
    boxes = None
    if with_boxes:
        mixed = engine.apply_boxes(draw, digit_boxes(x, y), x)
        boxes = {k: np.asarray(v) for k, v in mixed.items()}
    return (
        np.asarray(images),
        np.asarray(labels),
        np.asarray(sources)[..., 0],
        boxes,
    )


def _outline(ax, plt, sources, boxes, row):
    """The borders between pixel sources (where each pixel is one source's)
    and the boxes of example `row` (red), on `ax`."""
    if np.allclose(sources, np.round(sources)) and np.ptp(sources) > 0:
        ax.contour(sources, levels=np.unique(sources)[:-1] + 0.5, colors="c")
    if boxes is None:
        return
    for (x0, y0, x1, y1), label in zip(
        boxes["boxes"][row], boxes["labels"][row], strict=True
    ):
        if label < 0:  # padding
            continue
        ax.add_patch(
            plt.Rectangle(
                (x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, ec="red"
            )
        )


def plot_variants(x, y, num_classes, table, path, *, results, count=6):
    """One row a method (ERM left out): its output on the same `count`
    test digits (the first of each class 0, 1, ...), titled with the label
    weights (largest first), the borders between the pixels' sources in
    cyan, the moved boxes in red; `results` saved beside it."""
    plt = plots.pyplot()
    table = {k: v for k, v in table.items() if v is not None}
    fig, axes = plt.subplots(
        len(table), count, figsize=(1.7 * count, 2.0 * len(table)), squeeze=0
    )
    first = [int(np.flatnonzero(y == c)[0]) for c in range(count)]
    x, y = x[first], y[first]  # one digit of each class 0, 1, ...
    for axes_row, (name, variant) in zip(axes, table.items(), strict=True):
        images, labels, sources, boxes = mixed_panels(
            variant, x, y, num_classes, seed=3
        )
        for i, ax in enumerate(axes_row):
            ax.imshow(images[i, ..., 0], cmap="gray_r", vmin=0, vmax=1)
            _outline(ax, plt, sources[i], boxes, i)
            top = [c for c in np.argsort(labels[i])[::-1][:2] if labels[i][c]]
            weights = "  ".join(f"{c}: {labels[i][c]:.2f}" for c in top)
            ax.set_title(weights, fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
        axes_row[0].set_ylabel(name)
    fig.suptitle(
        "Each variant on the same digits: label weights (the exact fraction "
        "of each source's pixels), sources outlined, boxes in red",
        fontsize=9,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    plots.save_figure(fig, path, results=results)


def held_out_digits(size):
    """The test split of the digits at `size` pixels, and the classes."""
    x, y, num_classes = load_images(size)
    _, _, x_test, y_test = tabular.split(x, y, seed=0)
    return x_test, y_test, num_classes


def replot(path):
    """Redraws the figure of the run saved at `path` (its variants, size
    and choice), without training; returns `{"figures": [path]}`."""
    results = plots.load_results(path)
    saved = argparse.Namespace(**results["options"])
    table = methods(saved, registered_variants(",".join(results["variants"])))
    x_test, y_test, num_classes = held_out_digits(saved.size)
    plot_variants(x_test, y_test, num_classes, table, path, results=results)
    print(f"saved {path}")
    return {"figures": [path]}


def main(argv=None):
    """Runs the comparison, prints the table and draws the figure.

    Returns:
        A dict: `"headers"` and `"rows"` of the printed table, `"errors"`
        mapping each method to its per-seed per-epoch test errors,
        `"variants"` (the registered ones compared) and `"figures"`.
    """
    args = build_parser().parse_args(argv)
    if args.quick:
        args.epochs, args.seeds, args.size = 1, 1, 8
    if args.replot:
        return replot(command_line.figure_path(args, "family.png"))
    variants = registered_variants(args.variants)
    table = methods(args, variants)
    x, y, num_classes = load_images(args.size)
    x_train, y_train, x_test, y_test = tabular.split(x, y, seed=0)
    data = (x_train, y_train, x_test, y_test, num_classes)
    errors = {}
    for seed in range(args.seeds):
        for name, curve in run_seed(seed, data, args, table).items():
            errors.setdefault(name, []).append(curve)
    rows = summary_rows(errors)
    tables.print_table(
        HEADERS,
        rows,
        f"digits at {args.size}x{args.size}, small CNN, {args.epochs} epochs,"
        f" batch {args.batch_size}, alpha {args.alpha:g}: test error (%), "
        f"mean ± std over {args.seeds} seeds",
    )
    path = command_line.figure_path(args, "family.png")
    if path:
        results = {
            "options": {k: v for k, v in vars(args).items() if k != "out"},
            "variants": variants,
            "errors": errors,
        }
        plot_variants(x_test, y_test, num_classes, table, path, results=results)
        print(f"saved {path}")
    return {
        "headers": list(HEADERS),
        "rows": rows,
        "errors": errors,
        "variants": variants,
        "figures": [path] if path else [],
    }


if __name__ == "__main__":
    main()
