"""The paper's GAN experiment (Figure 5): plain GAN vs mixup GAN on toy data.

Two 2-D distributions, 8 Gaussians on a ring and two spirals. For each, a
plain GAN (`alpha=None`) and a mixup GAN (`alpha=0.2`) are trained with the
same architecture, initial weights, noise, data and iterations: the only
difference is the mixing in the discriminator step. The script saves a figure
of generated samples (first seed) at a few iterations, side by side, and
prints a measure of fit at the last iteration, averaged over seeds:

- modes covered: the data is split into modes (the 8 Gaussians; 6 equal-mass
  segments of each spiral arm, 12 in all). A generated point belongs to the
  mode of its nearest real point if it lies within 3 noise standard
  deviations of it ("high quality"); a mode is covered if it receives at
  least a quarter of its share of the generated points.
- high quality: the fraction of generated points within 3 standard
  deviations of the data.
- SWD: the sliced Wasserstein-1 distance between generated and real points
  (mean over random directions of the 1-D Wasserstein distance); the line
  "real vs real" is its floor at this sample size.

Usage:

    python examples/gan_toy.py                      # figure + table
    python examples/gan_toy.py --iterations 10 100 1000 10000 20000 --seeds 5
    python examples/gan_toy.py --replot             # redraw the figure only
    python examples/gan_toy.py --quick              # a few seconds (tests)

A full run saves the generated samples of the figure next to it
(`gan_toy.npz`), from which `--replot` redraws it.
"""

import command_line

DATASET_NAMES = ("ring", "spirals")


def build_parser():
    """The example's options (see `command_line.make_parser`)."""
    parser = command_line.make_parser(
        __doc__.splitlines()[0],
        iterations=[10, 100, 1000, 3000],
        seeds=3,
        alpha=0.2,
        batch_size=128,
        figures=("gan_toy.png",),
        replot=True,
    )
    parser.add_argument(
        "--datasets",
        nargs="+",
        default=list(DATASET_NAMES),
        choices=DATASET_NAMES,
        help="toy data sets",
    )
    parser.add_argument(
        "--width", type=int, default=128, help="hidden units per layer"
    )
    parser.add_argument(
        "--depth", type=int, default=3, help="hidden layers of both networks"
    )
    parser.add_argument(
        "--learning-rate", type=float, default=1e-3, help="Adam learning rate"
    )
    parser.add_argument(
        "--steps-per-execution",
        type=int,
        default=10,
        help="training steps per compiled call",
    )
    parser.add_argument(
        "--num-eval",
        type=int,
        default=2000,
        help="generated samples drawn and measured",
    )
    return parser


if __name__ == "__main__":
    build_parser().parse_args()  # --help answers before TensorFlow loads

import os  # noqa: E402
import time  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import plots  # noqa: E402
from scipy.spatial import cKDTree  # noqa: E402

import keras_mixup  # noqa: E402

NOISE_STD = 0.05
RADIUS = 2.0


def ring(n, rng, num_modes=8):
    """8 Gaussians on a ring of radius 2: `(points, mode labels)`."""
    labels = rng.integers(num_modes, size=n)
    angles = 2 * np.pi * labels / num_modes
    centers = RADIUS * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    points = centers + NOISE_STD * rng.standard_normal((n, 2))
    return points.astype("float32"), labels


def spirals(n, rng, turns=1.5, segments=6):
    """Two interleaved spiral arms of radius 2: `(points, segment labels)`.

    Points are uniform along each arm (by arc length); the labels split
    each arm into `segments` equal-mass segments.
    """
    arm = rng.integers(2, size=n)
    mass = rng.uniform(size=n)
    t = np.sqrt(mass)  # arc length of r = a * theta grows as theta ** 2
    theta = 2 * np.pi * turns * t + np.pi * arm
    points = (
        RADIUS * t[:, None] * np.stack([np.cos(theta), np.sin(theta)], axis=1)
    )
    points += NOISE_STD * rng.standard_normal((n, 2))
    labels = arm * segments + np.minimum(
        (mass * segments).astype(int), segments - 1
    )
    return points.astype("float32"), labels


DATASETS = {"ring": (ring, 8), "spirals": (spirals, 12)}


def sliced_wasserstein(a, b, num_projections=256, seed=0):
    """Sliced Wasserstein-1 distance between two equal-size point sets."""
    rng = np.random.default_rng(seed)
    directions = rng.standard_normal((a.shape[1], num_projections))
    directions /= np.linalg.norm(directions, axis=0, keepdims=True)
    pa = np.sort(a @ directions, axis=0)
    pb = np.sort(b @ directions, axis=0)
    return float(np.mean(np.abs(pa - pb)))


