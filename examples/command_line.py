"""The examples' command line: one parser convention, and where figures go.

Every example builds its parser with `make_parser`, which gives the options
they all share:

- `--seeds N`: runs per configuration, with seeds 0, 1, ..., N - 1;
- the length of a run, named for its unit: `--epochs`, or `--iterations`
  (the GAN example) or `--draws` (the Beta distribution example);
- `--alpha`: the mixup Beta(alpha, alpha) concentration(s);
- `--batch-size`, `--verbose` (Keras `fit` verbosity: by default 1, a
  progress bar, so a long run shows progress) and `--quiet` (verbosity 0);
- `--quick`: a tiny configuration that runs in seconds (the tests run it);
- `--out DIR` (or `--figures DIR`): where the PNG figures and raw results
  go; `examples/output/` by default (`examples/output/quick/` with
  `--quick`), a folder git ignores, so no run writes over the figures the
  docs show (`examples/figures/`: pass `--out examples/figures` to
  redraw them).

`--help` lists every option with its default. This module imports neither
TensorFlow nor Keras: an example parses its arguments before it loads them,
so `--help` answers at once. Importing it selects the TensorFlow backend
and quietens TensorFlow's C++ logs (unless `KERAS_BACKEND` or
`TF_CPP_MIN_LOG_LEVEL` is set); parsing the arguments then imports
TensorFlow with its start-up messages (written to stderr before its log
level applies) silenced.
"""

import argparse
import os
import sys

# Set before any example loads TensorFlow (they import this module first).
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

__all__ = [
    "FIGURES_DIR",
    "OUTPUT_DIR",
    "IMAGE_MODEL_NAMES",
    "LENGTH_HELP",
    "TABULAR",
    "add_hidden",
    "add_image_flags",
    "figure_path",
    "figures_dir",
    "make_parser",
]

#: The figures the README shows (tracked: no run writes here unless told
#: to with `--out`).
FIGURES_DIR = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "figures"
)

#: Where runs save their figures unless `--out` says otherwise (ignored by
#: git); quick runs use its `quick/` folder.
OUTPUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "output")


class _ExampleParser(argparse.ArgumentParser):
    """An `ArgumentParser` whose `--help` shows every default, and whose
    `parse_args` settles the verbosity and imports TensorFlow quietly."""

    def __init__(self, **kwargs):
        super().__init__(
            formatter_class=argparse.ArgumentDefaultsHelpFormatter, **kwargs
        )

    def parse_args(self, args=None, namespace=None):
        parsed = super().parse_args(args, namespace)
        if parsed.quiet:
            parsed.verbose = 0
        _import_tensorflow_quietly()
        return parsed


def _import_tensorflow_quietly():
    """Imports TensorFlow (and runs one op, which loads its devices) with
    file descriptor 2 pointed at /dev/null: its C++ start-up messages are
    written there before `TF_CPP_MIN_LOG_LEVEL` applies. Python errors are
    raised after stderr is back."""
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        import tensorflow as tf

        tf.constant(0) + 1
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


#: The networks `--model` takes in the CIFAR and ImageNet examples (built
#: by `images.IMAGE_MODELS`).
IMAGE_MODEL_NAMES = ("preact_resnet18", "resnet50", "wide_resnet28_10")

#: The data sets scikit-learn ships that the examples use (loaded by
#: `tabular.load_tabular`).
TABULAR = ("iris", "wine", "breast_cancer", "digits")

#: The help text of each unit of a run's length.
LENGTH_HELP = {
    "epochs": "training epochs",
    "iterations": "training iterations at which the generated samples are "
    "shown; the last one is the run's length, measured in the table",
    "draws": "lam draws per alpha and seed",
}


