"""Embedding mixing on token sequences: ERM, senMixup and wordMixup.

wordMixup and senMixup (Guo, Mao and Zhang 2019, arXiv:1905.08941) bring
mixup to text by mixing where the inputs are vectors: the word embeddings
(wordMixup) or the pooled sentence embedding (senMixup). The task here is
one whose data ships with Python itself, so nothing is downloaded: token
sequences from the standard library's sources, each a chunk of
`--chunk-length` consecutive tokens (Python's `tokenize`: names, keywords
and operators kept, strings and numbers as one token each, comments
dropped) labelled with the standard-library package it comes from
(`--packages`). Files, not chunks, are split between training and test
(every fourth file of a package, by name, is a test file), so no test
chunk shares a file with a training chunk. The vocabulary is the
`--vocab-size` most frequent training tokens, the others one unknown id.
Chunks have a fixed length with no padding: no padding mask is involved,
unless `--padded`.

The network is Kim's CNN for sentences, small: embedding (64), a
convolution of 128 filters of width 5, global max pooling, logits. The
labels are class ids and the loss is sparse cross-entropy throughout:
mixup trains with `keras_mixup.MixupModel(..., mix_loss=True)`, which
mixes the embeddings (`mix_at=["mix_words"]`, wordMixup) or the pooled
features (`mix_at=["mix_sentence"]`, senMixup) and weighs the loss of
each source's label by its share (lam, 1 - lam), the labels untouched.

With `--padded`, sequences have lengths of their own: each chunk keeps
its first n tokens, n uniform in [`--min-length`, `--chunk-length`] (one
fixed draw per chunk, the same for every method and seed), and is padded
with id 0 (then id 1 is the unknown token, words from 2). The network
masks the padding: embedding (64, `mask_zero=True`), a per-token dense
layer (128, ReLU), the masked mean over the valid tokens, logits (Kim's
CNN ignores masks). senMixup mixes the pooled mean (no time axis, no
mask); wordMixup mixes the embeddings under each rule of `--mask-rule`
(union, intersection, anchor): the combined mask is what the masked mean
averages over, and under anchor the loss of each label is weighed by
lam' = 1 - (1 - lam) |M_i and M_j| / |M_i| of the embedding mask.

Prints the test error of the last and the best epoch, mean ± std over
seeds, and the test loss (cross-entropy, nats) of the last epoch. Run:
`python examples/tokens.py [--epochs 10] [--seeds 3] [--padded]`.
"""

import command_line

MASK_RULES = ("union", "intersection", "anchor")

#: The standard-library packages the chunks come from (the classes).
PACKAGES = (
    "asyncio",
    "email",
    "unittest",
    "xml",
    "multiprocessing",
    "importlib",
)


def build_parser():
    """The example's options (see `command_line.make_parser`)."""
    parser = command_line.make_parser(
        __doc__.splitlines()[0],
        epochs=10,
        seeds=3,
        alpha=1.0,
        batch_size=64,
    )
    parser.add_argument(
        "--packages",
        nargs="+",
        default=list(PACKAGES),
        help="standard-library packages, one class each",
    )
    parser.add_argument(
        "--chunk-length", type=int, default=32, help="tokens per example"
    )
    parser.add_argument(
        "--vocab-size",
        type=int,
        default=2000,
        help="most frequent training tokens kept (the others: one id)",
    )
    parser.add_argument(
        "--learning-rate", type=float, default=1e-3, help="Adam learning rate"
    )
    parser.add_argument(
        "--padded",
        action="store_true",
        help="chunks of their own lengths, padded and masked",
    )
    parser.add_argument(
        "--min-length",
        type=int,
        default=4,
        help="with --padded: the shortest chunk kept",
    )
    parser.add_argument(
        "--mask-rule",
        nargs="+",
        default=list(MASK_RULES),
        choices=MASK_RULES,
        help="with --padded: the mask rules wordMixup runs with",
    )
    return parser


if __name__ == "__main__":
    build_parser().parse_args()  # --help answers before TensorFlow loads

import collections  # noqa: E402
import io  # noqa: E402
import pathlib  # noqa: E402
import sysconfig  # noqa: E402
import tokenize  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tables  # noqa: E402
from training import setup  # noqa: E402

