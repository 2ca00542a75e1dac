"""The contract every registered variant passes, under one Keras backend, in
a subprocess of variants_contract_test.py:

    KERAS_BACKEND=jax python tests/variant_contract_scenarios.py contract DIR

prints one JSON object `{variant: {check: error or null}}`. Each check runs
the variant on hand-built inputs through the in-model API (`MixupLayer`'s
dict form, and a compiled `MixupModel`) and through `tf.data` (`Mixup`),
and records the first assertion that fails. The variants are read from
the registry: a new variant gets these checks by registering.
"""

import json
import pathlib
import sys
import time
import traceback

import keras
import numpy as np

import keras_mixup
from keras_mixup import variants

B, H, W = 6, 8, 10

#: The members of the choice whose compiled training step
#: `contract_compiled_and_seeded` checks: three, not every registered
#: variant (a choice of six compiles every member's draw and paste into
#: one step: 12.8 s on TensorFlow against 5.9 s for three). The choice
#: picks a member per example: `CHOICE_EPOCHS` epochs of the six examples
#: (new draws, no new compile) take all three on every backend (one epoch
#: of seed 1 never takes mixup on JAX), so a member whose label weights
#: are off in the compiled step fails the check (checked on the three
#: backends by breaking each member's paste in turn). Every member is also
#: checked compiled on its own, and the other checks of the choice run the
#: choice of every variant.
COMPILED_CHOICE = ("mixup", "cutmix", "mosaic")
CHOICE_EPOCHS = 3


def specs():
    """Every registered variant, and a choice among all of them."""
    names = sorted(variants.REGISTRY)
    found = {name: name for name in names}
    found["choice"] = {name: 1 / len(names) for name in names}
    return found


def index_batch(batch=B, dtype="float32"):
    """Images whose channels one-hot encode the example's index: any mix
    of them shows, pixel by pixel, which examples each value came from."""
    x = np.zeros((batch, H, W, max(batch, 1)), dtype)
    for i in range(batch):
        x[i, ..., i] = 1
    return x


def numpy(t):
    return np.asarray(keras.ops.convert_to_numpy(t))


def mix_layer(variant, x, y, *, seed=1, **extra):
    layer = keras_mixup.MixupLayer(
        variant=variant, alpha=1.0, num_classes=max(B, 1), seed=seed, **extra
    )
    out = layer({"images": x, "labels": y})
    return numpy(out["images"]), numpy(out["labels"])


def mix_data(variant, x, y, *, seed=1, **extra):
    (out,) = mix_data_batches(variant, [(x, y)], seed=seed, **extra)
    return out


def mix_data_batches(variant, batches, *, seed=1, **extra):
    """`[(images, labels)]`: each `(x, y)` of `batches` (one example shape,
    any batch sizes, 0 included) mixed in turn by one `Mixup` in one
    `tf.data` pipeline, which traces the mixer once for all of them (the
    batch size unknown to the trace, as after `Dataset.batch`)."""
    import tensorflow as tf

    mixer = keras_mixup.Mixup(
        variant=variant, alpha=1.0, num_classes=max(B, 1), seed=seed, **extra
    )
    spec = (
        tf.TensorSpec((None, *batches[0][0].shape[1:]), batches[0][0].dtype),
        tf.TensorSpec((None,), batches[0][1].dtype),
    )
    ds = tf.data.Dataset.from_generator(
        lambda: iter(batches), output_signature=spec
    )
    return [(x.numpy(), y.numpy()) for x, y in ds.map(mixer)]


def check_sources(images, labels):
    """Every value a convex combination of sources; label weights equal
    pixel fractions."""
    assert np.all(images >= -1e-6), images.min()
    np.testing.assert_allclose(images.sum(-1), 1.0, atol=1e-5)
    fractions = images.mean(axis=(1, 2))
    np.testing.assert_allclose(fractions, labels, atol=1e-5)


#: `mixed_by_layer`'s outputs, by variant.
_MIXED = {}


def mixed_by_layer(variant):
    """The index batch mixed by a fresh `MixupLayer` of seed 1: one call
    per variant, read by the checks of its values, its partners and its
    seed (a fresh layer of the same seed on the same inputs must give the
    same outputs: `contract_compiled_and_seeded` checks that)."""
    key = json.dumps(variant, sort_keys=True)
    if key not in _MIXED:
        _MIXED[key] = mix_layer(variant, index_batch(), np.arange(B))
    return _MIXED[key]