def make_parser(
    description,
    *,
    alpha,
    batch_size,
    epochs=None,
    iterations=None,
    draws=None,
    seeds=1,
    figures=(),
    replot=False,
):
    """An argument parser with the options every example shares.

    Exactly one of `epochs`, `iterations` and `draws` is given: the length
    of a run in its unit, which names the option.

    Args:
        description: the example's one-line description.
        alpha: the default mixup alpha: a float, or a list (then `--alpha`
            takes one or more values).
        batch_size: the default batch size.
        epochs: the default `--epochs`. Defaults to `None`.
        iterations: the default `--iterations` (a list: the option takes
            one or more values). Defaults to `None`.
        draws: the default `--draws`. Defaults to `None`.
        seeds: the default `--seeds`. Defaults to `1`.
        figures: the names of the PNG files the example saves, for the
            help text. Defaults to `()` (it saves none).
        replot: add `--replot`, which redraws the figures from the raw
            results a full run saved next to them, without training.
            Defaults to `False`.

    Returns:
        An `argparse.ArgumentParser`; add the example's own options to it.

    Raises:
        ValueError: if not exactly one of `epochs`, `iterations` and
            `draws` is given.
    """
    lengths = {"epochs": epochs, "iterations": iterations, "draws": draws}
    given = {unit: value for unit, value in lengths.items() if value}
    if len(given) != 1:
        raise ValueError(
            "Pass exactly one of `epochs`, `iterations` and `draws`; "
            f"received {lengths}."
        )
    parser = _ExampleParser(description=description)
    ((unit, length),) = given.items()
    _add_number(parser, f"--{unit}", int, length, LENGTH_HELP[unit])
    parser.add_argument(
        "--seeds",
        type=int,
        default=seeds,
        help="runs per configuration, with seeds 0, 1, ..., SEEDS - 1",
    )
    _add_number(
        parser, "--alpha", float, alpha, "mixup Beta(alpha, alpha) alpha"
    )
    parser.add_argument(
        "--batch-size", type=int, default=batch_size, help="batch size"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a tiny configuration that runs in seconds (the tests run it)",
    )
    parser.add_argument(
        "--out",
        "--figures",
        dest="figures",
        metavar="DIR",
        default=None,
        help=_figures_help(figures),
    )
    parser.add_argument(
        "--verbose",
        type=int,
        default=1,
        help="Keras fit verbosity: 0 silent, 1 a progress bar (a line per "
        "epoch when the output is not a terminal), 2 a line per epoch",
    )
    parser.add_argument(
        "--quiet", action="store_true", help="no progress: --verbose 0"
    )
    if replot:
        parser.add_argument(
            "--replot",
            action="store_true",
            help="redraw the figures from the raw results saved next to "
            "them (in --figures DIR) by a full run, without training",
        )
    return parser


def _add_number(parser, flag, kind, default, text):
    """Adds `flag`: one number, or one or more if `default` is a list."""
    if isinstance(default, (list, tuple)):
        parser.add_argument(
            flag,
            type=kind,
            nargs="+",
            default=list(default),
            help=f"{text}; one or more values",
        )
    else:
        parser.add_argument(flag, type=kind, default=default, help=text)


def _figures_help(figures):
    if not figures:
        return "where figures go (this example saves none)"
    return (
        f"directory for the figures ({', '.join(figures)}) and raw results; "
        "None means examples/output, or examples/output/quick with "
        "--quick (folders git ignores); '' saves none"
    )


def add_hidden(parser, default, text="hidden layer widths"):
    """Adds `--hidden`: the widths of a network's hidden layers."""
    parser.add_argument(
        "--hidden", type=int, nargs="+", default=default, help=text
    )


def add_image_flags(parser, *, model, learning_rate, weight_decay):
    """Adds the options the CIFAR and ImageNet examples share."""
    parser.add_argument(
        "--model",
        default=model,
        choices=IMAGE_MODEL_NAMES,
        help="the network",
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        default=["erm", "mixup"],
        choices=["erm", "mixup"],
        help="train with ERM, with mixup, or both",
    )
    parser.add_argument("--data-dir", default=None, help="TFDS data directory")
    parser.add_argument(
        "--learning-rate",
        type=float,
        default=learning_rate,
        help="peak SGD learning rate",
    )
    parser.add_argument(
        "--weight-decay", type=float, default=weight_decay, help="L2 factor"
    )
    parser.add_argument(
        "--cutmix-alpha",
        type=float,
        default=None,
        help="with --methods mixup: also CutMix, Beta(a, a) (the DeiT "
        "recipe: --alpha 0.8 --cutmix-alpha 1.0 --switch-prob 0.5)",
    )
    parser.add_argument(
        "--switch-prob",
        type=float,
        default=0.5,
        help="with --cutmix-alpha: the probability of CutMix over mixup",
    )
    parser.add_argument(
        "--label-smoothing",
        type=float,
        default=0.0,
        help="with --methods mixup: label smoothing before mixing (the "
        "DeiT recipe uses 0.1)",
    )
    parser.add_argument(
        "--mixed-precision",
        action="store_true",
        help="mixed_float16 on GPU (mixed_bfloat16 elsewhere)",
    )
    parser.add_argument(
        "--distribute",
        action="store_true",
        help="train on every local GPU with tf.distribute.MirroredStrategy",
    )
    parser.add_argument(
        "--jit-compile",
        action="store_true",
        help="compile the training step with XLA",
    )
    parser.add_argument(
        "--checkpoint-dir",
        default=None,
        help="back up every epoch here and resume from it "
        "(keras.callbacks.BackupAndRestore)",
    )


def figures_dir(args):
    """The directory figures go to, or `None` if `--out ''`.

    Without `--out`, full runs use `OUTPUT_DIR` and `--quick` runs its
    `quick` folder (kept in `args.figures`).
    """
    if args.figures is None:
        args.figures = (
            os.path.join(OUTPUT_DIR, "quick") if args.quick else OUTPUT_DIR
        )
    if not args.figures:
        return None
    os.makedirs(args.figures, exist_ok=True)
    return args.figures


def figure_path(args, name):
    """The path of figure `name` in `figures_dir(args)`, or `None`."""
    directory = figures_dir(args)
    return os.path.join(directory, name) if directory else None
