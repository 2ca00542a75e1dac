"""What a new user meets: no silent wrong labels, keras's element format,
clear errors for what is refused."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_mixup
from keras_mixup import pairing

X = np.random.default_rng(0).uniform(size=(6, 4)).astype("float32")
IDS = np.array([4, 1, 0, 3, 2, 1])


def _model():
    backbone = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(5, activation="softmax")]
    )
    return keras_mixup.MixupModel(backbone, num_classes=5, seed=0)


def _mix_with(y, **options):
    labelled = tf.data.Dataset.from_tensor_slices((X, y)).batch(3)
    ds = keras_mixup.mix_with(labelled, labelled, seed=0, **options)
    return next(iter(ds))


# Every way to mix labels, each given labels and `num_classes=5`.
LABEL_PATHS = {
    "Mixup": lambda y: keras_mixup.Mixup(num_classes=5, seed=0)(X, y),
    "MixupModel": lambda y: _model().mix(X, y),
    "mix_with": lambda y: _mix_with(y, num_classes=5, mix_labels=True),
}


@pytest.mark.parametrize("path", LABEL_PATHS)
@pytest.mark.parametrize(
    "labels, match",
    [
        (
            IDS.astype("float32"),
            r"`num_classes=5` one-hot encodes class ids, but the labels are "
            r"floats of shape \((6|3|None),\).*cast class ids to an integer "
            r"dtype.*one-hot labels",
        ),
        (
            IDS.astype("float32")[:, None],
            r"floats of shape \((6|3|None), 1\).*cast class ids",
        ),
        (
            np.eye(10, dtype="float32")[IDS],
            r"The labels have 10 values per example.*`num_classes=5`",
        ),
    ],
    ids=["float-ids", "float-ids-column", "one-hot-10-for-5"],
)
def test_labels_that_do_not_match_num_classes_are_refused(path, labels, match):
    with pytest.raises(ValueError, match=match):
        LABEL_PATHS[path](labels)


def test_matching_labels_still_mix():
    for path in LABEL_PATHS.values():
        for labels in (IDS, np.eye(5, dtype="float32")[IDS]):
            mixed = path(labels)[1]
            assert mixed.shape[-1] == 5
            np.testing.assert_allclose(np.sum(mixed, axis=-1), 1.0, rtol=1e-6)


def test_an_out_of_range_class_id_is_named():
    mixup = keras_mixup.Mixup(num_classes=5)
    ids = np.array([0, 1, 7, 2, 9, 3])
    # Eagerly: the ValueError of every backend.
    with pytest.raises(
        ValueError,
        match=r"^Labels must be in \[0, 5\) \(num_classes=5\); received "
        r"the class id 7\.$",
    ):
        mixup(X, ids)
    # In tf.data, a graph: the assertion names it when the batch runs.
    ds = tf.data.Dataset.from_tensors((X, ids)).map(mixup)
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match=r"(?s)Labels must be in \[0, 5\).*received the class id\W*7",
    ):
        next(iter(ds))


# --- keras's element format --------------------------------------------------


@pytest.mark.parametrize("labels", [IDS, np.eye(5, dtype="float32")[IDS]])
def test_mixup_maps_keras_dict_elements(labels):
    ds = tf.data.Dataset.from_tensor_slices({"images": X, "labels": labels})
    mixup = keras_mixup.Mixup(alpha=1.0, num_classes=5, seed=3)
    element = next(iter(ds.batch(6).map(mixup)))
    assert set(element) == {"images", "labels"}
    tuple_x, tuple_y = keras_mixup.Mixup(alpha=1.0, num_classes=5, seed=3)(
        X, labels
    )
    np.testing.assert_allclose(element["images"], tuple_x, rtol=1e-6)
    np.testing.assert_allclose(element["labels"], tuple_y, rtol=1e-6)
    assert not np.allclose(element["images"], X)


def test_mix_with_keeps_the_dict_form():
    labelled = tf.data.Dataset.from_tensor_slices(
        {"images": X, "labels": IDS}
    ).batch(3)
    unlabelled = tf.data.Dataset.from_tensor_slices({"images": X}).batch(2)
    element = next(iter(keras_mixup.mix_with(labelled, unlabelled, seed=1)))
    assert set(element) == {"images", "labels"}
    np.testing.assert_array_equal(element["labels"], IDS[:3])
    assert element["images"].shape == (3, 4)


@pytest.mark.parametrize(
    "element, match",
    [
        (
            X,
            r"maps batches of the forms `\(x, y\)`.*received a single "
            r"element float32\[6, 4\]",
        ),
        ({"x": X, "y": IDS}, r"must hold exactly one of \('images', 'inputs'"),
        (
            {"images": X, "labels": IDS, "bounding_boxes": IDS},
            r"`bounding_boxes` must be a dict with keys 'boxes'",
        ),
        ({"images": X}, r"received keys \['images'\]"),
    ],
    ids=["lone-tensor", "other-keys", "boxes", "no-labels"],
)
def test_other_single_elements_are_refused_with_the_accepted_forms(
    element, match
):
    with pytest.raises(ValueError, match=match):
        keras_mixup.Mixup(num_classes=5)(element)


# --- MixupModel with a sparse loss ------------------------------------------


@pytest.mark.parametrize(
    "loss",
    [
        "sparse_categorical_crossentropy",
        keras.losses.SparseCategoricalCrossentropy(),
        keras.losses.sparse_categorical_crossentropy,
        {"dense": "sparse_categorical_crossentropy"},
    ],
    ids=["name", "instance", "function", "dict"],
)
def test_mixup_model_refuses_a_sparse_loss_at_compile(loss):
    with pytest.raises(ValueError, match="compile it with a categorical loss"):
        _model().compile("adam", loss)
    _model().compile("adam", "categorical_crossentropy")


# --- an empty batch ----------------------------------------------------------


@pytest.mark.parametrize("name", pairing.NAMES)
def test_every_pairing_passes_an_empty_batch_through(name):
    mixup = keras_mixup.Mixup(num_classes=5, pairing=name, seed=0)
    empty_x, empty_y = np.zeros((0, 4), "float32"), np.zeros((0,), "int64")
    if name == "label_kernel":  # continuous labels only
        empty_y = np.zeros((0, 5), "float32")
    x, y = mixup(empty_x, empty_y)
    assert x.shape == (0, 4) and y.shape == (0, 5)
    ds = tf.data.Dataset.from_tensor_slices((empty_x, empty_y)).batch(4)
    dynamic = tf.data.Dataset.from_tensors((empty_x, empty_y))
    dynamic = dynamic.map(lambda x, y: (tf.reshape(x, [-1, 4]), y))
    for dataset in (ds.map(mixup), dynamic.map(mixup)):
        for x, y in dataset:
            assert x.shape == (0, 4) and y.shape == (0, 5)


# --- repr ---------------------------------------------------------------------


def _backbone():
    return keras.Sequential(
        [
            keras.Input((4,)),
            keras_mixup.MixupLayer(name="mix"),
            keras.layers.Dense(3),
        ],
        name="backbone",
    )


def test_every_entry_point_prints_its_options():
    layer = keras_mixup.MixupLayer(alpha=0.4, seed=1, name="mixer")
    shown = repr(layer)
    assert shown.startswith("MixupLayer(name='mixer', alpha=0.4, ")
    assert "seed=1" in shown and "prob=1.0" in shown
    assert str(layer) == shown
    model = keras_mixup.MixupModel(
        _backbone(),
        num_classes=3,
        mix_at="latent",
        clean_loss_weight=0.5,
        name="wrapper",
    )
    shown = repr(model)
    assert shown.startswith(
        "MixupModel(name='wrapper', model='backbone', mix_at='latent', "
        "alpha=0.2, num_classes=3, "
    )
    assert "clean_loss_weight=0.5" in shown
    generator = keras.Sequential(
        [keras.Input((2,)), keras.layers.Dense(2)], name="g"
    )
    discriminator = keras.Sequential(
        [keras.Input((2,)), keras.layers.Dense(1)], name="d"
    )
    gan = keras_mixup.MixupGAN(generator, discriminator, 2, seed=3, name="gan")
    assert repr(gan) == (
        "MixupGAN(name='gan', generator='g', discriminator='d', "
        "latent_dim=2, alpha=0.2, seed=3, prob=1.0)"
    )
    assert repr(
        keras_mixup.MixupGAN(generator, discriminator, 2, alpha=None)
    ).endswith("latent_dim=2, alpha=None, seed=None)")
    assert repr(keras_mixup.MixupSchedule(layer, 2, alpha={3: 0.4})) == (
        "MixupSchedule(target=['mixer'], start_epoch=2, stop_epoch=None, "
        "alpha={3: 0.4})"
    )
    assert repr(keras_mixup.metrics.ExpectedCalibrationError(10)) == (
        "ExpectedCalibrationError(num_bins=10, from_logits=False, "
        "name='expected_calibration_error')"
    )
    assert repr(keras_mixup.Mixup(alpha=0.3)).startswith("Mixup(alpha=0.3, ")
    assert repr(keras_mixup.CutMix(alpha=1.0)).startswith("CutMix(alpha=1.0")


# --- no silent result in a target ---------------------------------------------

IMAGES = np.zeros((2, 8, 8, 1), "float32")
HOT = np.eye(3, dtype="float32")[[0, 2]]


def _masks(bad):
    masks = np.zeros((2, 8, 8, 1), "int32")
    masks[1, 2, 3, 0] = bad
    return masks


@pytest.mark.parametrize("bad", [3, -1, 255])
@pytest.mark.parametrize("mixer", ["Mixup", "CutMix"])
def test_mask_ids_out_of_range_are_refused(mixer, bad):
    make = getattr(keras_mixup, mixer)
    mix = make(alpha=1.0, num_classes=3, seed=0)
    element = {
        "images": IMAGES,
        "labels": HOT,
        "segmentation_masks": _masks(bad),
    }
    with pytest.raises(
        ValueError,
        match=rf"^`segmentation_masks` must be in \[0, 3\) \(num_classes=3\); "
        rf"received the class id {bad}\.$",
    ):
        mix(element)
    ds = tf.data.Dataset.from_tensors(element).map(mix)
    with pytest.raises(
        tf.errors.InvalidArgumentError, match="`segmentation_masks` must be"
    ):
        next(iter(ds))
    # In range, the masks mix (one-hot rows that sum to 1 for the blend).
    element["segmentation_masks"] = _masks(2)
    mixed = mix(element)["segmentation_masks"].numpy()
    if mixer == "Mixup":
        np.testing.assert_allclose(mixed.sum(-1), 1.0, rtol=1e-6)


def _boxes(boxes, labels=None):
    boxes = np.array(boxes, "float32")
    if labels is None:
        labels = np.zeros(boxes.shape[:2], "int32")
    return {
        "images": np.zeros((2, 16, 16, 3), "float32"),
        "labels": np.eye(2, dtype="float32"),
        "bounding_boxes": {"boxes": boxes, "labels": np.array(labels)},
    }


PADDED = [-1, -1, -1, -1]
BAD_BOXES = {
    "xyxy-reversed": (
        "xyxy",
        [[[5, 1, 1, 5], PADDED], [[2, 2, 8, 9], [0, 0, 3, 3]]],
        r"must have x_max >= x_min and y_max >= y_min, in "
        r"`bounding_box_format='xyxy'`; received a box with the value 1\.",
    ),
    "yxyx-reversed": (
        "yxyx",
        [[[1, 1, 5, 5], PADDED], [[2, 9, 8, 2], [0, 0, 3, 3]]],
        r"must have x_max >= x_min and y_max >= y_min, in "
        r"`bounding_box_format='yxyx'`; received a box with the value 2\.",
    ),
    "xywh-negative-width": (
        "xywh",
        [[[1, 1, -5, 5], PADDED], [[2, 2, 8, 9], [0, 0, 3, 3]]],
        r"must have a width and a height >= 0, in `bounding_box_format="
        r"'xywh'`; received a box with the value -5\.",
    ),
    "relative-outside": (
        "rel_xyxy",
        [[[0.1, 0.1, 0.5, 0.5], PADDED], [[0.2, 0.2, 0.8, 1.9], PADDED]],
        r"must lie in \[0, 1\] \(fractions of the image size\), in "
        r"`bounding_box_format='rel_xyxy'`; received a box with the value 0\.2",
    ),
    "absolute-for-relative": (
        "rel_center_xywh",
        [[[8, 8, 4, 4], PADDED], [[4, 4, 2, 2], PADDED]],
        r"must lie in \[0, 1\].*received a box with the value 6\.",
    ),
    "nan": (
        None,
        [[[1, 1, np.nan, 5], PADDED], [[2, 2, 8, 9], [0, 0, 3, 3]]],
        r"must hold finite numbers.*received a box with the value nan\.",
    ),
}


@pytest.mark.parametrize("case", BAD_BOXES)
def test_boxes_that_contradict_their_format_are_refused(case):
    box_format, boxes, match = BAD_BOXES[case]
    labels = [[0, -1], [1, 1]]
    if case in ("relative-outside", "absolute-for-relative"):
        labels = [[0, -1], [1, -1]]
    element = _boxes(boxes, labels)
    mixup = keras_mixup.Mixup(alpha=1.0, seed=0, bounding_box_format=box_format)
    with pytest.raises(
        ValueError, match=r"^`bounding_boxes\['boxes'\]` " + match
    ):
        mixup(element)
    ds = tf.data.Dataset.from_tensors(element).map(mixup)
    with pytest.raises(tf.errors.InvalidArgumentError, match="bounding_box"):
        next(iter(ds))


def test_padding_boxes_are_not_checked_and_valid_boxes_mix():
    element = _boxes(
        [[[1, 1, 5, 5], PADDED], [[2, 2, 8, 9], [0, 0, 3, 3]]],
        [[0, -1], [1, 1]],
    )
    mixed = keras_mixup.Mixup(alpha=1.0, seed=0, bounding_box_format="xyxy")(
        element
    )
    assert mixed["bounding_boxes"]["boxes"].shape == (2, 4, 4)


@pytest.mark.parametrize(
    "boxes, labels, match",
    [
        (
            np.ones((2, 1, 5), "float32"),
            np.zeros((2, 1), "int32"),
            r"^`bounding_boxes\['boxes'\]` must be of shape \[B, N, 4\] "
            r"\(four coordinates per box.*received shape \(2, 1, 5\)\.$",
        ),
        (
            np.ones((2, 2, 4), "float32"),
            np.zeros((2, 3), "int32"),
            r"^`bounding_boxes\['labels'\]` must be of shape \[B, N\], one "
            r"class id per box.*\(shape \(2, 2, 4\)\); received shape "
            r"\(2, 3\)\.$",
        ),
    ],
    ids=["fifth-coordinate", "labels-shape"],
)
def test_box_shapes_are_named(boxes, labels, match):
    element = _boxes(boxes, labels)
    with pytest.raises(ValueError, match=match):
        keras_mixup.Mixup(alpha=1.0, seed=0)(element)


# --- the calibration metric -------------------------------------------------

PROBS = [[0.9, 0.1], [0.35, 0.65], [0.75, 0.25]]
METRIC_MISTAKES = {
    "probabilities-above-one": (
        ([0, 1, 1], [[2.0, -1.0], *PROBS[1:]], None),
        r"`y_pred` must hold probabilities in \[0, 1\].*\(1 examples\)",
    ),
    "nan-prediction": (
        ([0, 1, 1], [[np.nan, 0.1], *PROBS[1:]], None),
        r"`y_pred` must hold probabilities",
    ),
    "class-id-out-of-range": (
        ([0, 5, 1], PROBS, None),
        r"`y_true` must hold class ids in \[0, K\).*\(1 examples\)",
    ),
    "class-id-not-whole": (([0, 1.5, 1], PROBS, None), r"`y_true` must hold"),
    "binary-label-above-one": (([0, 2], [0.2, 0.7], None), r"`y_true` must"),
    "negative-weight": (
        ([0, 1, 1], PROBS, [1.0, -1.0, 1.0]),
        r"`sample_weight` must hold finite weights >= 0 \(1 examples\)",
    ),
}


@pytest.mark.parametrize("case", METRIC_MISTAKES)
def test_the_metric_refuses_inputs_no_calibration_error_can_take(case):
    (y_true, y_pred, weights), match = METRIC_MISTAKES[case]
    metric = keras_mixup.metrics.ExpectedCalibrationError(num_bins=10)
    metric.update_state(y_true, y_pred, sample_weight=weights)
    with pytest.raises(
        ValueError,
        match=r"^ExpectedCalibrationError left out examples.*" + match,
    ):
        metric.result()
    # Inside a traced step the result is NaN, never a plausible value.
    assert np.isnan(float(tf.function(metric.result)()))
    metric.reset_state()
    metric.update_state([0, 1, 1], PROBS)
    assert abs(float(metric.result()) - 0.4) < 1e-6


def test_evaluate_raises_for_logits_given_as_probabilities():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.compile(
        "adam",
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras_mixup.metrics.ExpectedCalibrationError()],
    )
    x = np.random.default_rng(0).normal(size=(16, 4)).astype("float32") * 10
    with pytest.raises(ValueError, match=r"logits need `from_logits=True`"):
        model.evaluate(x, np.arange(16) % 3, verbose=0)


# --- clear messages for the obscure mistakes ---------------------------------

FORMS_MESSAGE = (
    r"Mixup maps batches of the forms `\(x, y\)`, `\(x, y, sample_weight\)`"
)


def test_an_element_of_another_arity_is_named():
    four = tf.data.Dataset.from_tensor_slices((X, IDS, IDS, IDS)).batch(3)
    with pytest.raises(
        ValueError, match=FORMS_MESSAGE + r".*received an element of 4 parts"
    ):
        next(iter(four.map(keras_mixup.Mixup(num_classes=5))))
    with pytest.raises(ValueError, match=r"received an element of 4 parts"):
        keras_mixup.Mixup(num_classes=5)(X, IDS, IDS, IDS)


@pytest.mark.parametrize("cls", ["Mixup", "CutMix"])
def test_the_class_itself_mapped_is_named(cls):
    ds = tf.data.Dataset.from_tensor_slices((X, IDS)).batch(3)
    with pytest.raises(
        ValueError,
        match=rf"^{cls} was called with a batch's tensors in place of its "
        rf"options, as `Dataset.map\({cls}\)` does: {cls} is a class; build "
        rf"it, then map the object: `ds.batch\(...\).map\(keras_mixup.{cls}",
    ):
        ds.map(getattr(keras_mixup, cls))


def test_sample_lambda_needs_a_seed():
    with pytest.raises(
        ValueError,
        match=r"^`sample_lambda` draws statelessly, so `seed` is "
        r"required.*received seed=None\.$",
    ):
        keras_mixup.sample_lambda([3], 0.2, seed=None)


def test_a_dataset_mapped_before_batch_is_named():
    slices = tf.data.Dataset.from_tensor_slices((X, IDS))
    with pytest.raises(
        ValueError,
        match=r"received a scalar \(rank 0\)\. A dataset mapped before "
        r"`batch` gives one example at a time: batch first",
    ):
        slices.map(keras_mixup.Mixup(num_classes=5))
    one_hot = tf.data.Dataset.from_tensor_slices(
        (X, np.eye(5, dtype="float32")[IDS])
    )
    with pytest.raises(
        ValueError,
        match=r"received batch sizes \[4, 5\]\. \(A dataset mapped before "
        r"`batch` gives one example at a time",
    ):
        one_hot.map(keras_mixup.Mixup())