def measure_fit(generated, dataset, seed=0, num_reference=10_000):
    """Modes covered, high-quality fraction and SWD of generated points."""
    sample, num_modes = DATASETS[dataset]
    rng = np.random.default_rng(10_000 + seed)
    reference, labels = sample(num_reference, rng)
    distance, nearest = cKDTree(reference).query(generated)
    good = distance < 3 * NOISE_STD
    counts = np.bincount(labels[nearest[good]], minlength=num_modes)
    share = len(generated) / num_modes
    real, _ = sample(len(generated), rng)
    return {
        "modes": int(np.sum(counts >= 0.25 * share)),
        "quality": float(np.mean(good)),
        "swd": sliced_wasserstein(generated, real, seed=seed),
    }


def mlp(output_dim, width, depth):
    layers = [keras.Input((2,))]
    for _ in range(depth):
        layers.append(keras.layers.Dense(width, activation="relu"))
    layers.append(keras.layers.Dense(output_dim))
    return keras.Sequential(layers)


def train(dataset, alpha, seed, iterations, args):
    """Trains one GAN; returns `{iteration: generated points}`."""
    keras.utils.set_random_seed(seed)  # same initial weights for both GANs
    generator = mlp(2, args.width, args.depth)
    discriminator = mlp(1, args.width, args.depth)
    gan = keras_mixup.MixupGAN(
        generator, discriminator, latent_dim=2, alpha=alpha, seed=seed
    )
    gan.compile(
        d_optimizer=keras.optimizers.Adam(args.learning_rate),
        g_optimizer=keras.optimizers.Adam(args.learning_rate),
        steps_per_execution=args.steps_per_execution,
        run_eagerly=args.quick,  # tracing costs more than 5 eager steps
    )
    rng = np.random.default_rng(seed)  # same data for both GANs
    noise = rng.standard_normal((args.num_eval, 2)).astype("float32")
    sample, _ = DATASETS[dataset]
    snapshots, done = {}, 0
    for iteration in iterations:
        real, _ = sample((iteration - done) * args.batch_size, rng)
        gan.fit(
            real,
            batch_size=args.batch_size,
            epochs=1,
            shuffle=False,
            verbose=0,
        )
        done = iteration
        snapshots[iteration] = keras.ops.convert_to_numpy(generator(noise))
    return snapshots


METHOD_NAMES = {"plain": "GAN", "mixup": "mixup GAN"}


def plot(samples, iterations, dataset_names, path, alpha):
    """Real and generated points, one row per data set and GAN, one
    column per iteration.

    Args:
        samples: `{(dataset, method, iteration): generated points}`.
        iterations: the columns.
        dataset_names: the data sets, two rows each.
        path: the PNG path.
        alpha: the mixup GAN's alpha, for the title.
    """
    plt = plots.pyplot()
    rows = [(d, m) for d in dataset_names for m in METHOD_NAMES]
    fig, axes = plt.subplots(
        len(rows),
        len(iterations),
        figsize=(2.1 * len(iterations), 2.1 * len(rows) + 0.9),
        squeeze=False,
        layout="constrained",
    )
    for r, (dataset, method) in enumerate(rows):
        real, _ = DATASETS[dataset][0](2000, np.random.default_rng(0))
        for c, iteration in enumerate(iterations):
            ax = axes[r, c]
            points = samples[dataset, method, iteration]
            ax.scatter(*real.T, s=1, c="tab:orange", alpha=0.3, lw=0)
            ax.scatter(*points.T, s=1, c="tab:blue", alpha=0.5, lw=0)
            ax.set(xlim=(-3, 3), ylim=(-3, 3), xticks=[], yticks=[])
            if r == 0:
                ax.set_title(f"{iteration} iterations", fontsize=10)
            if c == 0:
                ax.set_ylabel(f"{dataset}\n{METHOD_NAMES[method]}")
    legend = [
        plt.Line2D([], [], ls="", marker="o", color=colour, label=label)
        for colour, label in (
            ("tab:orange", "real data"),
            ("tab:blue", "generated by the generator"),
        )
    ]
    fig.legend(handles=legend, loc="outside lower center", ncol=2)
    fig.suptitle(
        f"GAN vs mixup GAN (α={alpha:g})\ngenerated samples, first seed"
    )
    fig.savefig(path, dpi=110)
    plt.close(fig)


