"""The Beta(alpha, alpha) distribution of lam, and what mixing looks like.

For alpha in 0.1, 0.2, 0.4, 1, 8 and 32 (the values the paper uses: 0.1
to 0.4 on ImageNet, 1 on CIFAR, 8 and 32 with corrupted labels) this draws
lam with `keras_mixup.sample_lambda`, compares the draws with the exact
Beta density (scipy), prints a table of the comparison and saves:

- `beta_densities.png`: each density over a histogram of the draws;
- `mixed_digits.png`: scikit-learn digits mixed by `keras_mixup.Mixup`,
  one row per alpha (`--batch-size` digits each), each image titled with
  its mixed label: "0.73·3 + 0.27·8" is 0.73 times a 3 plus 0.27 times an
  8, and its label puts weight 0.73 on class 3 and 0.27 on class 8.

Run: `python examples/beta_distribution.py [--draws 100000] [--seeds 1]`
(`--seeds N` pools the draws of seeds 0 to N - 1).
"""

import command_line

ALPHAS = (0.1, 0.2, 0.4, 1.0, 8.0, 32.0)


def build_parser():
    """The example's options (see `command_line.make_parser`)."""
    return command_line.make_parser(
        __doc__.splitlines()[0],
        draws=100_000,
        alpha=list(ALPHAS),
        batch_size=8,
        figures=("beta_densities.png", "mixed_digits.png"),
    )


if __name__ == "__main__":
    build_parser().parse_args()  # --help answers before TensorFlow loads

import numpy as np  # noqa: E402
import plots  # noqa: E402
import tables  # noqa: E402
import tabular  # noqa: E402
import tensorflow as tf  # noqa: E402
from scipy import stats  # noqa: E402
from training import setup  # noqa: E402

import keras_mixup  # noqa: E402

HEADERS = (
    "alpha",
    "std: exact",
    "drawn",
    "P(lam < 0.1 or > 0.9): exact",
    "drawn",
    "P(lam rounds to 1.0): exact",
    "drawn",
    "KS distance below 1",
)

#: float32 holds no value between 1 - 2**-24 and 1: the sampler (a sigmoid
#: of a log-gamma difference) returns exactly 1.0 for every draw above it.
ROUNDS_TO_ONE = 1.0 - 2.0**-24


def ks_below_one(lam, cdf):
    """The Kolmogorov-Smirnov distance over the draws below 1.0.

    float32 holds no value in (1 - 2**-24, 1): such draws come out exactly
    1.0 (about 10% of draws at alpha = 0.1, as the exact distribution
    predicts), which a plain KS test reads as a jump of that size at 1.
    Near 0 float32 is dense, so no such rounding happens there.
    """
    lam = np.sort(lam)
    index = np.nonzero(lam < 1.0)[0]
    cdf_values = cdf(lam[index])
    above = (index + 1) / len(lam) - cdf_values
    below = cdf_values - index / len(lam)
    return float(max(above.max(), below.max()))


def lam_statistics(alpha, draws, seeds=1):
    """Draws lam and compares it with the exact Beta(alpha, alpha).

    Args:
        alpha: the Beta concentration.
        draws: draws per seed.
        seeds: the draws of seeds 0 to `seeds - 1` are pooled. Defaults to
            `1`.

    Returns:
        `(row, lam)`: the table row (see `HEADERS`) and the draws.
    """
    lam = np.concatenate(
        [
            keras_mixup.sample_lambda([draws], alpha, seed).numpy()
            for seed in range(seeds)
        ]
    ).astype("float64")
    beta = stats.beta(alpha, alpha)
    ends_exact = beta.cdf(0.1) + beta.sf(0.9)
    ends_drawn = float(np.mean((lam < 0.1) | (lam > 0.9)))
    ones_exact = beta.sf(ROUNDS_TO_ONE)
    ones_drawn = float(np.mean(lam == 1.0))
    ks = ks_below_one(lam, beta.cdf)
    row = [beta.std(), lam.std(), ends_exact, ends_drawn]
    row += [ones_exact, ones_drawn, ks]
    return [f"{alpha:g}", *(float(v) for v in row)], lam