import keras_mixup  # noqa: E402

HEADERS = ("method", "test error: last epoch", "best epoch", "test NLL")

#: Token ids: 0 for a token outside the vocabulary, words from 1 (with
#: `--padded`, all one more: 0 is the padding).
UNKNOWN = 0
PADDING = 0


def _tokens(path):
    """The tokens of one source file (see the module docstring)."""
    kept = {tokenize.NAME: None, tokenize.OP: None}
    named = {tokenize.STRING: "<str>", tokenize.NUMBER: "<num>"}
    source = path.read_text(encoding="utf-8")
    found = []
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type in kept:
            found.append(token.string)
        elif token.type in named:
            found.append(named[token.type])
    return found


def package_files(package):
    """The package's source files, sorted, tests and fixtures left out."""
    root = pathlib.Path(sysconfig.get_paths()["stdlib"]) / package
    if not root.is_dir():
        raise ValueError(
            f"`--packages` names {package!r}, which is not a package of "
            f"this Python's standard library ({root.parent})."
        )
    return sorted(
        path
        for path in root.rglob("*.py")
        if not any("test" in part for part in path.relative_to(root).parts)
    )


def load_chunks(packages, chunk_length):
    """`{"train": (chunks, labels), "test": ...}`: each a list of token
    lists of `chunk_length` and their package indices; every fourth file
    of a package (by name) is a test file."""
    split = {"train": ([], []), "test": ([], [])}
    for label, package in enumerate(packages):
        for index, path in enumerate(package_files(package)):
            tokens = _tokens(path)
            chunks, labels = split["test" if index % 4 == 3 else "train"]
            for start in range(0, len(tokens) - chunk_length + 1, chunk_length):
                chunks.append(tokens[start : start + chunk_length])
                labels.append(label)
    return split


def encode(split, vocab_size):
    """Token ids `[N, T]` int32 and labels `[N]` per split; the vocabulary
    is the training split's `vocab_size` most frequent tokens."""
    counts = collections.Counter(
        token for chunk in split["train"][0] for token in chunk
    )
    ids = {
        token: index + 1
        for index, (token, _) in enumerate(counts.most_common(vocab_size))
    }
    return {
        name: (
            np.array(
                [[ids.get(t, UNKNOWN) for t in chunk] for chunk in chunks],
                "int32",
            ),
            np.array(labels, "int32"),
        )
        for name, (chunks, labels) in split.items()
    }


def sentence_cnn(vocab_size, chunk_length, num_classes, *, mixes):
    """Embedding, convolution, max pooling, logits; with `mixes`, a
    `MixupLayer` after the embedding (`"mix_words"`) and after the pooling
    (`"mix_sentence"`), the two points `MixupModel` may mix at."""
    layers = [
        keras.Input((chunk_length,), dtype="int32"),
        keras.layers.Embedding(vocab_size + 1, 64),
        keras_mixup.MixupLayer(name="mix_words") if mixes else None,
        keras.layers.Conv1D(128, 5, activation="relu"),
        keras.layers.GlobalMaxPooling1D(),
        keras_mixup.MixupLayer(name="mix_sentence") if mixes else None,
        keras.layers.Dense(num_classes),
    ]
    return keras.Sequential([layer for layer in layers if layer is not None])


def pad_chunks(data, min_length, chunk_length):
    """`data` (see `encode`) with every id one more and each chunk cut to
    its own length, n uniform in [min_length, chunk_length] (a fixed draw,
    seed 0), padded with `PADDING`."""
    rng = np.random.default_rng(0)
    padded = {}
    for name, (x, y) in data.items():
        lengths = rng.integers(min_length, chunk_length + 1, size=len(x))
        valid = np.arange(chunk_length)[None, :] < lengths[:, None]
        padded[name] = (np.where(valid, x + 1, PADDING).astype("int32"), y)
    return padded


