"""Segmentation masks and detection boxes through mixup and CutMix, and
CutMix in the model (MixupLayer's dict form, MixupModel, MixupSchedule).

What a user relies on: masks stay aligned with the pixels (pasted in the
same box, integer masks kept integer by CutMix, one-hot and blended by
mixup); boxes follow the pixels (a kept partner box covers only partner
pixels, an own box is the bounding box of what stays visible, a box less
visible than `min_box_visibility` is dropped), in every box format; mixup
concatenates boxes with weights lam and 1 - lam.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import Recorder, decode_cuts, index_images

import keras_mixup
from keras_mixup import boxes, variants


def _element(batch=8, size=16, masks_dtype="int32"):
    images = index_images(batch, size, size)
    return {
        "images": images,
        "labels": np.arange(batch),
        "segmentation_masks": images[..., :1].astype(masks_dtype),
    }


# --- segmentation masks -----------------------------------------------------


def test_cutmix_pastes_integer_masks_in_the_image_box():
    out = keras_mixup.CutMix(num_classes=8, seed=1)(_element())
    masks = out["segmentation_masks"]
    assert masks.dtype == tf.int32
    np.testing.assert_array_equal(masks.numpy(), out["images"].numpy())
    assert np.any(decode_cuts(out["images"])[0] < 1)


@pytest.mark.parametrize("switch_prob", [0.0, 0.5])
def test_mixup_blends_one_hot_masks_with_the_label_weight(switch_prob):
    mixer = keras_mixup.Mixup(
        alpha=1.0,
        num_classes=8,
        cutmix_alpha=1.0,
        switch_prob=switch_prob,
        seed=2,  # unseeded, all 8 rows are cut in 1 run of 256 (0.5**8)
    )
    out = mixer(_element())
    masks, images = out["segmentation_masks"].numpy(), out["images"].numpy()
    assert masks.shape == (8, 16, 16, 8) and masks.dtype == np.float32
    integral = np.all(images == np.round(images), axis=(1, 2, 3))
    for b in range(8):
        if integral[b]:  # cut (or untouched): each pixel its own class
            expected = np.eye(8)[images[b, ..., 0].astype(int)]
        else:  # blended: each pixel carries the label row
            expected = np.broadcast_to(out["labels"][b], (16, 16, 8))
        np.testing.assert_allclose(masks[b], expected, atol=1e-6)
    if switch_prob == 0:  # only rows paired with themselves are integral
        assert all(np.all(images[b] == b) for b in np.flatnonzero(integral))
    else:
        assert 0 < integral.sum() < 8


def test_integer_masks_need_num_classes_to_be_blended():
    element = _element()
    element["labels"] = np.eye(8, dtype="float32")
    with pytest.raises(ValueError, match="one-hot encoded with `num_classes`"):
        keras_mixup.Mixup(alpha=1.0)(element)


def test_channels_first_masks_follow_the_images():
    element = _element()
    for key in ("images", "segmentation_masks"):
        element[key] = np.moveaxis(element[key], -1, 1)
    out = keras_mixup.CutMix(
        num_classes=8, data_format="channels_first", seed=3
    )(element)
    np.testing.assert_array_equal(out["segmentation_masks"], out["images"])
    decode_cuts(out["images"], axes=(2, 3))


# --- detection boxes --------------------------------------------------------


@pytest.mark.parametrize("box_format", boxes.FORMATS)
def test_every_box_format_converts_both_ways(box_format):
    xyxy = tf.constant([[2.0, 3.0, 10.0, 7.0], [0.0, 0.0, 16.0, 12.0]])
    there = boxes.from_xyxy(xyxy, box_format, 12.0, 16.0)
    back = boxes.to_xyxy(there, box_format, 12.0, 16.0)
    np.testing.assert_allclose(back, xyxy, atol=1e-5)
    if box_format.startswith("rel_"):
        assert np.all(there.numpy() <= 1.0)


BOXES = np.array(
    [
        [[0, 0, 16, 16], [2, 2, 6, 6], [4, 10, 12, 14], [-1, -1, -1, -1]],
        [[0, 4, 16, 12], [0, 10, 4, 14], [-1, -1, -1, -1], [-1] * 4],
    ],
    "float32",
)
BOX_LABELS = np.array([[1, 2, 3, -1], [4, 5, -1, -1]])


def test_cutmix_box_geometry_on_a_hand_built_draw():
    # Example 0 gets example 1's pixels in rows 0-7 (all columns).
    draw = variants.Draw(
        lam=tf.constant([0.5, 0.6]),  # row 1: its own partner
        partner_index=tf.constant([1, 1]),
        params={
            "lows": tf.constant([[0, 0], [0, 0]]),
            "highs": tf.constant([[8, 16], [0, 0]]),
        },
    )
    options = {"bounding_box_format": "xyxy", "min_box_visibility": 0.3}
    cut = variants.REGISTRY["cutmix"](options)
    out = cut.apply_boxes(
        draw, {"boxes": BOXES, "labels": BOX_LABELS}, (16, 16)
    )
    np.testing.assert_array_equal(
        out["boxes"][0],
        [
            [0, 8, 16, 16],  # the top half covered: trimmed to the bottom
            [-1, -1, -1, -1],  # covered: dropped
            [4, 10, 12, 14],  # below the paste: as it was
            [-1, -1, -1, -1],
            [0, 4, 16, 8],  # partner box clipped to the pasted rows
            [-1, -1, -1, -1],  # partner box outside the paste
            [-1, -1, -1, -1],
            [-1, -1, -1, -1],
        ],
    )
    np.testing.assert_array_equal(
        out["labels"][0], [1, -1, 3, -1, 4, -1, -1, -1]
    )
    np.testing.assert_array_equal(out["weights"][0], [1, 0, 1, 0, 1, 0, 0, 0])
    # Example 1 is its own partner: its boxes, weight 1, no partner boxes.
    np.testing.assert_array_equal(out["boxes"][1, :4], BOXES[1])
    np.testing.assert_array_equal(out["weights"][1], [1, 1, 0, 0, 0, 0, 0, 0])


def _random_boxes(rng, batch, count, size):
    lows = rng.integers(0, size - 1, (batch, count, 2))
    highs = rng.integers(lows + 1, size + 1)
    return np.concatenate([lows, highs], axis=-1).astype("float32")


def _visible(image, own, box):
    x0, y0, x1, y1 = box.astype(int)
    return image[y0:y1, x0:x1, 0] == own


@pytest.mark.parametrize("box_format", ["xyxy", "rel_center_yxhw"])
def test_cutmix_boxes_follow_the_pixels(box_format):
    rng = np.random.default_rng(0)
    element = _element(batch=16)
    xyxy = _random_boxes(rng, 16, 5, 16)
    given = boxes.from_xyxy(xyxy, box_format, 16.0, 16.0).numpy()
    element["bounding_boxes"] = {
        "boxes": given,
        "labels": np.ones((16, 5), "int32"),
    }
    out = keras_mixup.CutMix(
        num_classes=16, seed=4, bounding_box_format=box_format
    )(element)
    images = out["images"].numpy()
    _, partner, _ = decode_cuts(images)
    got = boxes.to_xyxy(out["bounding_boxes"]["boxes"], box_format, 16.0, 16.0)
    got, kept = np.round(got.numpy()), out["bounding_boxes"]["labels"] >= 0
    for b in range(16):
        for n in range(5):
            seen = _visible(images[b], b, xyxy[b, n])
            assert kept[b, n] == (seen.mean() >= 0.1), (b, n)
            if kept[b, n]:  # the tight box of the visible pixels
                rows, cols = np.nonzero(seen)
                x0, y0 = xyxy[b, n, :2].astype(int)
                tight = [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]
                np.testing.assert_array_equal(
                    got[b, n], np.add(tight, [x0, y0] * 2)
                )
            if kept[b, 5 + n]:  # a partner box shows only partner pixels
                assert partner[b] != b
                assert _visible(images[b], partner[b], got[b, 5 + n]).all()


def test_mixup_concatenates_boxes_weighed_by_lam():
    element = _element(batch=2)
    del element["segmentation_masks"]
    element["bounding_boxes"] = {"boxes": BOXES, "labels": BOX_LABELS}
    out = keras_mixup.Mixup(alpha=1.0, num_classes=2, seed=4)(element)  # swaps
    lam = out["labels"].numpy()[[0, 1], [0, 1]]
    result = out["bounding_boxes"]
    np.testing.assert_array_equal(result["boxes"][0, :4], BOXES[0])
    np.testing.assert_array_equal(result["boxes"][0, 4:6], BOXES[1, :2])
    np.testing.assert_array_equal(result["boxes"][1, 4:7], BOXES[0, :3])
    np.testing.assert_allclose(
        result["weights"][0], [lam[0]] * 3 + [0] + [1 - lam[0]] * 2 + [0, 0]
    )
    np.testing.assert_array_equal(
        result["labels"][1], [4, 5, -1, -1, 1, 2, 3, -1]
    )


def test_cutmix_boxes_need_their_format():
    element = _element(batch=2)
    element["bounding_boxes"] = {"boxes": BOXES, "labels": BOX_LABELS}
    with pytest.raises(ValueError, match="pass `bounding_box_format`"):
        keras_mixup.CutMix(num_classes=2)(element)


def test_boxes_and_masks_through_tf_data():
    element = _element(batch=16)
    element["bounding_boxes"] = {
        "boxes": _random_boxes(np.random.default_rng(1), 16, 3, 16),
        "labels": np.ones((16, 3), "int32"),
    }
    ds = tf.data.Dataset.from_tensor_slices(element).batch(5)
    ds = ds.map(
        keras_mixup.Mixup(
            alpha=1.0,
            num_classes=16,
            cutmix_alpha=1.0,
            bounding_box_format="xyxy",
            seed=2,
        )
    )
    shapes = [b["bounding_boxes"]["boxes"].shape for b in ds]
    assert shapes == [(5, 6, 4)] * 3 + [(1, 6, 4)]


# --- in the model -----------------------------------------------------------


def test_mixup_model_cutmixes_its_input():
    seen = []
    backbone = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            Recorder(seen, training_only=True),
            keras.layers.Flatten(),
            keras.layers.Dense(8, activation="softmax"),
        ]
    )
    model = keras_mixup.MixupModel(
        backbone, num_classes=8, cutmix_alpha=1.0, switch_prob=1.0, seed=1
    )
    model.compile("sgd", "categorical_crossentropy", jit_compile=False)
    x = index_images(8, 8, 8)
    model.fit(x, np.arange(8), batch_size=8, epochs=1, shuffle=False, verbose=0)
    kept, _, _ = decode_cuts(seen[-1])
    assert np.any(kept < 1)
    config = model.get_config()
    assert config["cutmix_alpha"] == 1.0 and config["switch_prob"] == 1.0


def test_mixup_layer_dict_form_switches_and_round_trips():
    layer = keras_mixup.MixupLayer(
        alpha=1.0, num_classes=8, cutmix_alpha=1.0, cutmix_minmax=(0.3, 0.6)
    )
    out = layer({"images": index_images(8), "labels": np.arange(8)})
    assert out["labels"].shape == (8, 8)
    config = layer.get_config()
    assert config["cutmix_minmax"] == [0.3, 0.6]
    again = keras_mixup.MixupLayer.from_config(config)
    assert again.cutmix_minmax == (0.3, 0.6)


def test_mixup_schedule_switches_cutmix_off_and_sets_its_alpha():
    cut = keras_mixup.CutMix(num_classes=256, correct_lam=False, seed=1)
    schedule = keras_mixup.MixupSchedule(cut, start_epoch=1, alpha={2: 0.05})
    x = index_images(256, 4, 4)

    def spread():  # how far the drawn lam (the label weight) is from 0.5
        return np.abs(np.diag(cut(x, np.arange(256))[1]) - 0.5).mean()

    schedule.on_epoch_begin(0)
    np.testing.assert_array_equal(cut(x, np.arange(256))[0], x)
    schedule.on_epoch_begin(1)
    uniform = spread()
    schedule.on_epoch_begin(2)
    assert cut.alpha == 0.05
    assert uniform < 0.3 and spread() > 0.4, (uniform, spread())


def test_keras_files_keep_the_cutmix_options(tmp_path):
    backbone = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras_mixup.MixupLayer(  # the model's CutMix options, its own
                cutmix_alpha=1.0,  # box options (a MixupModel takes none)
                cutmix_minmax=(0.2, 0.5),
                bounding_box_format="rel_xyxy",
                min_box_visibility=0.2,
                name="mix",
            ),
            keras.layers.Flatten(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    model = keras_mixup.MixupModel(
        backbone,
        num_classes=3,
        cutmix_alpha=1.0,
        cutmix_minmax=(0.2, 0.5),
        switch_prob=0.3,
        correct_lam=False,
        data_format="channels_last",
    )
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    options = {k: v for k, v in model.get_config().items() if k != "model"}
    assert {k: loaded.get_config()[k] for k in options} == options
    assert (loaded.switch_prob, loaded.correct_lam) == (0.3, False)
    layer = loaded.model.get_layer("mix")
    assert (layer.cutmix_alpha, layer.cutmix_minmax) == (1.0, (0.2, 0.5))
    assert layer.bounding_box_format == "rel_xyxy"
    assert layer.min_box_visibility == 0.2


def test_mixup_layer_dict_form_pastes_masks_with_the_pixels():
    index = np.arange(6, dtype="float32")[:, None, None, None]
    images = np.broadcast_to(index, (6, 8, 8, 3)).copy()
    masks = np.broadcast_to(index.astype("int64"), (6, 8, 8, 1)).copy()
    labels = np.eye(6, dtype="float32")
    layer = keras_mixup.MixupLayer(
        alpha=1.0, cutmix_alpha=1.0, switch_prob=1.0, seed=3
    )
    out = layer(
        {"images": images, "labels": labels, "segmentation_masks": masks}
    )
    assert out["segmentation_masks"].dtype == np.int64
    pasted = out["images"].numpy()[..., :1]
    np.testing.assert_array_equal(out["segmentation_masks"], pasted)
    assert (pasted != index).any()  # some pixels come from a partner
