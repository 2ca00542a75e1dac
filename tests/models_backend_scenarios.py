"""The in-model API under one Keras backend, in subprocesses of
models_backends_test.py (the scenario chain of conftest.py).

    KERAS_BACKEND=jax python tests/models_backend_scenarios.py in_model DIR
    KERAS_BACKEND=jax python tests/models_backend_scenarios.py \
        in_model_saving LOAD_DIR SAVE_DIR

`in_model` runs the in-model guide's examples (`MixupLayer` under plain
`fit`, `MixupModel` at the input and at hidden layers, `MixupSchedule`),
every pairing and option a step takes, mixed precision, resumed fits and
the mistakes a step refuses; `in_model_saving` saves the guide's models and
a resumed one to SAVE_DIR and loads those another backend saved in
LOAD_DIR (`-` for none). Each prints one JSON object of what it measured,
for the parent to check.
"""

import json
import os
import pathlib
import sys

import numpy as np

IMAGES = (8, 8, 3)
SIZE = 32
HALF = SIZE // 2
CLASSES = 4


def _data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(SIZE, *IMAGES)).astype("float32")
    return x, rng.integers(0, CLASSES, SIZE)


def _readme_layer_model():
    """The in-model guide's `MixupLayer` example, on small images."""
    import keras

    import keras_mixup

    return keras.Sequential(
        [
            keras.Input(IMAGES),
            keras_mixup.MixupLayer(alpha=0.2, seed=1),
            keras.layers.Conv2D(8, 3, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(CLASSES, activation="softmax"),
        ]
    )


def _readme_backbone(dense=False):
    """The in-model guide's Manifold Mixup backbone, on small images, with
    the same initial weights every time (seeded initializers:
    `set_random_seed` would import TensorFlow).

    With `dense`, `Dense` layers on the flattened images in place of the
    convolutions: the same image inputs and mix points (flat hidden
    features), and a training step that compiles several times faster (on
    JAX every model is a new compile), for the checks of the step."""
    import keras

    import keras_mixup

    def hidden(seed):
        kernel = keras.initializers.GlorotUniform(seed)
        if dense:
            return keras.layers.Dense(8, "relu", kernel_initializer=kernel)
        return keras.layers.Conv2D(
            8, 3, activation="relu", kernel_initializer=kernel
        )

    head = keras.initializers.GlorotUniform(3)
    return keras.Sequential(
        [
            keras.Input(IMAGES),
            *([keras.layers.Flatten()] if dense else []),
            hidden(1),
            keras_mixup.MixupLayer(name="mix_1"),
            hidden(2),
            keras_mixup.MixupLayer(name="mix_2"),
            *([] if dense else [keras.layers.GlobalAveragePooling2D()]),
            keras.layers.Dense(
                CLASSES, activation="softmax", kernel_initializer=head
            ),
        ]
    )


def _fit(model, x, y, **kwargs):
    history = model.fit(
        x,
        y,
        batch_size=16,
        epochs=kwargs.pop("epochs", 1),
        verbose=0,
        shuffle=False,
        **kwargs,
    )
    return [float(v) for v in history.history["loss"]]


def _weights(model):
    return [
        np.asarray(keras_ops().convert_to_numpy(w), "float64")
        for w in model.trainable_weights
    ]


def keras_ops():
    import keras

    return keras.ops


def _max_difference(first, second):
    return max(
        float(np.max(np.abs(a - b))) for a, b in zip(first, second, strict=True)
    )


def _readme_models():
    """The in-model guide's two models, compiled: the `MixupLayer` model
    and the Manifold Mixup `MixupModel`."""
    import keras_mixup

    model = _readme_layer_model()
    model.compile("adam", "sparse_categorical_crossentropy")
    wrapper = keras_mixup.MixupModel(
        _readme_backbone(),
        alpha=2.0,
        num_classes=CLASSES,
        mix_at="latent",
        seed=1,
    )
    wrapper.compile("adam", "categorical_crossentropy", metrics=["accuracy"])
    return model, wrapper


def readme_examples(x, y):
    """The in-model guide's examples train, and mix only while training."""
    import keras

    import keras_mixup

    out = {}
    model, wrapper = _readme_models()
    out["layer_losses"] = _fit(model, x, y)
    layer = keras_mixup.MixupLayer(alpha=0.2, seed=0)
    # Half the batch: the batch size `mistakes` mixes eagerly, whose eager
    # programs these calls share (on JAX each eager op, the Beta draw
    # among them, compiles once per shape).
    flat = x[:HALF].reshape(HALF, -1)
    out["layer_identity"] = bool(
        np.array_equal(keras.ops.convert_to_numpy(layer(flat)), flat)
    )
    mixed = keras.ops.convert_to_numpy(layer(flat, training=True))
    out["layer_mixes"] = not np.array_equal(mixed, flat)
    out["layer_mixed_dtype"] = str(mixed.dtype)
    element = layer({"images": flat, "labels": np.eye(CLASSES)[y[:HALF]]})
    out["dict_labels_shape"] = list(element["labels"].shape)
    out["latent_losses"] = _fit(wrapper, x, y)
    out["mix_points"] = wrapper.mix_points
    return out


def exact_mix():
    """`MixupModel.mix` on hand-built rows: every mixed row is `lam * e_i +
    (1 - lam) * e_j`, and its label the same blend of the labels."""
    import keras

    import keras_mixup

    size = 8
    model = keras_mixup.MixupModel(
        keras.Sequential([keras.Input((size,)), keras.layers.Dense(size)]),
        alpha=1.0,
        num_classes=size,
        seed=5,
    )
    x, labels, _, _ = model.mix(np.eye(size, dtype="float32"), np.arange(size))
    x, labels = (keras.ops.convert_to_numpy(t) for t in (x, labels))
    return {
        "rows_sum_to_one": bool(np.allclose(x.sum(axis=1), 1.0, atol=1e-6)),
        "labels_equal_inputs": bool(np.allclose(x, labels, atol=1e-6)),
        "at_most_two_sources": bool(((x > 1e-6).sum(axis=1) <= 2).all()),
        "mixed_rows": int(((x > 1e-6).sum(axis=1) == 2).sum()),
    }


#: The step's pairings and options, a few to a model (each fit of a new
#: model compiles a new step): `{options trained: MixupModel options}`.
OPTION_CONFIGS = {
    ("random", "prob", "label_smoothing"): {
        "prob": 0.5,
        "label_smoothing": 0.1,
    },
    ("knn", "batch_mode"): {"pairing": "knn", "knn_k": 3, "mode": "batch"},
    ("knn_meanpool",): {"pairing": "knn", "knn_features": "MeanPool"},
    ("knn_countsketch", "list"): {
        "pairing": "knn",
        "knn_features": "CountSketch",
        "mix_at": ["input", "mix_2"],
    },
    ("same_class",): {"pairing": "same_class"},
}


def options_and_pairings(x, y):
    """A step with each pairing and option trains (finite losses):
    `{option: the losses of the model that trained with it}`."""
    import keras_mixup

    features = {
        "MeanPool": keras_mixup.MeanPool(4),
        "CountSketch": keras_mixup.CountSketch(16),
    }
    losses = {}
    for names, options in OPTION_CONFIGS.items():
        options = dict(options)
        if "knn_features" in options:
            options["knn_features"] = features[options["knn_features"]]
        found = _fit(_latent_model(seed=2, **options), x, y)
        losses.update(dict.fromkeys(names, found))
    return {"option_losses": losses}


def schedule(x, y):
    """Mixing off (a `MixupSchedule`) trains exactly as the plain model; on,
    it does not; an alpha the schedule sets applies in the step; a seed
    repeats.

    The first epoch of the two 2-epoch runs is the 1-epoch run with mixing
    on (the alpha changes at epoch 1): their weights after it show a seed
    repeating and mixing moving the weights off the plain model's."""
    import keras

    import keras_mixup

    y_hot = np.eye(CLASSES, dtype="float32")[y]

    class FirstEpoch(keras.callbacks.Callback):
        """Keeps the model's weights after its first epoch."""

        weights = None

        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                self.weights = _weights(self.model)

    def trained(schedule_options=None, epochs=1, seed=4):
        model = keras_mixup.MixupModel(
            _readme_backbone(dense=True),
            alpha=0.2,
            num_classes=CLASSES,
            mix_at="latent",
            seed=seed,
        )
        model.compile(keras.optimizers.SGD(0.1), "categorical_crossentropy")
        callbacks = [FirstEpoch()]
        if schedule_options is not None:
            callbacks.append(
                keras_mixup.MixupSchedule(model, **schedule_options)
            )
        _fit(model, x, y, epochs=epochs, callbacks=callbacks)
        return _weights(model), callbacks[0].weights, model.alpha

    plain = _readme_backbone(
        dense=True
    )  # its MixupLayers switched off: plain steps
    plain.compile(keras.optimizers.SGD(0.1), "categorical_crossentropy")
    layers = [layer for layer in plain.layers if hasattr(layer, "engine")]
    off_layers = keras_mixup.MixupSchedule(layers, start_epoch=1)
    _fit(plain, x, y_hot, callbacks=[off_layers])
    off, _, _ = trained({"start_epoch": 1})
    changed, changed_first, alpha = trained({"alpha": {1: 8.0}}, epochs=2)
    kept, on, _ = trained(epochs=2)
    return {
        "off_vs_plain": _max_difference(off, _weights(plain)),
        "on_vs_plain": _max_difference(on, _weights(plain)),
        "same_seed": _max_difference(on, changed_first),
        "alpha_changed_vs_kept": _max_difference(changed, kept),
        "alpha_after_fit": alpha,
    }


def _latent_model(*, seed, jit_compile="auto", **options):
    """The in-model guide's Manifold Mixup model (its dense backbone),
    compiled."""
    import keras_mixup

    model = keras_mixup.MixupModel(
        _readme_backbone(dense=True),
        alpha=0.4,
        num_classes=CLASSES,
        seed=seed,
        **{"mix_at": "latent", **options},
    )
    model.compile("adam", "categorical_crossentropy", jit_compile=jit_compile)
    return model


def mixed_precision(x, y):
    """MixupLayer and MixupModel train under `mixed_bfloat16`, with
    `jit_compile=True` where Keras compiles on this backend."""
    import keras

    keras.config.set_dtype_policy("mixed_bfloat16")
    jit = keras.backend.backend() != "torch"
    try:
        model = _latent_model(seed=6, jit_compile=jit)
        losses = _fit(model, x, y)
        dtype = str(model.predict(x, verbose=0).dtype)
    finally:
        keras.config.set_dtype_policy("float32")
    return {
        "bfloat16_losses": losses,
        "bfloat16_jit": jit,
        "bfloat16_output": dtype,
    }


def data_parallel(x, y):
    """On JAX with several devices: `MixupModel` trains under
    `keras.distribution.DataParallel`."""
    import keras

    if keras.backend.backend() != "jax":
        return {}
    devices = keras.distribution.list_devices()
    keras.distribution.set_distribution(
        keras.distribution.DataParallel(devices=devices)
    )
    try:
        losses = _fit(_latent_model(seed=7), x, y)
    finally:
        keras.distribution.set_distribution(None)
    return {"devices": len(devices), "data_parallel_losses": losses}


def _load_other(path):
    """The model another backend saved at `path`, compiled as a model
    compiled here with `jit_compile="auto"`: the file holds the saving
    backend's resolved choice (`True` from JAX), which on PyTorch would
    `torch.compile` every step (over a minute of CPU for these checks)
    where "auto" runs eagerly."""
    import keras

    model = keras.saving.load_model(path)
    if keras.backend.backend() == "torch":
        model.jit_compile = False
    return model


def save_and_load(layer_model, wrapper, load_dir, save_dir):
    """Saves both models and their predictions; loads another backend's
    files and compares their predictions with the ones stored there."""
    import keras

    x, _ = _data(seed=9)
    out = {}
    if load_dir != "-":
        load_dir = pathlib.Path(load_dir)
        stored = np.load(load_dir / "predictions.npz")
        for name in ("layer", "wrapper"):
            loaded = _load_other(load_dir / f"{name}.keras")
            out[f"loaded_{name}"] = float(
                np.max(np.abs(loaded.predict(x, verbose=0) - stored[name]))
            )
    save_dir = pathlib.Path(save_dir)
    save_dir.mkdir(parents=True, exist_ok=True)
    predictions = {}
    for name, model in (("layer", layer_model), ("wrapper", wrapper)):
        model.save(save_dir / f"{name}.keras")
        predictions[name] = model.predict(x, verbose=0)
        reloaded = keras.saving.load_model(save_dir / f"{name}.keras")
        out[f"reloaded_{name}"] = float(
            np.max(np.abs(reloaded.predict(x, verbose=0) - predictions[name]))
        )
    np.savez(save_dir / "predictions.npz", **predictions)
    return out


def layer_in_tf_data():
    """A MixupLayer mapped over a `tf.data.Dataset` of dicts mixes there,
    with TensorFlow, whatever the backend (as Keras' own layers do)."""
    import tensorflow as tf

    import keras_mixup

    x = np.eye(8, dtype="float32")
    layer = keras_mixup.MixupLayer(alpha=1.0, seed=3)
    ds = tf.data.Dataset.from_tensor_slices({"images": x, "labels": x})
    element = next(iter(ds.batch(8).map(layer)))
    images, labels = element["images"].numpy(), element["labels"].numpy()
    return {
        "tf_data_is_tensorflow": isinstance(element["images"], tf.Tensor),
        "tf_data_mixed": not np.array_equal(images, x),
        "tf_data_labels_follow": bool(np.allclose(images, labels, atol=1e-6)),
    }


def _resume_model(backend, **options):
    """A compiled MixupModel for the resume scenarios (seeded weights)."""
    import keras

    import keras_mixup

    model = keras_mixup.MixupModel(
        _readme_backbone(dense=True),
        alpha=0.4,
        num_classes=CLASSES,
        seed=3,
        **options,
    )
    model.compile(keras.optimizers.Adam(0.01), "categorical_crossentropy")
    return model


def _state(model):
    """Weights and optimizer variables, as float64 arrays."""
    return [
        np.asarray(keras_ops().convert_to_numpy(v), "float64")
        for v in [*model.trainable_weights, *model.optimizer.variables]
    ]


#: The MixupModels saved and resumed: every `mix_at`, RegMixup where the
#: backend runs it.
RESUMED = {
    "input": {},
    "latent": {"mix_at": "latent"},
    "list": {"mix_at": ["mix_2"]},
    "regmixup": {"clean_loss_weight": 1.0},
}


def resume(x, y, load_dir, save_dir, names):
    """A saved MixupModel loads compiled, with its optimizer, and its next
    `fit` steps are those of the model that was saved (the models `names`
    of `RESUMED`); a file another backend saved (`load_dir`, `-` for
    none) loads and resumes with the optimizer state carried."""
    import warnings

    import keras

    backend = keras.backend.backend()
    out = {}
    save_dir = pathlib.Path(save_dir)
    for name in names:
        options = RESUMED[name]
        if name == "regmixup" and backend != "tensorflow":
            continue  # RegMixup runs on TensorFlow only, for now
        model = _resume_model(backend, **options)
        _fit(model, x, y)
        path = save_dir / f"resume_{name}.keras"
        model.save(path)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            loaded = keras.saving.load_model(path)
        saved = _state(model)
        iterations = int(
            keras_ops().convert_to_numpy(loaded.optimizer.iterations)
        )
        _fit(model, x, y)
        _fit(loaded, x, y)
        out[f"resume_{name}"] = {
            "compile_warnings": [
                str(w.message)[:200]
                for w in caught
                if "compile" in str(w.message)
            ],
            "iterations_loaded": iterations,
            "iterations_after": int(
                keras_ops().convert_to_numpy(loaded.optimizer.iterations)
            ),
            "next_steps": _max_difference(_state(model), _state(loaded)),
            "moved": _max_difference(saved, _state(model)),
        }
        if name == "input":
            np.savez(save_dir / "resume_input.npz", *saved)
    if load_dir != "-":
        load_dir = pathlib.Path(load_dir)
        loaded = _load_other(load_dir / "resume_input.keras")
        stored = np.load(load_dir / "resume_input.npz")
        stored = [stored[f"arr_{i}"] for i in range(len(stored.files))]
        out["resume_other_backend"] = {
            "carried": _max_difference(stored, _state(loaded)),
            "iterations_loaded": int(
                keras_ops().convert_to_numpy(loaded.optimizer.iterations)
            ),
            "losses": _fit(loaded, x, y),
            "iterations_after": int(
                keras_ops().convert_to_numpy(loaded.optimizer.iterations)
            ),
        }
    return out


def _message(run):
    """The message of the ValueError `run()` raises (`None` if it raises
    nothing, the type and message for another error)."""
    try:
        run()
    except ValueError as error:
        return str(error)
    except Exception as error:  # noqa: BLE001 - reported, for the parent
        return f"{type(error).__name__}: {error}"[:300]
    return None


def _small_model(**options):
    import keras

    import keras_mixup

    backbone = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3, activation="softmax")]
    )
    model = keras_mixup.MixupModel(backbone, seed=1, **options)
    model.compile("adam", "categorical_crossentropy")
    return model