def masked_bag(vocab_size, chunk_length, num_classes, *, mixes):
    """Embedding (masking id 0), a per-token dense layer, the masked mean,
    logits; with `mixes`, `MixupLayer`s after the embedding and after the
    mean, as in `sentence_cnn`."""
    layers = [
        keras.Input((chunk_length,), dtype="int32"),
        keras.layers.Embedding(vocab_size + 2, 64, mask_zero=True),
        keras_mixup.MixupLayer(name="mix_words") if mixes else None,
        keras.layers.Dense(128, activation="relu"),
        keras.layers.GlobalAveragePooling1D(),
        keras_mixup.MixupLayer(name="mix_sentence") if mixes else None,
        keras.layers.Dense(num_classes),
    ]
    return keras.Sequential([layer for layer in layers if layer is not None])


def methods(args):
    """`{name: (the MixupModel's mix point, its options)}`, `None` for
    ERM; with `--padded`, wordMixup under each of `--mask-rule`."""
    alpha = f"α={args.alpha:g}"
    table = {"ERM": None, f"senMixup ({alpha})": ("mix_sentence", {})}
    if not args.padded:
        table[f"wordMixup ({alpha})"] = ("mix_words", {})
    for rule in args.mask_rule if args.padded else ():
        table[f"wordMixup ({alpha}), {rule}"] = (
            "mix_words",
            {"mask_rule": rule},
        )
    return table


def train(method, data, args, seed):
    """Trains one network (`method`: a value of `methods`); returns its
    test error (%) and test loss after each epoch."""
    (x_train, y_train), (x_test, y_test) = data["train"], data["test"]
    num_classes = len(args.packages)
    setup(seed)
    build = masked_bag if args.padded else sentence_cnn
    model = build(
        args.vocab_size,
        args.chunk_length,
        num_classes,
        mixes=method is not None,
    )
    if method is not None:
        point, options = method
        model = keras_mixup.MixupModel(
            model,
            alpha=args.alpha,
            mix_at=[point],
            mix_loss=True,
            seed=seed,
            **options,
        )
    model.compile(
        keras.optimizers.Adam(args.learning_rate),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        run_eagerly=args.quick,  # one epoch: tracing costs more
    )
    history = model.fit(
        x_train,
        y_train,
        batch_size=args.batch_size,
        epochs=args.epochs,
        validation_data=(x_test, y_test),
        verbose=args.verbose,
    )
    logs = history.history
    return [100.0 * (1.0 - a) for a in logs["val_accuracy"]], logs["val_loss"]


def main(argv=None):
    """Runs the comparison and prints the table.

    Returns:
        A dict: `"headers"` and `"rows"` of the printed table, `"errors"`
        and `"losses"` mapping each method to its per-seed per-epoch test
        errors and losses, and `"sizes"`, the numbers of training and test
        chunks.
    """
    args = build_parser().parse_args(argv)
    if args.quick:
        args.epochs, args.seeds, args.packages = 1, 1, ["json", "email"]
    data = encode(
        load_chunks(args.packages, args.chunk_length), args.vocab_size
    )
    if args.padded:
        data = pad_chunks(data, args.min_length, args.chunk_length)
    sizes = {name: len(labels) for name, (_, labels) in data.items()}
    print(f"chunks: {sizes['train']} training, {sizes['test']} test")
    errors, losses = {}, {}
    for seed in range(args.seeds):
        for name, method in methods(args).items():
            error, loss = train(method, data, args, seed)
            errors.setdefault(name, []).append(error)
            losses.setdefault(name, []).append(loss)
    rows = [
        [
            name,
            tables.format_mean_std([c[-1] for c in curves]),
            tables.format_mean_std([min(c) for c in curves]),
            tables.format_mean_std([c[-1] for c in losses[name]], digits=2),
        ]
        for name, curves in errors.items()
    ]
    tables.print_table(
        HEADERS,
        rows,
        f"stdlib token chunks ({len(args.packages)} packages, "
        + (
            f"{args.min_length}-{args.chunk_length} tokens, padded), masked "
            "mean of token features"
            if args.padded
            else f"{args.chunk_length} tokens), small CNN"
        )
        + f", {args.epochs} epochs, "
        f"batch {args.batch_size}: test error (%), mean ± std over "
        f"{args.seeds} seeds",
    )
    return {
        "headers": list(HEADERS),
        "rows": rows,
        "errors": errors,
        "losses": losses,
        "sizes": sizes,
    }


if __name__ == "__main__":
    main()
