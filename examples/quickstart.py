"""Quick start: a small classifier trained with and without mixup.

Trains the same multilayer perceptron twice on scikit-learn's 8x8 digits,
once on the plain data (ERM) and once with `keras_mixup.Mixup` mapped over
the batched `tf.data` pipeline, and prints both test errors. Runs are
seeded (split, weights, shuffling, lam and partners) and every map runs
sequentially, so a run prints the same table every time on one machine.

    python examples/quickstart.py            # about a minute on a laptop CPU
    python examples/quickstart.py --quick    # a few seconds, for the tests
"""

import command_line


def build_parser():
    """The example's options (see `command_line.make_parser`)."""
    return command_line.make_parser(
        __doc__.splitlines()[0], epochs=60, alpha=0.2, batch_size=32
    )


if __name__ == "__main__":
    build_parser().parse_args()  # --help answers before TensorFlow loads

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tables  # noqa: E402
import tensorflow as tf  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from training import setup  # noqa: E402

import keras_mixup  # noqa: E402

NUM_CLASSES = 10


def load_data(seed):
    """Digits scaled to [0, 1], split 70/30 with stratification."""
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    return train_test_split(x, y, test_size=0.3, random_state=seed, stratify=y)


def build_model(seed):
    """The MLP, its weights drawn from `seed`, compiled for one-hot labels."""
    setup(seed)
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(NUM_CLASSES, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def train(x_train, y_train, *, alpha, epochs, batch_size, seed):
    """Trains one model; `alpha=None` is plain training (ERM).

    The `Mixup` map runs sequentially (no `num_parallel_calls`): its seeded
    draws then reach the batches in the same order on every run.
    """
    ds = tf.data.Dataset.from_tensor_slices((x_train, y_train))
    ds = ds.shuffle(len(x_train), seed=seed).batch(batch_size)
    if alpha is None:
        ds = ds.map(lambda x, y: (x, tf.one_hot(y, NUM_CLASSES)))
    else:
        ds = ds.map(
            keras_mixup.Mixup(alpha=alpha, num_classes=NUM_CLASSES, seed=seed)
        )
    model = build_model(seed)
    # The dataset shuffles itself: `shuffle=False` says so to Keras.
    model.fit(ds.prefetch(1), epochs=epochs, verbose=0, shuffle=False)
    return model


def test_error(model, x_test, y_test):
    """The top-1 error (a fraction) of `model` on the test set."""
    predictions = model.predict(x_test, verbose=0).argmax(-1)
    return float(np.mean(predictions != y_test))


def main(argv=None):
    """Trains ERM and mixup, prints the table.

    Returns:
        A dict `method -> list of test errors` (fractions), one per seed.
    """
    args = build_parser().parse_args(argv)
    epochs = 2 if args.quick else args.epochs
    methods = {"ERM": None, f"mixup alpha={args.alpha:g}": args.alpha}
    errors = {name: [] for name in methods}
    for seed in range(args.seeds):
        x_train, x_test, y_train, y_test = load_data(seed)
        for name, alpha in methods.items():
            model = train(
                x_train,
                y_train,
                alpha=alpha,
                epochs=epochs,
                batch_size=args.batch_size,
                seed=seed,
            )
            errors[name].append(test_error(model, x_test, y_test))
    seeds = "seed 0" if args.seeds == 1 else f"seeds 0-{args.seeds - 1}"
    print(
        f"digits, {len(x_train)} train / {len(x_test)} test, "
        f"{epochs} epochs, {seeds}"
    )
    print(f"{'method':<22}test error")
    for name, values in errors.items():
        cell = tables.format_mean_std([100 * v for v in values], digits=2)
        print(f"{name:<22}{cell}%")
    return errors


if __name__ == "__main__":
    main()
