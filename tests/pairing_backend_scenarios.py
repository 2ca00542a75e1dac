"""The pairing strategies under one Keras backend, in a subprocess of
pairing_backends_test.py.

    KERAS_BACKEND=jax python tests/pairing_backend_scenarios.py pairings

draws the partners of every strategy in `keras_mixup.pairing.PAIRINGS` on
the batches of `batches()`, with a stateless TensorFlow seed on TensorFlow
and a `keras.random.SeedGenerator` on JAX and PyTorch (on JAX under
`jax.jit` too), and prints one JSON object of what it drew, for the parent
to check. Nothing here imports Keras or TensorFlow at the top: the parent
reads `batches()`, and the scenario reports whether TensorFlow was imported.
"""

import json
import sys

import numpy as np

BATCH = 12
PARTNERS = 5
#: Class ids: class 3 has a single member and none in the partner batch.
CLASSES = [0, 1, 2, 0, 1, 2, 0, 1, 0, 1, 3, 0]
PARTNER_CLASSES = [0, 1, 1, 0, 2]
#: Regression targets for `"label_kernel"`, on a batch of 5.
TARGETS = [[0.0], [0.5], [1.5], [3.0], [6.0]]
PARTNER_TARGETS = [[0.2], [1.0], [4.0]]
#: The options every draw gets (each strategy takes the ones it knows).
OPTIONS = {"knn_k": 3, "label_bandwidth": 1.0}
#: How many label-kernel draws are counted.
DRAWS = 200
#: The `knn_features` tried (class name and constructor arguments), the
#: first with partners from the batch, the second from a partner batch.
FEATURES = (("MeanPool", {"dim": 2}), ("CountSketch", {"dim": 4, "seed": 1}))
FORMS = ("batch", "partner")


