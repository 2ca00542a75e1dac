"""The variant protocol as a user meets it: one `variant=` for every entry
point, choice frequencies, the legacy switch, copies that share the mixing
and copies that share the mixing state (padded sequences:
sequence_masks_test.py)."""

import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

import keras_mixup
from keras_mixup import variants


def _index_images(batch, size=8):
    x = np.zeros((batch, size, size, batch), "float32")
    for i in range(batch):
        x[i, ..., i] = 1
    return x


@pytest.mark.parametrize("mode", ["elem", "batch"])
def test_a_choice_picks_each_variant_with_its_probability(mode):
    # A cut example keeps a 0/1 image; a blended one holds fractions.
    x, y = _index_images(8), np.arange(8)
    mixer = keras_mixup.Mixup(
        variant={"mixup": 0.3, "cutmix": 0.7},
        alpha=1.0,
        mode=mode,
        num_classes=8,
        seed=4,
    )
    step = tf.function(lambda a, b: mixer(a, b)[0])
    cut = blended = 0
    for _ in range(150 if mode == "elem" else 600):
        images = step(x, y).numpy()
        own = images[np.arange(8), ..., np.arange(8)]
        fractional = np.any((own > 1e-6) & (own < 1 - 1e-6), axis=(1, 2))
        moved = np.any(own < 1 - 1e-6, axis=(1, 2))
        if mode == "batch":  # one choice per batch: count batches
            fractional, moved = fractional.any(keepdims=True), moved.any()
        cut += int(np.sum(moved & ~fractional))
        blended += int(np.sum(fractional))
    total = cut + blended
    assert total > 550
    chi2 = stats.chisquare([cut, blended], [0.7 * total, 0.3 * total])
    assert chi2.pvalue > 1e-3, (cut, blended)


def test_the_legacy_switch_is_a_choice_of_mixup_and_cutmix():
    switch = keras_mixup.Mixup(alpha=0.8, cutmix_alpha=1.0, switch_prob=0.25)
    assert isinstance(switch.engine.variant, variants.choice.Choice)
    members = switch.engine.variant.members
    assert [m.name for m in members] == ["mixup", "cutmix"]
    assert switch.engine.variant.probabilities == [0.75, 0.25]
    assert members[1].alpha == 1.0 and members[0].alpha is None
    assert switch.get_config()["switch_prob"] == 0.25
    only = keras_mixup.Mixup(cutmix_alpha=1.0, switch_prob=1.0)
    assert only.engine.variant.name == "cutmix"  # never mixup: stays uint8
    images, _ = only(np.zeros((4, 8, 8, 3), "uint8"), np.eye(4, dtype="f4"))
    assert images.dtype == tf.uint8


@pytest.mark.parametrize(
    "variant, match",
    [
        ("fmixx", r"`variant` must be a variant name \(\[.*'cutmix'.*'mixup'"),
        ({"mixup": 0.5, "cutmix": 0.6}, r"sum to 1; received .* 1\.1"),
        ({"mixup": 1.0, "other": 0.0}, r"names 'other', which is not a"),
        ({"mixup": -0.5, "cutmix": 1.5}, r"`variant\['mixup'\]` must be a"),
        ({}, r"`variant` must be a variant name"),
    ],
)
def test_a_bad_variant_is_named(variant, match):
    for make in (keras_mixup.Mixup, keras_mixup.MixupLayer):
        with pytest.raises(ValueError, match=match):
            make(variant=variant)


def test_a_target_the_variant_has_no_rule_for_is_refused_by_name():
    mixer = keras_mixup.Mixup(variant="cutmix", num_classes=2)
    with pytest.raises(
        ValueError,
        match="boxes without `bounding_box_format`|needs their format",
    ):
        mixer(
            {
                "images": np.zeros((2, 8, 8, 1), "float32"),
                "labels": np.arange(2),
                "bounding_boxes": {
                    "boxes": np.zeros((2, 1, 4), "float32"),
                    "labels": np.zeros((2, 1), "int32"),
                },
            }
        )


#: The registered variants without a rule for detection boxes.
_BOXLESS = sorted(
    name
    for name, variant in variants.REGISTRY.items()
    if "bounding_boxes" not in variant.takes
)


def _map_functions(name):
    """`Mixup(variant=name)` and the variant's own map function, if any."""
    own = [
        cls
        for cls in keras_mixup.data._VariantMapFunction.__subclasses__()
        if cls.variant_name == name
    ]
    return [lambda **kw: keras_mixup.Mixup(variant=name, **kw), *own]


@pytest.mark.parametrize("name", _BOXLESS)
def test_a_variant_without_a_box_rule_refuses_boxes_by_name(name):
    element = {
        "images": np.arange(6, dtype="float32")[:, None, None, None]
        * np.ones((6, 16, 16, 3), "float32"),
        "labels": np.arange(6),
        "bounding_boxes": {
            "boxes": np.zeros((6, 1, 4), "float32"),
            "labels": np.zeros((6, 1), "int32"),
        },
    }
    for make in _map_functions(name):
        with pytest.raises(ValueError, match=f"{name}.*`bounding_boxes`"):
            make(num_classes=6, seed=1)(element)
        with pytest.raises(ValueError, match="bounding_box_format"):
            make(bounding_box_format="xyxy")


def test_copies_for_input_pipelines_share_the_mixing_state():
    mixup = keras_mixup.Mixup(alpha=0.3, num_classes=4, seed=1)
    context = tf.distribute.InputContext(
        num_input_pipelines=2, input_pipeline_id=1
    )
    copy = mixup.for_input_context(context)
    assert copy.mixing_state is mixup.mixing_state
    mixup.mixing_state.set(active=False)
    x = np.random.default_rng(0).uniform(size=(8, 3)).astype("float32")
    mixed, _ = copy(x, np.arange(8) % 4)
    np.testing.assert_array_equal(mixed, x)  # the schedule reached the copy
    mixup.mixing_state.set(active=True, alpha=2.0)
    assert copy.alpha == 2.0
    assert copy.engine.seed_source is not mixup.engine.seed_source
