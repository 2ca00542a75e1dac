"""Loss mixing (`MixupModel(..., mix_loss=True)`) under one Keras backend,
run by scenario_runner.py in the shared process of each backend (see
conftest.py's `SHARED`); models_mix_loss_backends_test.py checks it.

`mix_loss_scenario` trains one step with an injected draw `(LAM, PARTNER)`
on hand-built batches and returns the loss Keras logged next to the loss
computed here in float64 from the model's initial weights: sparse
cross-entropy with `ignore_class` on sequence labels `[B, T]`, and mean
squared error (with the loss of the blended targets, which differs). It
also saves and loads a sparse-loss model and resumes it.
"""

import pathlib
import tempfile

import numpy as np

LAM = np.array([0.7, 0.2, 0.5, 0.9], "float32")
PARTNER = np.array([1, 0, 3, 2], "int32")
#: Sequence labels [4, 3] over 3 classes; -1 is the ignored class.
TOKENS = np.array([[0, 2, -1], [1, -1, -1], [2, 2, 0], [1, 0, -1]])
SEQUENCES = np.linspace(-1.0, 1.0, 4 * 3 * 2).reshape(4, 3, 2)
X = np.array(
    [[1.0, 0.0, 2.0], [0.5, -1.0, 0.0], [-1.0, 1.0, 1.0], [2.0, 2.0, -0.5]]
)
TARGETS = np.array([[1.0, -1.0], [0.0, 2.0], [3.0, 0.5], [-2.0, 1.0]])


def _injected(model):
    """`model` with every draw `(LAM, PARTNER)`."""
    import keras

    draw = (
        keras.ops.convert_to_tensor(LAM),
        keras.ops.convert_to_tensor(PARTNER),
    )
    model.engine.draw = lambda *args, **kwargs: draw
    return model


def _model(units, shape, **options):
    import keras

    import keras_mixup

    dense = keras.layers.Dense(
        units, kernel_initializer=keras.initializers.RandomNormal(seed=1)
    )
    inner = keras.Sequential([keras.Input(shape), dense])
    return keras_mixup.MixupModel(inner, mix_loss=True, seed=0, **options)


def _one_step(model, x, y):
    history = model.fit(
        x.astype("float32"), y, batch_size=len(x), shuffle=False, verbose=0
    )
    return history.history["loss"][0]


def _mixed(x):
    lam = LAM.astype("float64").reshape(-1, *[1] * (x.ndim - 1))
    return lam * x + (1 - lam) * x[PARTNER]


def _log_softmax(logits):
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def sparse_sequences():
    """Sparse cross-entropy with `ignore_class=-1` on labels `[B, T]`."""
    import keras

    model = _injected(_model(3, (3, 2)))
    model.compile(
        keras.optimizers.SGD(0.1),
        keras.losses.SparseCategoricalCrossentropy(
            from_logits=True, ignore_class=-1
        ),
    )
    kernel, bias = (np.asarray(w, "float64") for w in model.model.get_weights())
    log_p = _log_softmax(_mixed(SEQUENCES) @ kernel + bias)

    def term(labels, weight):
        valid = labels != -1
        picked = np.take_along_axis(
            log_p, np.where(valid, labels, 0)[..., None], axis=-1
        )[..., 0]
        return -(weight[:, None] * picked * valid).sum() / valid.sum()

    expected = term(TOKENS, LAM) + term(TOKENS[PARTNER], 1 - LAM)
    logged = _one_step(model, SEQUENCES, TOKENS)
    return {"logged": logged, "expected": float(expected)}


def mean_squared_error():
    """Mean squared error: the mixed loss, and the blended targets'."""
    import keras

    model = _injected(_model(2, (3,)))
    model.compile(keras.optimizers.SGD(0.1), "mean_squared_error")
    kernel, bias = (np.asarray(w, "float64") for w in model.model.get_weights())
    predicted = _mixed(X) @ kernel + bias

    def error(targets):
        return ((predicted - targets) ** 2).mean(axis=-1)

    lam = LAM.astype("float64")
    expected = (
        lam * error(TARGETS) + (1 - lam) * error(TARGETS[PARTNER])
    ).mean()
    blended = error(_mixed(TARGETS)).mean()
    logged = _one_step(model, X, TARGETS)
    return {
        "logged": logged,
        "expected": float(expected),
        "blended_targets": float(blended),
    }


def regmixup():
    """Loss mixing with RegMixup: the mixed loss above plus half the
    clean loss, sparse labels."""
    import keras

    model = _injected(_model(3, (3,), clean_loss_weight=0.5))
    model.compile(
        keras.optimizers.SGD(0.1),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    kernel, bias = (np.asarray(w, "float64") for w in model.model.get_weights())
    labels = np.array([0, 1, 2, 0])

    def cross_entropy(x, targets):
        log_p = _log_softmax(x @ kernel + bias)
        return -np.take_along_axis(log_p, targets[:, None], axis=-1)[:, 0]

    lam = LAM.astype("float64")
    mixed = (
        lam * cross_entropy(_mixed(X), labels)
        + (1 - lam) * cross_entropy(_mixed(X), labels[PARTNER])
    ).mean()
    clean = cross_entropy(X, labels).mean()
    history = model.fit(
        X.astype("float32"), labels, batch_size=4, shuffle=False, verbose=0
    )
    return {
        "logged": {k: v[0] for k, v in history.history.items()},
        "expected": {
            "mixed_loss": float(mixed),
            "clean_loss": float(clean),
            "loss": float(mixed + 0.5 * clean),
        },
    }


def save_and_resume():
    """A sparse-loss model saved after one seeded step loads with
    `mix_loss`, predicts the same and takes the same next step."""
    import keras

    model = _model(3, (3,), alpha=1.0)
    model.compile(
        keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy"
    )
    labels = np.array([0, 1, 2, 1])
    _one_step(model, X, labels)
    with tempfile.TemporaryDirectory() as folder:
        path = pathlib.Path(folder) / "mix_loss.keras"
        model.save(path)
        loaded = keras.saving.load_model(path)
    x = X.astype("float32")
    predicted = np.abs(
        loaded.predict(x, verbose=0) - model.predict(x, verbose=0)
    )
    steps = [_one_step(m, X, labels) for m in (model, loaded)]
    weights = [np.asarray(w) for w in model.model.get_weights()]
    reloaded = [np.asarray(w) for w in loaded.model.get_weights()]
    return {
        "mix_loss": loaded.mix_loss,
        "num_classes": loaded.num_classes,
        "predicted": float(predicted.max()),
        "next_losses": steps,
        "next_weights": max(
            float(np.abs(a - b).max())
            for a, b in zip(weights, reloaded, strict=True)
        ),
    }


def mix_loss_scenario():
    """Every scenario above, by name."""
    import keras

    return {
        "backend": keras.backend.backend(),
        "sparse_sequences": sparse_sequences(),
        "mean_squared_error": mean_squared_error(),
        "regmixup": regmixup(),
        "save_and_resume": save_and_resume(),
    }