def plot_densities(alphas, draws, path):
    """Plots each Beta density over a histogram of its draws."""
    plt = plots.pyplot()
    rows = -(-len(alphas) // 3)
    fig, axes = plt.subplots(
        rows, 3, figsize=(11, 3 * rows), sharex=True, squeeze=False
    )
    grid = np.linspace(0.0005, 0.9995, 999)
    for ax, alpha in zip(axes.flat, alphas, strict=False):
        lam = draws[alpha]
        ax.hist(
            lam,
            bins=50,
            range=(0, 1),
            density=True,
            alpha=0.5,
            label="sample_lambda",
        )
        density = stats.beta(alpha, alpha).pdf(grid)
        ax.plot(grid, density, "k", lw=1.5, label="Beta density")
        # U shapes (alpha < 1) are unbounded at the ends: cut them off.
        top = (
            density.max()
            if alpha >= 1
            else max(np.percentile(density, 90), 3.0)
        )
        ax.set_ylim(0, top * 1.2)
        ax.set_title(f"alpha = {alpha:g}")
        ax.set_xlabel("lam")
        ax.set_ylabel("density")
    for ax in axes.flat[len(alphas) :]:
        ax.axis("off")
    axes.flat[0].legend(loc="upper center", fontsize=10)
    fig.suptitle("lam ~ Beta(alpha, alpha): exact density and draws")
    fig.tight_layout()
    plots.save_figure(fig, path)


def mixed_digits(alphas, columns, seed):
    """Mixes digit images with `keras_mixup.Mixup`, one batch per alpha.

    `columns` (at most 10) examples of different classes are drawn for each
    alpha and mixed with each other.

    Returns:
        A list of `(alpha, images, labels)`: mixed images `[columns, 8, 8]`
        and their mixed labels `[columns, 10]`.
    """
    x, y, num_classes = tabular.load_digits_images()
    rng = np.random.default_rng(seed)
    batches = []
    for row, alpha in enumerate(alphas):
        # One example of each of `columns` different classes, so every
        # mixed label shows its lam.
        classes = rng.permutation(num_classes)[:columns]
        pick = np.array([rng.choice(np.flatnonzero(y == c)) for c in classes])
        mixup = keras_mixup.Mixup(
            alpha, num_classes=num_classes, seed=seed + row
        )
        images, labels = mixup(tf.constant(x[pick]), tf.constant(y[pick]))
        batches.append((alpha, images.numpy()[..., 0], labels.numpy()))
    return batches


def label_text(label, separator=" + "):
    """'0.73·3 + 0.27·8' for a mixed one-hot label (largest weight first)."""
    order = np.argsort(-label)
    parts = [f"{label[c]:.2f}·{c}" for c in order if label[c] > 0.005]
    return separator.join(parts[:2])


def plot_mixed(batches, path):
    """A grid of mixed digits, one row per alpha, titled by their label."""
    plt = plots.pyplot()
    rows, columns = len(batches), len(batches[0][1])
    fig, axes = plt.subplots(
        rows,
        columns,
        figsize=(1.45 * columns, 1.9 * rows + 0.8),
        squeeze=False,
        layout="constrained",
    )
    for r, (alpha, images, labels) in enumerate(batches):
        for c in range(columns):
            ax = axes[r, c]
            ax.imshow(images[c], cmap="gray_r", vmin=0, vmax=1)
            ax.set(xticks=[], yticks=[])
            ax.set_title(label_text(labels[c], "\n+ "), fontsize=12)
        axes[r, 0].set_ylabel(f"α = {alpha:g}", fontsize=14)
    fig.suptitle(
        "Digits mixed by keras_mixup.Mixup, one row per alpha. Title: the "
        "mixed label,\n0.84·9 + 0.16·5 = 0.84 of a 9 plus 0.16 of a 5 "
        "(image and label alike)",
        fontsize=14,
    )
    plots.save_figure(fig, path)


def main(argv=None):
    """Runs the example, prints the table and saves the figures.

    Returns:
        A dict: `"rows"` of the table (one per alpha) and `"figures"`, the
        saved figures.
    """
    args = build_parser().parse_args(argv)
    if args.quick:
        args.draws = min(args.draws, 2000)
        args.batch_size = min(args.batch_size, 4)  # columns of digits drawn
    setup(0)
    rows, draws = [], {}
    for alpha in args.alpha:
        row, draws[alpha] = lam_statistics(alpha, args.draws, args.seeds)
        rows.append(row)
    tables.print_table(
        HEADERS,
        rows,
        f"lam ~ Beta(alpha, alpha): {args.draws} draws x {args.seeds} "
        "seed(s) of keras_mixup.sample_lambda against the exact distribution",
        digits=4,
    )
    figures = []
    path = command_line.figure_path(args, "beta_densities.png")
    if path:
        plot_densities(args.alpha, draws, path)
        figures.append(path)
    path = command_line.figure_path(args, "mixed_digits.png")
    if path:
        plot_mixed(mixed_digits(args.alpha, args.batch_size, seed=0), path)
        figures.append(path)
    for path in figures:
        print(f"saved {path}")
    return {"rows": rows, "figures": figures}


if __name__ == "__main__":
    main()