def _mix_layer_labels(x, y):
    """`MixupLayer`'s dict form, called eagerly while training (its `call`:
    Keras's `__call__` would add the arguments, printed as each backend
    prints tensors, to the message)."""
    import keras_mixup

    layer = keras_mixup.MixupLayer(alpha=1.0, seed=1)
    layer.call({"images": x, "labels": y}, training=True)


def mistakes():
    """The same mistakes on every backend: the message each raises, from
    `fit`; after an out-of-range id the model is unchanged and trains."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 4)).astype("float32")
    ids = rng.integers(0, 3, 16).astype("int32")
    hot = np.eye(3, dtype="float32")[ids]
    bad_ids = ids.copy()
    bad_ids[2] = 7
    weights = np.ones(16, "float32")

    def fit(model, y, sample_weight=None):
        model.fit(
            x,
            y,
            sample_weight=sample_weight,
            batch_size=8,
            verbose=0,
            shuffle=False,
        )

    def weight(value):
        changed = weights.copy()
        changed[5] = value
        return changed

    def label(labels, value):
        changed = labels.copy()
        changed[3, 1] = value
        return changed

    # The batches refused as the step runs (their values) go to one model
    # (on JAX each new model is a new compile); those refused as it is
    # traced (shapes, dtypes) to fresh models: on TensorFlow a model whose
    # first step failed to trace cannot trace it again.
    three = _small_model(num_classes=3)
    table = {
        "ids_without_num_classes": lambda: fit(_small_model(), ids),
        "one_hot_too_wide": lambda: fit(
            _small_model(num_classes=3), np.eye(5, dtype="float32")[ids]
        ),
        "float_ids": lambda: fit(
            _small_model(num_classes=3), ids.astype("float32")
        ),
        "negative_weight": lambda: fit(three, hot, weight(-0.5)),
        "nan_weight": lambda: fit(three, hot, weight(np.nan)),
        "evaluate_id_out_of_range": lambda: three.evaluate(
            x, bad_ids, verbose=0
        ),
        "nan_one_hot_label": lambda: fit(three, label(hot, np.nan)),
        "inf_soft_label": lambda: fit(_small_model(), label(hot, np.inf)),
        "negative_int_weight": lambda: fit(
            three, hot, weight(-2).astype("int32")
        ),
        "layer_nan_label": lambda: _mix_layer_labels(x, label(hot, np.nan)),
    }
    out = {"mistakes": {name: _message(run) for name, run in table.items()}}
    # The out-of-range id on the model that refused the batches above,
    # which then trains on.
    model = three
    before = _weights(model)
    out["mistakes"]["id_out_of_range"] = _message(lambda: fit(model, bad_ids))
    unchanged = _max_difference(before, _weights(model))
    fit(model, ids)
    out["after_refused_batch"] = {
        "raised": out["mistakes"]["id_out_of_range"],
        "unchanged": unchanged,
        "then_trained": _max_difference(before, _weights(model)),
        "predicts": list(model.predict(x, verbose=0).shape),
    }
    return out


def dict_layer_in_functional_model():
    """The dict form of MixupLayer inside a functional model: built
    symbolically, identity at inference, mixing when training."""
    import keras

    import keras_mixup

    x = np.eye(8, dtype="float32")
    images, labels = keras.Input((8,)), keras.Input((8,))
    mixed = keras_mixup.MixupLayer(alpha=1.0, seed=2)(
        {"images": images, "labels": labels}
    )
    model = keras.Model([images, labels], [mixed["images"], mixed["labels"]])
    same = model.predict([x, x], verbose=0)
    trained = [
        keras_ops().convert_to_numpy(t) for t in model([x, x], training=True)
    ]
    return {
        "dict_layer_shapes": [list(t.shape) for t in model.outputs],
        "dict_layer_identity": bool(np.array_equal(same[0], x)),
        "dict_layer_mixes": not np.array_equal(trained[0], x),
        "dict_layer_labels_follow": bool(
            np.allclose(trained[0], trained[1], atol=1e-6)
        ),
    }


def step_callbacks():
    """On JAX: the host callbacks (`debug_callback`) traced into the mix of
    a training step on float labels and weights (the step checks them
    with array ops first, `model_steps.screen`) and into `model.mix`
    called inside a user's own `jax.jit` (which keeps its checks)."""
    import keras

    if keras.backend.backend() != "jax":
        return {}
    import jax

    from keras_mixup import model_steps

    model = _small_model(num_classes=3)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 4)).astype("float32")
    y = np.eye(3, dtype="float32")[rng.integers(0, 3, 8)]
    w = np.ones(8, "float32")

    def step(x, y, w):
        y, w, _ = model_steps.screen(model, y, w)
        return model_steps.screened_step_batch(model, (x, y, w))[0]

    def count(fn):
        return str(jax.make_jaxpr(fn)(x, y, w)).count("debug_callback")

    return {
        "step_callbacks": count(step),
        "mix_callbacks": count(lambda x, y, w: model.mix(x, y, w)[:3]),
        "checks_back_on": model.engine.check_values,
    }