def batches():
    """`{name: (x, labels, partner_x, partner_labels)}`: inputs `[12, 2, 3]`
    (a partner batch of 5) and class ids, or for `"label_kernel"` inputs
    `[5, 2, 3]` (a partner batch of 3) and regression targets."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(BATCH, 2, 3)).astype("float32")
    partner_x = rng.normal(size=(PARTNERS, 2, 3)).astype("float32")
    classes = (np.array(CLASSES), np.array(PARTNER_CLASSES))
    found = {
        name: (x, classes[0], partner_x, classes[1])
        for name in ("random", "knn", "same_class", "same_class_knn")
    }
    found["label_kernel"] = (
        x[: len(TARGETS)],
        np.array(TARGETS, "float32"),
        partner_x[: len(PARTNER_TARGETS)],
        np.array(PARTNER_TARGETS, "float32"),
    )
    return found


def cases(name):
    """`(size, form)` of the draws of a strategy: its whole batch, one
    example and none, with partners from the batch, and the whole batch and
    none with partners from a partner batch."""
    size = len(batches()[name][0])
    return (
        (size, "batch"),
        (1, "batch"),
        (0, "batch"),
        (size, "partner"),
        (0, "partner"),
    )


def tensors(name, size, form):
    """The batch arguments of `partner_index`: the first `size` examples,
    and with `form == "partner"` the partner batch."""
    x, labels, partner_x, partner_labels = batches()[name]
    found = {"inputs": x[:size], "labels": labels[:size]}
    if form == "partner":
        found.update(partner_inputs=partner_x, partner_labels=partner_labels)
    return found


def _seed(value):
    """A stateless TensorFlow seed on TensorFlow, else a `SeedGenerator`."""
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.constant([value, 7])
    return keras.random.SeedGenerator(value)


class _Drawer:
    """Draws partners as a model on this backend does: eagerly on
    TensorFlow (a fresh stateless seed per draw) and PyTorch (one
    `SeedGenerator`, which every draw advances); on JAX under `jax.jit`,
    the generator's state threaded through the step (see `_jitted`), each
    step compiled once."""

    def __init__(self):
        import keras

        self.backend = keras.backend.backend()
        self.generator = _seed(5)
        self.count = 0
        self.steps = {}

    def __call__(self, name, size, form, *, seed=None, **options):
        """Partners from the next seed, or from `_seed(seed)`."""
        from keras_mixup import pairing

        if seed is not None:
            seed = _seed(seed)
        elif self.backend == "tensorflow":
            self.count += 1
            seed = _seed(self.count)
        else:
            seed = self.generator
        batch = tensors(name, size, form)
        if self.backend != "jax":
            return pairing.partner_index(name, size, seed, **batch, **options)
        key = (name, size, form, *sorted(options.items()))
        if key not in self.steps:
            self.steps[key] = _jitted(name, size, self.generator, options)
        index, state = self.steps[key](seed.state.value, batch)
        if seed is self.generator:
            self.generator.state.assign(state)
        return index


def _numpy(tensor):
    import keras

    return keras.ops.convert_to_numpy(tensor)


def _record(index):
    """What the parent checks of a partner index."""
    import keras

    from keras_mixup import backend

    return {
        "dtype": backend.dtype_name(index),
        "shape": list(index.shape),
        "native": bool(keras.ops.is_tensor(index)),
        "values": _numpy(index).tolist(),
    }


def _draws(draw):
    """Every strategy on its batch, a batch of one and an empty batch,
    with partners from the batch and from a partner batch."""
    from keras_mixup import pairing

    return {
        f"{name}/{size}/{form}": _record(draw(name, size, form, **OPTIONS))
        for name in pairing.NAMES
        for size, form in cases(name)
    }


def _features(draw):
    """`MeanPool` and `CountSketch` of the inputs, and the knn partners
    they give (from the batch, from the partner batch)."""
    import keras_mixup

    found = {}
    for (kind, config), form in zip(FEATURES, FORMS, strict=True):
        features = getattr(keras_mixup, kind)(**config)
        found[f"{kind}/values"] = _numpy(features(batches()["knn"][0])).tolist()
        index = draw(
            "knn", BATCH, form, knn_k=OPTIONS["knn_k"], knn_features=features
        )
        found[f"{kind}/{form}"] = _record(index)
    return found


def _kernel_counts(draw):
    """How often each label-kernel partner is drawn in `DRAWS` draws, from
    the batch and from the partner batch: `[rows, rows + partners]`."""
    rows = len(TARGETS)
    found = {}
    for form in FORMS:
        counts = np.zeros((rows, rows + len(PARTNER_TARGETS)), int)
        for _ in range(DRAWS):
            index = draw(
                "label_kernel",
                rows,
                form,
                label_bandwidth=OPTIONS["label_bandwidth"],
            )
            counts[np.arange(rows), _numpy(index)] += 1
        found[form] = counts.tolist()
    return found


def _reproducible(draw):
    """Per strategy: whether equal seeds draw equal partners, and whether
    some other seed draws others."""
    from keras_mixup import pairing

    found = {}
    for name in pairing.NAMES:
        size = len(batches()[name][0])
        draws = [
            _numpy(draw(name, size, "batch", seed=seed, **OPTIONS)).tolist()
            for seed in (3, 3, 4, 5, 6)
        ]
        others = any(other != draws[0] for other in draws[2:])
        found[name] = [draws[0] == draws[1], others]
    return found


def _error(call):
    try:
        call()
    except ValueError as error:
        return str(error)
    return None


def _errors():
    """The message of the `ValueError` each bad call raises (`None` for
    none)."""
    from keras_mixup import pairing

    x, classes, partner_x, _ = batches()["knn"]
    targets = batches()["label_kernel"][1]

    def draw(name, **arguments):
        return lambda: pairing.partner_index(name, BATCH, _seed(1), **arguments)

    return {
        "labels_missing": draw("same_class", inputs=x),
        "partner_labels_missing": draw(
            "same_class", labels=classes, partner_inputs=partner_x
        ),
        "class_ids_for_label_kernel": draw("label_kernel", labels=classes),
        "inputs_missing": draw("knn"),
        "bad_knn_k": draw("knn", inputs=x, knn_k=0),
        "feature_sizes_differ": draw(
            "knn", inputs=x, partner_inputs=partner_x[:, :1]
        ),
        "bad_bandwidth": draw(
            "label_kernel", labels=targets, label_bandwidth=0.0
        ),
        "unknown_option": draw("random", knn_kk=3),
    }


def _jitted(name, size, generator, options):
    """`partner_index` in `jax.jit`, as a Keras JAX training step calls it:
    the `SeedGenerator`'s state goes in and the advanced state comes out
    (through a `keras.StatelessScope`)."""
    import jax
    import keras

    from keras_mixup import pairing

    def draw(state, batch):
        mapping = [(generator.state, state)]
        with keras.StatelessScope(state_mapping=mapping) as scope:
            index = pairing.partner_index(
                name, size, generator, **batch, **options
            )
            return index, scope.get_current_value(generator.state)

    return jax.jit(draw)


#: The draws `_jit_as_eager` repeats eagerly (each eager JAX op compiles
#: once per shape: a few cases keep the test fast).
EAGER_CASES = (("same_class_knn", "partner"), ("label_kernel", "batch"))


def _jit_as_eager():
    """On JAX: whether a strategy draws the same partners eagerly as under
    `jax.jit` from the same generator state, and advances the state the
    same way."""
    from keras_mixup import pairing

    generator = _seed(9)
    found = {}
    for name, form in EAGER_CASES:
        size = len(batches()[name][0])
        batch = tensors(name, size, form)
        before = generator.state.value
        eager = pairing.partner_index(name, size, generator, **batch, **OPTIONS)
        after = _numpy(generator.state.value)
        step = _jitted(name, size, generator, OPTIONS)
        index, state = step(before, batch)
        found[f"{name}/{form}"] = [
            _numpy(index).tolist() == _numpy(eager).tolist(),
            _numpy(state).tolist() == after.tolist(),
            after.tolist() != _numpy(before).tolist(),
        ]
    return found


def _jit_trace_errors():
    """On JAX: the `ValueError`s the strategies raise, raised while
    `jax.jit` traces."""
    generator = _seed(2)
    _, classes, _, _ = batches()["knn"]
    step = _jitted("label_kernel", BATCH, generator, {})
    state = generator.state.value
    return {
        "class_ids_for_label_kernel": _error(
            lambda: step(state, {"labels": classes})
        )
    }


def pairings():
    """Everything the parent checks, for this backend."""
    import keras

    draw = _Drawer()
    out = {
        "backend": keras.backend.backend(),
        "draws": _draws(draw),
        "features": _features(draw),
        "kernel_counts": _kernel_counts(draw),
        "reproducible": _reproducible(draw),
        "errors": {key: _error(call) for key, call in _errors().items()},
    }
    if out["backend"] == "jax":
        out["jit_as_eager"] = _jit_as_eager()
        out["jit_errors"] = _jit_trace_errors()
    out["tensorflow_imported"] = "tensorflow" in sys.modules
    return out


if __name__ == "__main__":
    print(json.dumps(globals()[sys.argv[1]]()))