#: `mixed_by_data`'s outputs, by variant.
_DATA = {}


def mixed_by_data(variant):
    """The index batch, one example of it and none, mixed in turn by one
    `Mixup` of seed 1 in one `tf.data` pipeline (one trace of the mixer
    for the three): read by the checks of its values and of its sizes."""
    key = json.dumps(variant, sort_keys=True)
    if key not in _DATA:
        x, y = index_batch(), np.arange(B)
        batches = [(x, y), (x[:1], y[:1]), (x[:0], y[:0])]
        _DATA[key] = mix_data_batches(variant, batches)
    return _DATA[key]


def contract_values(variant):
    check_sources(*mixed_by_layer(variant))
    check_sources(*mixed_by_data(variant)[0])


def contract_partners(variant):
    # Each example draws from itself and its partners only: at most one
    # other example unless the variant tiles several (`labels` say which).
    images, labels = mixed_by_layer(variant)
    used = images.max(axis=(1, 2)) > 0
    np.testing.assert_array_equal(used, labels > 0)


def contract_self_and_sizes(variant):
    # One example is its own partner; an empty batch stays empty; a batch
    # that is not mixed (prob 0) comes back exactly.
    x, y = index_batch(), np.arange(B)
    by_layer = [mix_layer(variant, x[:n], y[:n]) for n in (1, 0)]
    by_data = mixed_by_data(variant)[1:]
    for (images, labels), (empty, empty_labels) in (by_layer, by_data):
        np.testing.assert_array_equal(images, x[:1])
        np.testing.assert_array_equal(labels, np.eye(B)[:1])
        assert empty.shape == (0, H, W, B), empty.shape
        assert empty_labels.shape == (0, B), empty_labels.shape
    for mix in (mix_layer, mix_data):
        images, _ = mix(variant, x, y, prob=0.0)
        np.testing.assert_array_equal(images, x)


def contract_dtypes(variant):
    keeps = variants.resolve({**_defaults(), "variant": variant}).keeps_values
    x = (index_batch() * 200).astype("uint8")
    images, _ = mix_data(variant, x, np.arange(B))
    if keeps:
        assert images.dtype == np.uint8, images.dtype
        assert set(np.unique(images)) <= {0, 200}
    else:
        assert images.dtype == np.float32, images.dtype
    for dtype in ("float16", "bfloat16"):
        x = keras.ops.cast(index_batch(), dtype)
        layer = keras_mixup.MixupLayer(
            variant=variant, alpha=1.0, num_classes=B, seed=1, dtype=dtype
        )
        out = layer({"images": x, "labels": np.arange(B)})
        assert keras.backend.standardize_dtype(out["images"].dtype) == dtype
        images = numpy(keras.ops.cast(out["images"], "float32"))
        assert np.all(np.isfinite(images))
        np.testing.assert_allclose(images.sum(-1), 1.0, atol=2e-2)


def _defaults():
    from keras_mixup import options

    return {name: o.default for name, o in options.OPTIONS.items()}


def contract_masks(variant):
    # Segmentation masks follow the pixels: the mask of example i is class
    # i everywhere, so the mixed mask must equal the mixed one-hot image.
    import tensorflow as tf

    x = index_batch()
    masks = np.broadcast_to(np.arange(B)[:, None, None, None], (B, H, W, 1))
    mixer = keras_mixup.Mixup(variant=variant, num_classes=B, seed=2)
    out = mixer(
        {
            "images": x,
            "labels": np.arange(B),
            "segmentation_masks": tf.constant(masks, "int32"),
        }
    )
    got = out["segmentation_masks"].numpy()
    if got.shape[-1] == 1:  # a paste keeps integer masks
        got = np.eye(B)[got[..., 0]]
    np.testing.assert_allclose(got, out["images"].numpy(), atol=1e-5)


