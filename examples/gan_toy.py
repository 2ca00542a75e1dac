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
    python examples/gan_toy.py --iterations 10,100,1000,10000,20000 --seeds 5
    python examples/gan_toy.py --quick              # a few seconds (tests)
"""

import argparse
import os
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
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


def plot(results, iterations, dataset_names, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(d, m) for d in dataset_names for m in ("plain", "mixup")]
    fig, axes = plt.subplots(
        len(rows),
        len(iterations),
        figsize=(2.1 * len(iterations), 2.1 * len(rows)),
        squeeze=False,
    )
    for r, (dataset, method) in enumerate(rows):
        real, _ = DATASETS[dataset][0](2000, np.random.default_rng(0))
        for c, iteration in enumerate(iterations):
            ax = axes[r, c]
            points = results[dataset][method][0][iteration]
            ax.scatter(*real.T, s=1, c="tab:orange", alpha=0.3, lw=0)
            ax.scatter(*points.T, s=1, c="tab:blue", alpha=0.5, lw=0)
            ax.set_xlim(-3, 3)
            ax.set_ylim(-3, 3)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"{iteration} iterations", fontsize=9)
            if c == 0:
                label = "GAN" if method == "plain" else "mixup GAN"
                ax.set_ylabel(f"{dataset}\n{label}", fontsize=9)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--iterations",
        default="10,100,1000,3000",
        help="comma-separated iterations to show",
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--datasets", default="ring,spirals")
    parser.add_argument("--alpha", type=float, default=0.2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--steps-per-execution", type=int, default=10)
    parser.add_argument("--num-eval", type=int, default=2000)
    parser.add_argument(
        "--out",
        default=os.path.join(
            os.path.dirname(os.path.abspath(__file__)), "figures", "gan_toy.png"
        ),
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny run for the test suite"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.iterations, args.seeds, args.width, args.depth = "1,3", 1, 16, 2
        args.batch_size, args.num_eval, args.steps_per_execution = 32, 256, 1
    args.iterations = sorted({int(i) for i in args.iterations.split(",")})
    args.datasets = args.datasets.split(",")
    for name in args.datasets:
        if name not in DATASETS:
            parser.error(f"unknown dataset {name!r}; use {sorted(DATASETS)}")
    return args


def main(argv=None):
    args = parse_args(argv)
    methods = {"plain": None, "mixup": args.alpha}
    results = {d: {m: [] for m in methods} for d in args.datasets}
    start = time.time()
    for dataset in args.datasets:
        for seed in range(args.seeds):
            for method, alpha in methods.items():
                results[dataset][method].append(
                    train(dataset, alpha, seed, args.iterations, args)
                )
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
        num_modes = DATASETS[dataset][1]
        for method in methods:
            fits = [
                measure_fit(snaps[last], dataset, seed)
                for seed, snaps in enumerate(results[dataset][method])
            ]
            stats = {
                k: (np.mean([f[k] for f in fits]), np.std([f[k] for f in fits]))
                for k in fits[0]
            }
            summary[(dataset, method)] = stats
            name = "GAN" if method == "plain" else "mixup GAN"
            modes, quality, swd = stats["modes"], stats["quality"], stats["swd"]
            print(
                f"{dataset:<9}{name:<13}"
                f"{modes[0]:>5.1f}/{num_modes:<2} +-{modes[1]:<3.1f}"
                f"{100 * quality[0]:>8.1f}% +-{100 * quality[1]:<4.1f}"
                f"{swd[0]:>10.3f} +-{swd[1]:.3f}"
            )
        real, _ = DATASETS[dataset][0](
            args.num_eval, np.random.default_rng(12_345)
        )
        floor = measure_fit(real, dataset, 0)
        print(
            f"{dataset:<9}{'real vs real':<13}{floor['modes']:>5d}/"
            f"{num_modes:<2}{100 * floor['quality']:>14.1f}%"
            f"{floor['swd']:>16.3f}"
        )
    plot(results, args.iterations, args.datasets, args.out)
    print(f"figure: {args.out}")
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
