"""Table 1 of the paper: ERM against mixup on ImageNet-2012.

The paper follows Goyal et al. (2017): SGD with momentum 0.9, learning
rate 0.1 per 256 images with 5 epochs of linear warm-up, divided by 10 at
epochs 30, 60 and 80 of 90 (at 60, 120 and 180 of 200 for the long runs),
weight decay 1e-4; random-resized 224x224 crops and horizontal flips for
training, the central 224x224 crop of the image resized to 256 for
validation; mixup with alpha 0.2 for ResNet-50 (0.1 to 0.4 elsewhere).
Data comes from TensorFlow Datasets (`imagenet2012`, which needs the
manually downloaded archives in `<data_dir>/downloads/manual`); mixing is
`keras_mixup.Mixup` mapped over the augmented, batched training set.

Prints the last top-1 and top-5 validation errors of each method and saves
the top-1 curves. Made for GPUs: `--distribute` trains on every local GPU
with `MirroredStrategy`, `--mixed-precision` in float16; `--quick` is a
toy run for the tests.

Run: `python examples/imagenet.py --model resnet50 --alpha 0.2
--distribute --mixed-precision --batch-size 64`.
"""

import command_line


def build_parser():
    """The example's options (see `command_line.make_parser`)."""
    parser = command_line.make_parser(
        __doc__.splitlines()[0], epochs=90, seeds=1, alpha=0.2, batch_size=256
    )
    command_line.add_image_flags(
        parser, model="resnet50", learning_rate=0.1, weight_decay=1e-4
    )
    parser.add_argument(
        "--image-size", type=int, default=224, help="training crop size"
    )
    parser.add_argument(
        "--shuffle-buffer",
        type=int,
        default=10_000,
        help="examples in the shuffle buffer",
    )
    return parser


if __name__ == "__main__":
    build_parser().parse_args()  # --help answers before TensorFlow loads

import images  # noqa: E402
import plots  # noqa: E402
import tables  # noqa: E402
import tensorflow as tf  # noqa: E402
import training  # noqa: E402

#: Per-channel mean and standard deviation of ImageNet images in [0, 1].
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)

#: Table 1 of the paper: `(model, method, epochs) -> (top-1, top-5)`
#: validation error (%), `None` where the paper gives none.
PAPER = {
    ("ResNet-50", "ERM (Goyal et al.)", 90): (23.5, None),
    ("ResNet-50", "mixup α=0.2", 90): (23.3, 6.6),
    ("ResNet-101", "ERM (Goyal et al.)", 90): (22.1, None),
    ("ResNet-101", "mixup α=0.2", 90): (21.5, 5.6),
    ("ResNeXt-101 32*4d", "ERM (Xie et al.)", 100): (21.2, None),
    ("ResNeXt-101 32*4d", "ERM", 90): (21.2, 5.6),
    ("ResNeXt-101 32*4d", "mixup α=0.4", 90): (20.7, 5.3),
    ("ResNeXt-101 64*4d", "ERM (Xie et al.)", 100): (20.4, 5.3),
    ("ResNeXt-101 64*4d", "mixup α=0.4", 90): (19.8, 4.9),
    ("ResNet-50", "ERM", 200): (23.6, 7.0),
    ("ResNet-50", "mixup α=0.2", 200): (22.1, 6.1),
    ("ResNet-101", "ERM", 200): (22.0, 6.1),
    ("ResNet-101", "mixup α=0.2", 200): (20.8, 5.4),
    ("ResNeXt-101 32*4d", "ERM", 200): (21.3, 5.9),
    ("ResNeXt-101 32*4d", "mixup α=0.4", 200): (20.1, 5.0),
}

HEADERS = ("model", "method", "epochs", "top-1 error", "top-5 error")