def contract_boxes(variant):
    # A box around each whole image, labelled with the example's index: a
    # mixed example keeps only boxes of the examples its pixels come from.
    import tensorflow as tf

    resolved = variants.resolve({**_defaults(), "variant": variant})
    boxes = np.tile([[0.0, 0.0, W, H]], (B, 1, 1)).astype("float32")
    element = {
        "images": index_batch(),
        "labels": np.arange(B),
        "bounding_boxes": {"boxes": boxes, "labels": np.arange(B)[:, None]},
    }
    extra = {"bounding_box_format": "xyxy"} if resolved.needs_box_format else {}
    mixer = keras_mixup.Mixup(variant=variant, num_classes=B, seed=3, **extra)
    if "bounding_boxes" not in resolved.takes:
        try:
            mixer(element)
        except ValueError as error:
            assert "bounding_boxes" in str(error) and "variant" in str(error)
            return
        raise AssertionError("boxes accepted by a variant with no box rule")
    out = mixer(element)
    labels = out["labels"].numpy()
    got = out["bounding_boxes"]
    for i in range(B):
        for label, weight in zip(
            got["labels"][i].numpy(), got["weights"][i].numpy(), strict=True
        ):
            if label >= 0:
                assert labels[i, label] > 0 and 0 < weight <= 1, (i, label)
    del tf


def contract_compiled_and_seeded(variant):
    x, y = index_batch(), np.arange(B)
    again = mix_layer(variant, x, y)
    for a, b in zip(mixed_by_layer(variant), again, strict=True):
        np.testing.assert_array_equal(a, b)
    # Compiled (XLA on TensorFlow, `jax.jit` on JAX): a model that reads
    # each source's pixel fraction off the mixed images (the channel means
    # of the index batch, through an identity `Dense`) has a squared error
    # of 0 against the mixed labels, in the compiled training step, only
    # if the label weights are the pixel fractions there too.
    model = keras.Sequential(
        [
            keras.Input((H, W, B)),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(B, kernel_initializer="identity"),
        ]
    )
    epochs = 1
    if isinstance(variant, dict):  # the choice
        variant = {name: 1 / 3 for name in COMPILED_CHOICE}
        epochs = CHOICE_EPOCHS
    wrapped = keras_mixup.MixupModel(
        model, variant=variant, alpha=1.0, num_classes=B, seed=1
    )
    jit = keras.backend.backend() != "torch"
    wrapped.compile("sgd", "mean_squared_error", jit_compile=jit)
    history = wrapped.fit(x, y, batch_size=B, epochs=epochs, verbose=0)
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses)) and max(losses) < 1e-10, losses
    assert all(np.all(np.isfinite(numpy(w))) for w in model.weights)


def contract_saved(variant, folder):
    model = keras.Sequential(
        [
            keras.Input((H, W, B)),
            keras_mixup.MixupLayer(
                variant=variant, num_classes=B, seed=4, name="mix"
            ),
        ]
    )
    path = pathlib.Path(folder) / f"contract_{abs(hash(str(variant)))}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert (
        loaded.get_layer("mix").get_config()
        == model.get_layer("mix").get_config()
    )
    assert loaded.get_layer("mix").variant == variant


CHECKS = {
    "values": contract_values,
    "partners": contract_partners,
    "self_and_sizes": contract_self_and_sizes,
    "dtypes": contract_dtypes,
    "masks": contract_masks,
    "boxes": contract_boxes,
    "compiled_and_seeded": contract_compiled_and_seeded,
}


def _checked(run, *args):
    """`None`, or the traceback of the assertion `run(*args)` failed."""
    try:
        run(*args)
    except Exception:  # recorded for the parent test to show
        return traceback.format_exc()[-1500:]
    return None


def main(folder):
    """`{variant: {check: error or None}}`, and under `"_seconds"` what
    each variant's checks took (the cost of a variant, for the suite's
    time budget)."""
    results, seconds = {}, {}
    for name, variant in specs().items():
        start = time.perf_counter()
        found = {check: _checked(run, variant) for check, run in CHECKS.items()}
        found["saved"] = _checked(contract_saved, variant, folder)
        results[name] = found
        seconds[name] = round(time.perf_counter() - start, 2)
    results["_seconds"] = seconds
    return results


def contract(folder):
    """`{variant: {check: error or None}}` (see `main`), as the scenario
    chain of conftest.py calls it."""
    return main(folder)


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[2])))
