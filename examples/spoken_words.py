"""ERM against mixup on spoken command words of varying length (a GRU).

The spoken-words set (`examples/audio_data.py`: ten words by 15 espeak-ng
voices, 8 kHz, 0.2 to 0.65 s, split by voice: 3 voices never heard in
training) becomes frames: a 256-sample Hann window every 128 samples
(32 ms, 16 ms), log(1 + |STFT|) averaged over groups of 4 of its 129
bins (32 features), zeros past each utterance's end, so the padded frames
are exactly 0. The network: `Masking` (the padding mask, True where a
frame is valid), a GRU of 64 units that skips masked frames, and the
logits. Trained

- by ERM;
- with mixup of the frames before the masking layer
  (`MixupModel(network, mix_at="input")`): a frame is padding only where
  both are, so the mask is the union of the two, and a frame valid in one
  alone holds that one's frame times its weight;
- with mixup under each rule of `--mask-rule` (union, intersection,
  anchor) where the installed keras_mixup has the option (`"mask_rule" in
  keras_mixup.options.OPTIONS`): the network takes `{"frames": x,
  "padding_mask": m}` (the GRU masked by `m`) and
  `MixupModel(network, mix_at="input", mask_rule=rule)` mixes frames and
  mask under the rule, the labels with the rule's weight; else each is
  skipped with a printed note.

Prints the test error (the held-out voices) of the last and best epoch,
mean ± std over seeds.

Run: `python examples/spoken_words.py [--epochs 30] [--seeds 3]`.
"""

import command_line

MASK_RULES = ("union", "intersection", "anchor")


def build_parser():
    """The example's options (see `command_line.make_parser`)."""
    parser = command_line.make_parser(
        __doc__.splitlines()[0],
        epochs=30,
        seeds=3,
        alpha=0.2,
        batch_size=32,
    )
    parser.add_argument(
        "--mask-rule",
        nargs="*",
        default=list(MASK_RULES),
        choices=MASK_RULES,
        help="the mask rules run with mixup (where keras_mixup has them)",
    )
    return parser


if __name__ == "__main__":
    build_parser().parse_args()  # --help answers before TensorFlow loads

import audio_data  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tables  # noqa: E402
import tensorflow as tf  # noqa: E402
from training import compile_classifier, setup  # noqa: E402

import keras_mixup  # noqa: E402

HEADERS = ("method", "test error: last epoch", "best epoch")
FRAME, HOP, GROUP = 256, 128, 4
PADDING_MASK = "padding_mask"


def frames(waveforms, lengths):
    """log(1 + |STFT|) frames `[N, F, 32]`, zero where a frame reaches past
    its utterance's end."""
    stft = tf.signal.stft(
        waveforms, FRAME, HOP, window_fn=tf.signal.hann_window
    )
    magnitude = tf.math.log1p(tf.abs(stft))[..., :128]
    shape = tf.shape(magnitude)
    features = tf.reduce_mean(
        tf.reshape(magnitude, [shape[0], shape[1], 128 // GROUP, GROUP]), -1
    ).numpy()
    ends = np.arange(features.shape[1]) * HOP + FRAME
    valid = ends[None, :] <= np.asarray(lengths)[:, None]
    return np.where(valid[..., None], features, 0.0).astype("float32")


def load():
    """`(x_train, y_train, x_test, y_test)`: frames and labels."""
    data = audio_data.load_spoken_words()
    out = []
    for split in ("train", "test"):
        waves, mask, labels, _ = data[split]
        out += [frames(waves, mask.sum(1)), labels]
    return tuple(out)


def mask_rule_available():
    return "mask_rule" in keras_mixup.options.OPTIONS


def methods(args):
    """`{name: MixupLayer options, or None for ERM}`."""
    table = {"ERM": None, f"mixup α={args.alpha:g}": {}}
    for rule in args.mask_rule:
        if mask_rule_available():
            table[f"mixup α={args.alpha:g}, {rule}"] = {"mask_rule": rule}
        else:
            print(
                f"note: skipping mask_rule={rule!r}: this keras_mixup has no "
                "mask_rule option"
            )
    return table


def network(input_shape, num_classes, alpha, options):
    """Masking, a GRU, the logits: plain for ERM (`options` None); wrapped
    in a `MixupModel` mixing the frames before the masking layer (`{}`:
    the padded frames blend to zeros only where both are padding, so the
    mask is the union); or, with a `mask_rule`, a model taking
    `{"frames": x, "padding_mask": m}` (the GRU masked by `m`) wrapped in
    `MixupModel(mix_at="input", mask_rule=rule)`, which mixes the frames
    and the mask under the rule and weighs the labels by its weight."""
    if options:
        frames = keras.Input(input_shape, name="frames")
        mask = keras.Input(input_shape[:1], dtype="bool", name=PADDING_MASK)
        h = keras.layers.GRU(64)(frames, mask=mask)
        inputs = {"frames": frames, PADDING_MASK: mask}
    else:
        inputs = keras.Input(input_shape)
        h = keras.layers.GRU(64)(keras.layers.Masking(0.0)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(num_classes)(h))
    if options is None:
        return model
    return keras_mixup.MixupModel(
        model,
        alpha=alpha,
        num_classes=num_classes,
        mix_at="input",
        **options,
    )


def model_inputs(x, options):
    """The frames, or with a `mask_rule` the dict of frames and padding
    mask (True where a frame is valid: not all zeros, as `Masking`)."""
    if not options:
        return x
    return {"frames": x, PADDING_MASK: np.any(x != 0.0, axis=-1)}


def run(options, seed, data, args):
    """Trains one network; returns its test error (%) per epoch."""
    x_train, y_train, x_test, y_test = data
    num_classes = 10
    setup(seed)
    model = network(x_train.shape[1:], num_classes, args.alpha, options)
    compile_classifier(model, keras.optimizers.Adam(3e-3), metrics=["acc"])
    eye = np.eye(num_classes, dtype="float32")
    labels = y_train if options is not None else eye[y_train]
    x_train, x_test = (model_inputs(x, options) for x in (x_train, x_test))
    errors = []
    for _ in range(args.epochs):
        model.fit(
            x_train,
            labels,
            batch_size=args.batch_size,
            epochs=1,
            verbose=args.verbose,
        )
        logits = model.predict(x_test, batch_size=256, verbose=0)
        errors.append(100.0 * float(np.mean(logits.argmax(-1) != y_test)))
    return errors


def main(argv=None):
    """Runs the comparison and prints the table.

    Returns:
        A dict: `"headers"` and `"rows"` of the printed table and
        `"errors"` mapping each method to its per-seed per-epoch test
        errors.
    """
    args = build_parser().parse_args(argv)
    if args.quick:
        args.epochs, args.seeds = 1, 1
    table, data = methods(args), load()
    errors = {}
    for seed in range(args.seeds):
        for name, options in table.items():
            curve = run(options, seed, data, args)
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
        f"spoken words (held-out voices), GRU on frames, {args.epochs} "
        f"epochs, batch {args.batch_size}: test error (%), mean ± std over "
        f"{args.seeds} seeds",
    )
    return {"headers": list(HEADERS), "rows": rows, "errors": errors}


if __name__ == "__main__":
    main()
