"""Figure 3 of the paper: ERM against mixup on CIFAR-10 and CIFAR-100.

The paper's set-up (and its reference code): PreAct ResNet-18 (or
WideResNet-28-10, DenseNet-BC-190), SGD with momentum 0.9, batch 128,
learning rate 0.1 divided by 10 at epochs 100 and 150 of 200 (60, 120 and
180 for WideResNet-28-10), weight decay 1e-4, standard augmentation (4-pixel
zero padding, random 32x32 crop, random horizontal flip), mixup with alpha =
1. Data comes from TensorFlow Datasets (`tfds.load`); mixing is
`keras_mixup.Mixup` mapped over the augmented, batched training set.

Prints the final and the best test error of each method and saves the test
error curves (the paper's Figure 3b). Made for GPUs: `--distribute` trains
on every local GPU with `MirroredStrategy`, `--mixed-precision` in
float16; `--quick` is a toy run for the tests.

Run: `python examples/cifar.py --dataset cifar10 --model preact_resnet18`.
"""

import command_line

#: The data sets `--dataset` takes.
DATASET_NAMES = ("cifar10", "cifar100")


def build_parser():
    """The example's options (see `command_line.make_parser`)."""
    parser = command_line.make_parser(
        __doc__.splitlines()[0], epochs=200, seeds=1, alpha=1.0, batch_size=128
    )
    parser.add_argument(
        "--dataset", default="cifar10", choices=DATASET_NAMES, help="TFDS name"
    )
    command_line.add_image_flags(
        parser, model="preact_resnet18", learning_rate=0.1, weight_decay=1e-4
    )
    return parser


if __name__ == "__main__":
    build_parser().parse_args()  # --help answers before TensorFlow loads

import images  # noqa: E402
import plots  # noqa: E402
import tables  # noqa: E402
import tensorflow as tf  # noqa: E402
import training  # noqa: E402

#: Per-channel mean and standard deviation of the CIFAR training images.
MEAN = {
    "cifar10": (0.4914, 0.4822, 0.4465),
    "cifar100": (0.5071, 0.4865, 0.4409),
}
STD = {
    "cifar10": (0.2470, 0.2435, 0.2616),
    "cifar100": (0.2673, 0.2564, 0.2762),
}

#: Figure 3a of the paper: test error (%) `(ERM, mixup)`.
PAPER = {
    ("cifar10", "preact_resnet18"): (5.6, 4.2),
    ("cifar10", "wide_resnet28_10"): (3.8, 2.7),
    ("cifar10", "densenet_bc_190"): (3.7, 2.7),
    ("cifar100", "preact_resnet18"): (25.6, 21.1),
    ("cifar100", "wide_resnet28_10"): (19.4, 17.5),
    ("cifar100", "densenet_bc_190"): (19.0, 16.8),
}

HEADERS = ("data set", "model", "method", "test error: last", "best")

# Epochs (as fractions of `--epochs`) at which the rate is divided by 10.
DECAY_FRACTIONS = {"wide_resnet28_10": (0.3, 0.6, 0.9)}


