"""`MixupGAN` under one Keras backend, for gan_backends_test.py.

The scenario chain (`conftest.CHAIN`) runs `gan_training` in each
backend's in-turn process, before any scenario there imports TensorFlow,
and `gan_saving` later, the backends in turn, or by hand:

    KERAS_BACKEND=jax python tests/gan_backend_scenarios.py gan LOAD SAVE

prints one JSON object: what the scenarios measured, for the tests to
check (`SAVE` is where it saves its `.keras` file, `LOAD` where the
previous backend saved its, `-` for none). Nothing here calls
`keras.utils.set_random_seed` (it imports TensorFlow): the models start
from seeded initializers.
"""

import json
import pathlib
import sys

import keras
import numpy as np

import keras_mixup


def _mlp(input_dim, output_dim, seed, width=8, middle=()):
    def dense(units, offset, **kwargs):
        return keras.layers.Dense(
            units,
            kernel_initializer=keras.initializers.GlorotUniform(seed + offset),
            **kwargs,
        )

    return keras.Sequential(
        [
            keras.Input((input_dim,)),
            dense(width, 0, activation="relu"),
            *middle,
            dense(output_dim, 1),
        ]
    )


def _gan(alpha=0.2, seed=1, **kwargs):
    """A compiled MixupGAN of two small MLPs, the same weights every time;
    the discriminator's batch statistics change in the step's `cond`."""
    model = keras_mixup.MixupGAN(
        _mlp(2, 2, seed=10),
        _mlp(2, 1, seed=20, middle=[keras.layers.BatchNormalization()]),
        latent_dim=2,
        alpha=alpha,
        seed=seed,
        **kwargs,
    )
    model.compile(
        d_optimizer=keras.optimizers.Adam(1e-2),
        g_optimizer=keras.optimizers.Adam(1e-2),
    )
    return model


def _real(n=64, seed=0):
    return np.random.default_rng(seed).standard_normal((n, 2)).astype("f")


def _numpy(variables):
    return [keras.ops.convert_to_numpy(v) for v in variables]


def _same(values, variables):
    """Whether each of `variables` holds the value in `values`."""
    return [
        np.array_equal(a, b)
        for a, b in zip(values, _numpy(variables), strict=True)
    ]


def _fit(model, epochs=1):
    history = model.fit(
        _real(), batch_size=16, epochs=epochs, shuffle=False, verbose=0
    )
    return {k: [float(v) for v in vs] for k, vs in history.history.items()}


def training():
    """Trains for a few steps, evaluates, predicts; trains a second model
    with the same seed."""
    model = _gan(alpha=0.4, seed=5)
    generator = _numpy(model.generator.weights)
    discriminator = _numpy(model.discriminator.weights)
    statistics = _numpy(model.discriminator.non_trainable_weights)
    history = _fit(model, epochs=2)
    result = model.evaluate(
        _real(32, 1), batch_size=16, verbose=0, return_dict=True
    )
    noise = _real(5, 2)
    predicted = model.predict(noise, verbose=0)
    out = {
        "history": history,
        "evaluate": {k: float(v) for k, v in result.items()},
        "generator_changed": not all(_same(generator, model.generator.weights)),
        "discriminator_changed": not all(
            _same(discriminator, model.discriminator.weights)
        ),
        "statistics_changed": not any(
            _same(statistics, model.discriminator.non_trainable_weights)
        ),
        "iterations": [
            int(model.d_optimizer.iterations),
            int(model.g_optimizer.iterations),
        ],
        "same_seed_history": _fit(_gan(alpha=0.4, seed=5), epochs=2),
        "predict_is_generator": bool(
            np.allclose(
                predicted,
                keras.ops.convert_to_numpy(model.generator(noise)),
                atol=1e-6,
            )
        ),
    }
    return out, model


class _Record(keras.callbacks.Callback):
    """The discriminator's `(w, b)` at the start and after every epoch."""

    def __init__(self, discriminator):
        super().__init__()
        self.discriminator = discriminator
        self.weights = []

    def _record(self):
        kernel, bias = self.discriminator.get_weights()
        self.weights.append((float(kernel[0, 0]), float(bias[0])))

    def on_train_begin(self, logs=None):
        self._record()

    def on_epoch_end(self, epoch, logs=None):
        self._record()