def in_model(save_dir):
    """Every scenario above that loads nothing another backend saved (see
    the module docstring); `save_dir` takes this backend's own files."""
    import keras

    x, y = _data()
    out = {"backend": keras.backend.backend()}
    out.update(readme_examples(x, y))
    out.update(exact_mix())
    out.update(options_and_pairings(x, y))
    out.update(schedule(x, y))
    out.update(mixed_precision(x, y))
    out.update(data_parallel(x, y))
    # Keras' own `model.save` imports TensorFlow where it is installed (to
    # recognise a `tf.TensorShape`): what keras_mixup imported is known
    # before saving.
    out["tensorflow_imported"] = "tensorflow" in sys.modules
    out["tfp_imported"] = "tensorflow_probability" in sys.modules
    out.update(resume(x, y, "-", save_dir, ("latent", "list", "regmixup")))
    out.update(mistakes())
    out.update(step_callbacks())
    out.update(dict_layer_in_functional_model())
    out.update(layer_in_tf_data())
    return out


def in_model_saving(load_dir, save_dir):
    """The in-model guide's models and a resumed MixupModel saved to
    `save_dir`, and those another backend saved in `load_dir` (`-` for
    none) loaded: the backends run this in turn."""
    x, y = _data()
    layer_model, wrapper = _readme_models()
    for model in (layer_model, wrapper):  # built, as after a fit
        # On the batch `save_and_load` predicts: its step is compiled once.
        model.predict(_data(seed=9)[0], verbose=0)
    out = save_and_load(layer_model, wrapper, load_dir, save_dir)
    out.update(resume(x, y, load_dir, save_dir, ("input",)))
    return out


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    print(json.dumps(globals()[sys.argv[1]](*sys.argv[2:])))