def datasets(args, method, seed):
    """The training and validation pipelines of one run.

    Returns:
        `(train, validation, steps_per_epoch, num_classes)`.
    """
    # Images stay encoded until after the shuffle buffer.
    train, num_train, num_classes = images.load_tfds(
        "imagenet2012",
        "train",
        data_dir=args.data_dir,
        shuffle_files=True,
        decode=False,
    )
    validation, _, _ = images.load_tfds(
        "imagenet2012", "validation", data_dir=args.data_dir, decode=False
    )
    if args.quick:
        train, num_train = train.take(64), min(num_train, 64)
        validation = validation.take(32)
    size = args.image_size

    def augment(image, label):
        image = images.random_resized_crop(images.decode_image(image), size)
        return images.normalize(image, MEAN, STD), label

    def prepare(image, label):
        image = images.center_crop(images.decode_image(image), size)
        return images.normalize(image, MEAN, STD), label

    mixup = images.mixup_from_flags(
        method, args, num_classes=num_classes, seed=seed
    )
    auto = tf.data.AUTOTUNE
    train = train.shuffle(args.shuffle_buffer, seed=seed).repeat()
    train = train.map(augment, num_parallel_calls=auto)
    train = training.batch_and_mix(
        train,
        batch_size=args.global_batch_size,
        num_classes=num_classes,
        mixup=mixup,
        drop_remainder=True,
    )
    validation = validation.map(prepare, num_parallel_calls=auto)
    validation = training.batch_and_mix(
        validation, batch_size=args.global_batch_size, num_classes=num_classes
    )
    steps = max(1, num_train // args.global_batch_size)
    return train, validation, steps, num_classes


def run(method, seed, strategy, args):
    """Trains one network; returns its per-epoch validation errors."""
    training.setup(seed)
    train, validation, steps, num_classes = datasets(args, method, seed)
    if args.epochs >= 200:
        boundaries = [60, 120, 180]
    else:
        boundaries = [round(args.epochs * f) for f in (1 / 3, 2 / 3, 8 / 9)]
    # Goyal et al.: 0.1 per 256 images, linear warm-up over 5 epochs.
    learning_rate = args.learning_rate * args.global_batch_size / 256
    schedule = images.WarmupStepDecay(
        learning_rate,
        steps,
        boundaries,
        warmup_epochs=min(5, args.epochs),
    )
    checkpoint_dir = None
    if args.checkpoint_dir:
        checkpoint_dir = f"{args.checkpoint_dir}/{method}-{seed}"
    return images.fit_image_classifier(
        lambda: images.build_image_model(
            args.model,
            (args.image_size, args.image_size, 3),
            num_classes,
            quick=args.quick,
            weight_decay=args.weight_decay,
        ),
        train,
        validation,
        epochs=args.epochs,
        steps_per_epoch=steps,
        schedule=schedule,
        strategy=strategy,
        top5=True,
        jit_compile=args.jit_compile,
        checkpoint_dir=checkpoint_dir,
        verbose=args.verbose,
        # Two steps an epoch: tracing them costs more than running them.
        run_eagerly=args.quick,
    )


def plot_curves(curves, args, path):
    """Top-1 validation error by epoch, ERM against mixup."""
    top1 = {
        images.method_name(
            m, args.alpha, args.cutmix_alpha, args.switch_prob
        ): [r["top1"] for r in runs]
        for m, runs in curves.items()
    }
    plots.plot_curves(
        {f"ImageNet-2012, {args.model}": top1},
        path,
        xlabel="epoch",
        ylabel="top-1 validation error (%)",
        title=plots.mean_of_seeds(args.seeds),
    )


def main(argv=None):
    """Runs the experiment and prints the table.

    Returns:
        A dict: `"headers"` and `"rows"` of the printed table (one row per
        method) and `"curves"`, mapping each method to its per-seed dicts
        of per-epoch `"top1"` and `"top5"` errors.
    """
    args = build_parser().parse_args(argv)
    if args.quick:
        args.epochs, args.seeds, args.batch_size = 1, 1, 16
        args.image_size, args.shuffle_buffer = 32, 64
        if args.model == "resnet50":
            args.model = "preact_resnet18"  # shrunk by `quick`
    policy = images.mixed_precision_policy(args.mixed_precision)
    with images.dtype_policy(policy):
        strategy = images.distribution_strategy(args.distribute)
        # `--batch-size` is per device.
        args.global_batch_size = args.batch_size * strategy.num_replicas_in_sync
        curves = {
            method: [
                run(method, seed, strategy, args) for seed in range(args.seeds)
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
                args.model,
                name,
                args.epochs,
                tables.format_mean_std([r["top1"][-1] for r in runs]),
                tables.format_mean_std([r["top5"][-1] for r in runs]),
            ]
        )
    tables.print_table(
        HEADERS,
        rows,
        f"ImageNet-2012, {args.image_size}x{args.image_size}, batch "
        f"{args.global_batch_size}: validation error (%), last epoch",
    )
    paper_rows = [
        [model, method, epochs, top1, "-" if top5 is None else top5]
        for (model, method, epochs), (top1, top5) in PAPER.items()
    ]
    tables.print_table(HEADERS, paper_rows, "The paper (Table 1)", digits=1)
    path = command_line.figure_path(args, f"imagenet_{args.model}.png")
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