def _probe(alpha, epochs, schedule=None, **kwargs):
    """The discriminator's `(w, b)` at every step of a hand-built GAN.

    The generator outputs 0 (zero weights, learning rate 0) and the real
    sample is 1, so the discriminator's input is exactly the lam of the
    blend; the discriminator is the logit `w * x + b`, trained by SGD with
    learning rate 1 on one example per step (one step per epoch, so the
    weights are read where every backend has them), and its update reveals
    its input and target (see `gan_backends_test.py`). `schedule` makes
    a callback for the model.
    """
    zeros = keras.initializers.Zeros()
    generator = keras.Sequential(
        [keras.Input((1,)), keras.layers.Dense(1, kernel_initializer=zeros)]
    )
    discriminator = keras.Sequential(
        [keras.Input((1,)), keras.layers.Dense(1, kernel_initializer=zeros)]
    )
    model = keras_mixup.MixupGAN(
        generator, discriminator, latent_dim=1, alpha=alpha, seed=3, **kwargs
    )
    model.compile(
        d_optimizer=keras.optimizers.SGD(1.0),
        g_optimizer=keras.optimizers.SGD(0.0),
    )
    record = _Record(discriminator)
    model.fit(
        np.ones((1, 1), "float32"),
        batch_size=1,
        epochs=epochs,
        verbose=0,
        callbacks=[record, *([schedule(model)] if schedule else [])],
    )
    return record.weights


def probes():
    """What the discriminator trains on: the plain GAN, and a MixupGAN
    switched on then off by a `MixupSchedule`."""
    return {
        "plain": _probe(None, 3),
        # Epochs 0-1 off, 2-3 on, 4-5 off again.
        "scheduled": _probe(
            1.0,
            6,
            schedule=lambda model: keras_mixup.MixupSchedule(
                model, start_epoch=2, stop_epoch=4
            ),
        ),
    }


def saving(model, directory):
    """`.keras` round trip of a trained model: config, weights,
    optimizers, and the loaded model trains on. Leaves the file, and the
    generator's samples on fixed noise, in `directory`."""
    directory = pathlib.Path(directory)
    model.save(directory / "gan.keras")
    noise = _real(8, 3)
    samples = keras.ops.convert_to_numpy(model.generator(noise))
    np.save(directory / "samples.npy", samples)
    loaded = keras.saving.load_model(directory / "gan.keras")
    out = {
        "type": type(loaded).__name__,
        "same_config": _config(loaded) == _config(model),
        "same_generator": bool(
            np.array_equal(
                keras.ops.convert_to_numpy(loaded.generator(noise)), samples
            )
        ),
        "same_discriminator": all(
            _same(
                _numpy(model.discriminator.weights),
                loaded.discriminator.weights,
            )
        ),
        "same_optimizers": all(
            _same(
                _numpy(model.d_optimizer.variables),
                loaded.d_optimizer.variables,
            )
            + _same(
                _numpy(model.g_optimizer.variables),
                loaded.g_optimizer.variables,
            )
        ),
        "iterations": int(loaded.d_optimizer.iterations),
    }
    out["loaded_history"] = _fit(loaded)
    return out, _config(model)


def _config(model):
    return json.loads(json.dumps(model.get_config(), sort_keys=True))


def loading(previous):
    """Loads the `.keras` file another backend saved (see `saving`)."""
    previous = pathlib.Path(previous)
    loaded = keras.saving.load_model(previous / "gan.keras")
    samples = keras.ops.convert_to_numpy(loaded.generator(_real(8, 3)))
    return {
        "type": type(loaded).__name__,
        "config": _config(loaded),
        "same_generator": bool(
            np.allclose(samples, np.load(previous / "samples.npy"), atol=1e-5)
        ),
        "iterations": int(loaded.g_optimizer.iterations),
        "history": _fit(loaded),
    }


#: The model `gan_training` trained, for `gan_saving` (a later scenario
#: of the same process).
_TRAINED = {}


def gan_training():
    """Every scenario of this backend that saves nothing; run before any
    scenario of the process imports TensorFlow."""
    out, model = training()
    out["probes"] = probes()
    out["backend"] = keras.backend.backend()
    # Keras' own serialisation (`get_config`, `save`) imports TensorFlow
    # where it is installed: asked before that.
    out["tensorflow_imported"] = "tensorflow" in sys.modules
    _TRAINED["model"] = model
    return out


def gan_saving(previous, directory):
    """Saves the model `gan_training` trained to `directory` and loads the
    one the previous backend saved in `previous` (`-` for none)."""
    out = {"backend": keras.backend.backend()}
    out["saving"], out["config"] = saving(_TRAINED.pop("model"), directory)
    if previous != "-":
        out["loading"] = loading(previous)
    return out


def gan(previous, directory):
    """Every scenario of this backend, in one process; `previous` is the
    folder where the previous backend saved its model, or `-`."""
    return {**gan_training(), **gan_saving(previous, directory)}


if __name__ == "__main__":
    print(json.dumps(globals()[sys.argv[1]](*sys.argv[2:])))
