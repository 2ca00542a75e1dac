"""Quick start: a small classifier trained with and without mixup.

Trains the same multilayer perceptron twice on scikit-learn's 8x8 digits,
once on the plain data (ERM) and once with `keras_mixup.Mixup` mapped over
the batched `tf.data` pipeline, and prints both test errors.

    python examples/quickstart.py            # about a minute on a laptop CPU
    python examples/quickstart.py --quick    # a few seconds, for the tests
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

import keras_mixup  # noqa: E402

NUM_CLASSES = 10


def load_data(seed):
    """Digits scaled to [0, 1], split 70/30 with stratification."""
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    return train_test_split(x, y, test_size=0.3, random_state=seed, stratify=y)


def build_model(seed):
    keras.utils.set_random_seed(seed)
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
    """Trains one model; `alpha=None` is plain training (ERM)."""
    ds = tf.data.Dataset.from_tensor_slices((x_train, y_train))
    ds = ds.shuffle(len(x_train), seed=seed).batch(batch_size)
    if alpha is None:
        ds = ds.map(lambda x, y: (x, tf.one_hot(y, NUM_CLASSES)))
    else:
        mixup = keras_mixup.Mixup(
            alpha=alpha, num_classes=NUM_CLASSES, seed=seed
        )
        ds = ds.map(mixup, num_parallel_calls=tf.data.AUTOTUNE)
    model = build_model(seed)
    model.fit(ds.prefetch(tf.data.AUTOTUNE), epochs=epochs, verbose=0)
    return model


def test_error(model, x_test, y_test):
    predictions = model.predict(x_test, verbose=0).argmax(-1)
    return float(np.mean(predictions != y_test))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alpha", type=float, default=0.2)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--quick", action="store_true", help="two epochs, for the test suite"
    )
    args = parser.parse_args(argv)
    epochs = 2 if args.quick else args.epochs

    x_train, x_test, y_train, y_test = load_data(args.seed)
    errors = {}
    for name, alpha in (
        ("ERM", None),
        (f"mixup alpha={args.alpha}", args.alpha),
    ):
        model = train(
            x_train,
            y_train,
            alpha=alpha,
            epochs=epochs,
            batch_size=args.batch_size,
            seed=args.seed,
        )
        errors[name] = test_error(model, x_test, y_test)

    print(
        f"digits, {len(x_train)} train / {len(x_test)} test, "
        f"{epochs} epochs, seed {args.seed}"
    )
    print(f"{'method':<22}test error")
    for name, error in errors.items():
        print(f"{name:<22}{100 * error:.2f}%")
    return errors


if __name__ == "__main__":
    main()