def save_samples(samples, path):
    """Saves the figure's generated points next to it (`.npz`)."""
    np.savez_compressed(
        os.path.splitext(path)[0] + ".npz",
        **{"/".join(map(str, key)): v for key, v in samples.items()},
    )


def load_samples(path):
    """The generated points `save_samples` saved next to `path`."""
    with np.load(os.path.splitext(path)[0] + ".npz") as saved:
        samples = {}
        for key in saved.files:
            dataset, method, iteration = key.split("/")
            samples[dataset, method, int(iteration)] = saved[key]
    return samples


def summarise(results, dataset, last):
    """Mean and std over seeds of each measure, per method."""
    summary = {}
    for method, runs in results[dataset].items():
        fits = [
            measure_fit(snaps[last], dataset, seed)
            for seed, snaps in enumerate(runs)
        ]
        summary[dataset, method] = {
            k: (np.mean([f[k] for f in fits]), np.std([f[k] for f in fits]))
            for k in fits[0]
        }
    return summary


def print_rows(summary, dataset, num_eval):
    """Prints a data set's rows of the table, and its real-vs-real floor."""
    num_modes = DATASETS[dataset][1]
    for method, name in METHOD_NAMES.items():
        stats = summary[dataset, method]
        modes, quality, swd = stats["modes"], stats["quality"], stats["swd"]
        print(
            f"{dataset:<9}{name:<13}"
            f"{modes[0]:>5.1f}/{num_modes:<2} +-{modes[1]:<3.1f}"
            f"{100 * quality[0]:>8.1f}% +-{100 * quality[1]:<4.1f}"
            f"{swd[0]:>10.3f} +-{swd[1]:.3f}"
        )
    real, _ = DATASETS[dataset][0](num_eval, np.random.default_rng(12_345))
    floor = measure_fit(real, dataset, 0)
    print(
        f"{dataset:<9}{'real vs real':<13}{floor['modes']:>5d}/"
        f"{num_modes:<2}{100 * floor['quality']:>14.1f}%"
        f"{floor['swd']:>16.3f}"
    )


def apply_quick(args):
    """Shrinks the run to a few seconds (`--quick`)."""
    if args.quick:
        args.iterations, args.seeds, args.width, args.depth = [1, 3], 1, 16, 2
        args.batch_size, args.num_eval, args.steps_per_execution = 32, 256, 1
    args.iterations = sorted(set(args.iterations))


def main(argv=None):
    """Trains the GANs, prints the table and saves the figure.

    Returns:
        A dict: `"summary"` maps `(dataset, method)` to the mean and std
        over seeds of each measure (`modes`, `quality`, `swd`) at the last
        iteration; `"figures"` lists the saved figures.
    """
    args = build_parser().parse_args(argv)
    apply_quick(args)
    path = command_line.figure_path(args, "gan_toy.png")
    if args.replot:
        plot(
            load_samples(path), args.iterations, args.datasets, path, args.alpha
        )
        print(f"saved {path}")
        return {"summary": {}, "figures": [path]}
    methods = {"plain": None, "mixup": args.alpha}
    start = time.time()
    results = {
        d: {
            m: [
                train(d, a, s, args.iterations, args) for s in range(args.seeds)
            ]
            for m, a in methods.items()
        }
        for d in args.datasets
    }
    last = args.iterations[-1]
    print(
        f"GAN vs mixup GAN (alpha={args.alpha}), {last} iterations, "
        f"batch {args.batch_size}, {args.seeds} seed(s), "
        f"{args.num_eval} samples; mean +- std over seeds "
        f"({time.time() - start:.0f} s)"
    )
    print(
        f"{'dataset':<9}{'method':<13}{'modes':>12}{'high quality':>15}"
        f"{'SWD':>17}"
    )
    summary = {}
    for dataset in args.datasets:
        summary.update(summarise(results, dataset, last))
        print_rows(summary, dataset, args.num_eval)
    if not path:
        return {"summary": summary, "figures": []}
    samples = {
        (d, m, i): runs[0][i]
        for d, by_method in results.items()
        for m, runs in by_method.items()
        for i in args.iterations
    }
    plot(samples, args.iterations, args.datasets, path, args.alpha)
    save_samples(samples, path)
    print(f"saved {path}")
    return {"summary": summary, "figures": [path]}


if __name__ == "__main__":
    main()
