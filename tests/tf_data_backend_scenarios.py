"""The tf.data map functions and the calibration metric under JAX and
PyTorch, in the scenario chain's process of each backend (see
`conftest.CHAIN`): the checks of cutmix_test.py, data_test.py and
metrics_test.py that need another Keras backend, without a process of
their own.

    KERAS_BACKEND=jax python tests/scenario_runner.py \
        '[["tf_data_backend_scenarios.py", "cutmix_in_tf_data", []]]'

Each scenario returns what it measured (NumPy values as lists), for the
test to check; under TensorFlow, only `{"backend": "tensorflow"}` (the
TensorFlow tests run in the pytest process). They import TensorFlow, so
they run after the scenarios that check JAX and PyTorch never import it.
"""

import numpy as np

__all__ = [
    "calibration_metric",
    "cutmix_in_tf_data",
    "mixup_in_tf_data",
    "random_logits",
]


def _backend():
    import keras

    return keras.backend.backend()


def cutmix_in_tf_data():
    """CutMix, the mixup/CutMix switch and keras's dict with masks and
    boxes, mapped over a `tf.data.Dataset` (TensorFlow whatever the
    backend)."""
    backend = _backend()
    if backend == "tensorflow":
        return {"backend": backend}
    import tensorflow as tf

    import keras_mixup

    x = np.arange(8, dtype="float32")[:, None, None, None] * np.ones(
        (8, 8, 8, 1), "float32"
    )
    element = {
        "images": x,
        "labels": np.arange(8),
        "segmentation_masks": x.astype("int32"),
        "bounding_boxes": {
            "boxes": np.tile([[[0.0, 0.0, 4.0, 4.0]]], (8, 1, 1)),
            "labels": np.ones((8, 1), "int32"),
        },
    }
    ds = tf.data.Dataset.from_tensor_slices(element).batch(8)
    cut = keras_mixup.CutMix(num_classes=8, bounding_box_format="xyxy", seed=1)
    out = next(iter(ds.map(cut)))
    switch = keras_mixup.Mixup(
        alpha=0.8, num_classes=8, cutmix_alpha=1.0, seed=1
    )
    pairs = tf.data.Dataset.from_tensor_slices((x, np.arange(8))).batch(8)
    images, labels = next(iter(pairs.map(switch)))
    return {
        "backend": backend,
        "own_fraction": np.mean(out["images"].numpy() == x, (1, 2, 3)).tolist(),
        "own_label": np.diag(out["labels"].numpy()).tolist(),
        "masks_follow_images": bool(
            np.array_equal(out["segmentation_masks"], out["images"])
        ),
        "boxes_shape": list(out["bounding_boxes"]["boxes"].shape),
        "switch_images_dtype": images.dtype.name,
        "switch_labels_shape": list(labels.shape),
    }


def mixup_in_tf_data():
    """`Mixup` mapped over a `tf.data.Dataset` of identity rows."""
    backend = _backend()
    if backend == "tensorflow":
        return {"backend": backend}
    import tensorflow as tf

    import keras_mixup

    ds = tf.data.Dataset.from_tensor_slices(
        (np.eye(4, dtype="float32"), np.arange(4))
    ).batch(4)
    x, y = next(iter(ds.map(keras_mixup.Mixup(1.0, num_classes=4))))
    return {
        "backend": backend,
        "is_tensorflow": isinstance(x, tf.Tensor),
        "x": x.numpy().tolist(),
        "labels_shape": list(y.shape),
    }


def random_logits(n=1000, k=5, seed=0):
    """`n` logits of `k` classes and labels that agree with the argmax
    more often than chance."""
    rng = np.random.default_rng(seed)
    logits = (rng.normal(size=(n, k)) * 2.0).astype("float32")
    labels = np.where(
        rng.random(n) < 0.6, logits.argmax(-1), rng.integers(0, k, n)
    )
    return logits, labels


#: The data `calibration_metric` measures (metrics_test.py compares it
#: with TFP's value).
METRIC_DATA = {"n": 500, "seed": 4}


def calibration_metric():
    """`ExpectedCalibrationError` accumulated over three updates, and as a
    compiled metric of `fit` and `evaluate` against a direct update on the
    same predictions."""
    backend = _backend()
    if backend == "tensorflow":
        return {"backend": backend}
    import keras

    import keras_mixup

    error = keras_mixup.metrics.ExpectedCalibrationError
    logits, labels = random_logits(**METRIC_DATA)
    metric = error(from_logits=True)
    for rows in np.array_split(np.arange(len(labels)), 3):
        metric.update_state(labels[rows], logits[rows])
    accumulated = float(metric.result())
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((5,)), keras.layers.Dense(5, activation="softmax")]
    )
    model.compile(
        optimizer="sgd",
        loss="sparse_categorical_crossentropy",
        metrics=[error(num_bins=10)],
        jit_compile=backend == "jax",
    )
    model.fit(logits, labels, batch_size=100, epochs=1, verbose=0)
    logs = model.evaluate(
        logits, labels, batch_size=100, return_dict=True, verbose=0
    )
    direct = error(num_bins=10)
    direct.update_state(labels, model.predict(logits, verbose=0))
    return {
        "backend": backend,
        "accumulated": accumulated,
        "evaluate": float(logs["expected_calibration_error"]),
        "direct": float(direct.result()),
    }