def datasets(args, method, seed):
    """The training and test pipelines of one run.

    Returns:
        `(train, test, steps_per_epoch, num_classes)`.
    """
    train, num_train, num_classes = images.load_tfds(
        args.dataset, "train", data_dir=args.data_dir, shuffle_files=True
    )
    test, num_test, _ = images.load_tfds(
        args.dataset, "test", data_dir=args.data_dir
    )
    if args.quick:
        train, num_train = train.take(64), min(num_train, 64)
        test = test.take(32)
    mean, std = MEAN[args.dataset], STD[args.dataset]

    def augment(image, label):
        return images.normalize(images.pad_crop_flip(image), mean, std), label

    def prepare(image, label):
        return images.normalize(image, mean, std), label

    mixup = images.mixup_from_flags(
        method, args, num_classes=num_classes, seed=seed
    )
    auto = tf.data.AUTOTUNE
    train = train.cache().shuffle(min(num_train, 50_000), seed=seed).repeat()
    train = train.map(augment, num_parallel_calls=auto)
    train = training.batch_and_mix(
        train,
        batch_size=args.global_batch_size,
        num_classes=num_classes,
        mixup=mixup,
        drop_remainder=True,
    )
    test = test.map(prepare, num_parallel_calls=auto).cache()
    test = training.batch_and_mix(
        test, batch_size=args.global_batch_size, num_classes=num_classes
    )
    steps = max(1, num_train // args.global_batch_size)
    return train, test, steps, num_classes


def run(method, seed, strategy, args):
    """Trains one network; returns its per-epoch test errors."""
    training.setup(seed)
    train, test, steps, num_classes = datasets(args, method, seed)
    # The paper's epochs of the rate drops, as fractions of 200: 100 and
    # 150, and 60, 120 and 180 for WideResNet-28-10.
    fractions = DECAY_FRACTIONS.get(args.model, (0.5, 0.75))
    boundaries = [round(args.epochs * f) for f in fractions]
    schedule = images.WarmupStepDecay(args.learning_rate, steps, boundaries)
    checkpoint_dir = None
    if args.checkpoint_dir:
        checkpoint_dir = f"{args.checkpoint_dir}/{method}-{seed}"
    return images.fit_image_classifier(
        lambda: images.build_image_model(
            args.model,
            (32, 32, 3),
            num_classes,
            quick=args.quick,
            weight_decay=args.weight_decay,
        ),
        train,
        test,
        epochs=args.epochs,
        steps_per_epoch=steps,
        schedule=schedule,
        strategy=strategy,
        jit_compile=args.jit_compile,
        checkpoint_dir=checkpoint_dir,
        verbose=args.verbose,
    )


def plot_curves(curves, args, path):
    """Test error by epoch, ERM against mixup (Figure 3b)."""
    labelled = {
        images.method_name(
            m, args.alpha, args.cutmix_alpha, args.switch_prob
        ): runs
        for m, runs in curves.items()
    }
    plots.plot_curves(
        {f"{args.dataset}, {args.model}": labelled},
        path,
        xlabel="epoch",
        ylabel="test error (%)",
        title=plots.mean_of_seeds(args.seeds),
    )


def main(argv=None):
    """Runs the experiment and prints the table.

    Returns:
        A dict: `"headers"` and `"rows"` of the printed table (one row per
        method) and `"curves"`, mapping each method to its per-seed test
        error curves.
    """
    args = build_parser().parse_args(argv)
    if args.quick:
        args.epochs, args.seeds, args.batch_size = 1, 1, 16
    policy = images.mixed_precision_policy(args.mixed_precision)
    with images.dtype_policy(policy):
        strategy = images.distribution_strategy(args.distribute)
        # `--batch-size` is per device, as in the paper's 1-GPU code.
        args.global_batch_size = args.batch_size * strategy.num_replicas_in_sync
        curves = {
            method: [
                run(method, seed, strategy, args)["top1"]
                for seed in range(args.seeds)
            ]
            for method in args.methods
        }
    rows = []
    for method, runs in curves.items():
        name = images.method_name(
            method, args.alpha, args.cutmix_alpha, args.switch_prob
        )
        rows.append(
            [
                args.dataset,
                args.model,
                name,
                tables.format_mean_std([r[-1] for r in runs]),
                tables.format_mean_std([min(r) for r in runs]),
            ]
        )
    tables.print_table(
        HEADERS,
        rows,
        f"{args.epochs} epochs, batch {args.global_batch_size}: test error "
        f"(%), mean ± std over {args.seeds} seeds",
    )
    tables.print_table(
        ("data set", "model", "ERM", "mixup"),
        [[d, m, *v] for (d, m), v in PAPER.items() if d == args.dataset],
        "The paper (Figure 3a)",
        digits=1,
    )
    path = command_line.figure_path(args, f"{args.dataset}_{args.model}.png")
    if path:
        plot_curves(curves, args, path)
        print(f"saved {path}")
    return {
        "headers": list(HEADERS),
        "rows": rows,
        "curves": curves,
        "figures": [path] if path else [],
    }


if __name__ == "__main__":
    main()
