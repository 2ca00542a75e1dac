"""Padded sequences and their masks (`mask_rule`): exact values, masks and
label weights per rule with an injected draw, on every backend
(sequence_masks_scenarios.py, through the shared runner); `tf.data` dicts
with a `padding_mask`; `mix_with`; following layers blind to the masked
steps; batches of 1 and 0; the errors."""

import numpy as np
import pytest
import tensorflow as tf
from conftest import BACKENDS, shared_result
from sequence_masks_scenarios import KERNEL, LAM, MASK, PARTNERS, sequences

import keras_mixup

RULES = ("union", "intersection", "anchor")


def reference(x, mask, lam, partners, rule):
    """The rules as the issue states them, in numpy: `(x~, mask~, lam')`."""
    lam = np.broadcast_to(np.asarray(lam, "float64"), mask.shape[:1])
    own = np.where(mask[..., None], x, 0.0)  # padding counts as zeros
    other, other_mask = own[partners], mask[partners]
    both = mask & other_mask
    weight = lam[:, None, None]
    blend = weight * own + (1 - weight) * other
    if rule == "union":
        combined = mask | other_mask
        out = np.where(combined[..., None], blend, x)
        return out, combined, lam
    if rule == "intersection":
        out = np.where(both[..., None], blend, np.where(mask[..., None], 0, x))
        return out, both, lam
    out = np.where(both[..., None], blend, x)
    shared = both.sum(1) / np.maximum(mask.sum(1), 1)
    return out, mask, 1 - (1 - lam) * shared


def smoothed(lam, partners, classes=5, smoothing=0.1):
    eye = np.eye(classes) * (1 - smoothing) + smoothing / classes
    lam = np.broadcast_to(lam, partners.shape)[:, None]
    return lam * eye[: len(partners)] + (1 - lam) * eye[partners]


def test_the_rules_by_hand():
    x = sequences()[..., :1]
    out, combined, lam = reference(x, MASK, LAM, PARTNERS, "union")
    # Row 0 (length 2, value 1) with row 1 (length 4, value 2), lam 0.25.
    np.testing.assert_allclose(out[0, :, 0], [1.75, 1.75, 1.5, 1.5, -1.0])
    np.testing.assert_array_equal(combined[0], [1, 1, 1, 1, 0])
    out, combined, _ = reference(x, MASK, LAM, PARTNERS, "intersection")
    np.testing.assert_allclose(out[0, :, 0], [1.75, 1.75, -1, -1, -1])
    np.testing.assert_allclose(out[1, :, 0], [1.5, 1.5, 0, 0, -2])
    out, combined, lam = reference(x, MASK, LAM, PARTNERS, "anchor")
    np.testing.assert_allclose(out[1, :, 0], [1.5, 1.5, 2, 2, -2])
    np.testing.assert_allclose(lam[1], 1 - 0.5 * 2 / 4)  # min(L_i, L_j)/L_i
    np.testing.assert_allclose(lam[2], 1 - 0.25 * 3 / 3)  # holes: |M_i & M_j|


@pytest.fixture(scope="module", params=BACKENDS)
def scenario(request):
    return shared_result(request, request.param, "sequence_masks")


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("mode", ["elem", "batch"])
def test_every_backend_mixes_by_the_rule(scenario, rule, mode):
    lam = LAM if mode == "elem" else LAM[0]
    out, combined, weight = reference(sequences(), MASK, lam, PARTNERS, rule)
    found = scenario[rule]["applied"][mode]
    np.testing.assert_allclose(found["x"], out, atol=1e-6)
    np.testing.assert_array_equal(found["mask"], combined)
    np.testing.assert_allclose(
        found["y"], smoothed(weight, PARTNERS), atol=1e-6
    )


@pytest.mark.parametrize("rule", RULES)
def test_every_backend_passes_the_combined_mask_on(scenario, rule):
    out, combined, weight = reference(sequences(), MASK, LAM, PARTNERS, rule)
    found = scenario[rule]["injected"]["0"]  # the step chose this layer
    np.testing.assert_allclose(found["x"], out, atol=1e-6)
    np.testing.assert_array_equal(found["mask"], combined)
    np.testing.assert_allclose(found["weight"], weight, atol=1e-6)
    passed = scenario[rule]["injected"]["1"]  # another point: unchanged
    np.testing.assert_array_equal(passed["x"], sequences())
    np.testing.assert_array_equal(passed["mask"], MASK)
    np.testing.assert_allclose(passed["weight"], LAM)
    # An LSTM, self-attention and a masked mean ignore the masked steps.
    assert scenario[rule]["lstm"] == 0.0
    assert scenario[rule]["attention"] == 0.0
    assert np.isfinite(scenario[rule]["loss"])


def _log_softmax(logits):
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def _anchor_losses(weight):
    """The losses of `anchor_step`, by hand, with label weights `weight`:
    `(cross-entropy on blended labels, loss-mixed mean squared error,
    clean cross-entropy)`."""
    out, mask, _ = reference(sequences(), MASK, LAM, PARTNERS, "anchor")

    def logits(x, valid):
        valid = valid[..., None].astype("float64")
        return (x * valid).sum(1) / valid.sum(1) @ KERNEL

    mixed, eye = logits(out, mask), np.eye(5)
    w = weight[:, None]
    blended = w * eye + (1 - w) * eye[PARTNERS]
    cross_entropy = -(blended * _log_softmax(mixed)).sum(1).mean()
    own, partner = (((mixed - t) ** 2).mean(1) for t in (eye, eye[PARTNERS]))
    mse = (weight * own + (1 - weight) * partner).mean()
    clean = logits(sequences(), MASK)
    return cross_entropy, mse, -(eye * _log_softmax(clean)).sum(1).mean()


def test_every_backend_weighs_labels_by_anchor_at_a_hidden_layer(scenario):
    _, _, anchored = reference(sequences(), MASK, LAM, PARTNERS, "anchor")
    cross_entropy, mse, clean = _anchor_losses(anchored)
    found = scenario["anchor"]["step"]
    np.testing.assert_allclose(found["labels"]["loss"], cross_entropy, 1e-5)
    np.testing.assert_allclose(found["mix_loss"]["loss"], mse, 1e-5)
    regmixup = found["regmixup"]
    np.testing.assert_allclose(regmixup["mixed_loss"], cross_entropy, 1e-5)
    np.testing.assert_allclose(regmixup["clean_loss"], clean, 1e-5)
    np.testing.assert_allclose(
        regmixup["loss"], cross_entropy + 0.5 * clean, 1e-5
    )
    # lam' and lam give different losses here: the check has teeth.
    with_lam = _anchor_losses(LAM.astype("float64"))
    assert abs(with_lam[0] - cross_entropy) > 0.1
    assert abs(with_lam[1] - mse) > 0.05


def test_every_backend_mixes_inputs_only_under_anchor(scenario):
    out, mask, _ = reference(sequences(), MASK, LAM, PARTNERS, "anchor")
    found = scenario["anchor"]["inputs_only"]
    np.testing.assert_allclose(found["x"], out, atol=1e-6)
    np.testing.assert_array_equal(found["mask"], mask)


def _recovered(labels, mask, rule):
    """lam and partners read back from mixed one-hot labels."""
    partners = np.array(
        [
            next((j for j in np.flatnonzero(row > 1e-6) if j != i), i)
            for i, row in enumerate(labels)
        ]
    )
    weight = labels[np.arange(len(labels)), np.arange(len(labels))]
    if rule != "anchor":
        return weight, partners
    shared = (mask & mask[partners]).sum(1) / np.maximum(mask.sum(1), 1)
    return 1 - (1 - weight) / np.where(shared > 0, shared, 1), partners


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("mode", ["elem", "batch"])
def test_a_tf_data_dict_with_a_padding_mask(rule, mode):
    speaker = np.arange(5, dtype="float32")[:, None] * [1.0, 10.0]
    ds = tf.data.Dataset.from_tensor_slices(
        (
            {"audio": sequences(), "speaker": speaker, "padding_mask": MASK},
            np.arange(5),
        )
    ).batch(5)
    mixer = keras_mixup.Mixup(
        alpha=1.0, num_classes=5, mask_rule=rule, mode=mode, seed=4
    )
    x, y = next(iter(ds.map(mixer)))
    lam, partners = _recovered(y.numpy(), MASK, rule)
    out, combined, _ = reference(sequences(), MASK, lam, partners, rule)
    np.testing.assert_allclose(x["audio"], out, atol=1e-5)
    np.testing.assert_array_equal(x["padding_mask"], combined)
    blend = lam[:, None] * speaker + (1 - lam[:, None]) * speaker[partners]
    np.testing.assert_allclose(x["speaker"], blend, atol=1e-5)  # with lam


def test_mix_with_padded_partners_keeps_the_labels():
    ds = tf.data.Dataset.from_tensor_slices(
        ({"audio": sequences(), "padding_mask": MASK}, np.arange(5))
    ).batch(5)
    partners = tf.data.Dataset.from_tensor_slices(
        ({"audio": sequences() * 10, "padding_mask": MASK[::-1]},)
    ).batch(3)
    mixed = keras_mixup.mix_with(
        ds, partners, alpha=1.0, seed=1, mask_rule="intersection"
    )
    x, y = next(iter(mixed))
    np.testing.assert_array_equal(y, np.arange(5))
    assert not np.any(x["padding_mask"].numpy() & ~MASK)  # within its own


@pytest.mark.parametrize("size", [1, 0])
def test_a_tf_data_batch_of_1_and_0(size):
    mixer = keras_mixup.Mixup(alpha=1.0, num_classes=5, seed=1)
    x, y = mixer(
        {"audio": sequences()[:size], "padding_mask": MASK[:size]},
        np.arange(size),
    )
    assert x["audio"].shape == (size, 5, 2) and y.shape == (size, 5)
    np.testing.assert_array_equal(x["padding_mask"], MASK[:size])


def test_the_errors():
    batch = {"audio": sequences(), "padding_mask": MASK}
    with pytest.raises(ValueError, match="cannot mix `padding_mask`"):
        keras_mixup.Mixup(variant="cutmix", axes=(1,))(batch, np.arange(5))
    with pytest.raises(ValueError, match="only the variants that mix padded"):
        keras_mixup.Mixup(variant="cutmix", mask_rule="anchor")
    with pytest.raises(ValueError, match="'union', 'intersection'"):
        keras_mixup.Mixup(mask_rule="or")
    with pytest.raises(ValueError, match="integer token ids"):
        keras_mixup.Mixup()(
            {"tokens": np.ones((5, 5), "int32"), "padding_mask": MASK},
            np.arange(5),
        )
    with pytest.raises(ValueError, match=r"received int32\[5, 5\]"):
        keras_mixup.Mixup()(
            {"audio": sequences(), "padding_mask": MASK.astype("int32")},
            np.arange(5),
        )
    with pytest.raises(ValueError, match=r"received bool\[5\]"):
        keras_mixup.Mixup()(
            {"audio": sequences(), "padding_mask": MASK[:, 0]}, np.arange(5)
        )
    with pytest.raises(ValueError, match="no float input"):
        keras_mixup.Mixup()(
            {"audio": sequences()[:, :3], "padding_mask": MASK}, np.arange(5)
        )


def test_the_inputs_only_form_under_anchor_keeps_labels_and_masks():
    ds = tf.data.Dataset.from_tensor_slices(
        ({"audio": sequences(), "padding_mask": MASK}, np.arange(5))
    ).batch(5)
    mixer = keras_mixup.Mixup(
        alpha=1.0, mask_rule="anchor", mix_labels=False, seed=0
    )
    x, y = next(iter(ds.map(mixer)))
    np.testing.assert_array_equal(y, np.arange(5))  # labels as given
    np.testing.assert_array_equal(x["padding_mask"], MASK)  # masks too
    audio, padded = x["audio"].numpy(), ~MASK[..., None].repeat(2, -1)
    np.testing.assert_array_equal(audio[padded], sequences()[padded])
    assert not np.array_equal(audio, sequences())  # the valid steps mixed


def test_anchor_at_a_hidden_mix_point_defers_the_labels():
    import keras

    backbone = keras.Sequential(
        [
            keras.Input((4,), dtype="int32"),
            keras.layers.Embedding(10, 4, mask_zero=True),
            keras_mixup.MixupLayer(name="mix"),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(2),
        ]
    )
    model = keras_mixup.MixupModel(
        backbone, num_classes=2, mix_at=["mix"], seed=0, mask_rule="anchor"
    )  # the model's options rule its mix points
    tokens = np.array([[3, 4, 0, 0], [5, 6, 7, 0]] * 4)
    _, y, _, plan = model.mix(tokens, np.arange(8) % 2)
    assert plan.deferred  # labels mixed after the forward pass, with lam'
    np.testing.assert_array_equal(y, np.eye(2)[np.arange(8) % 2])
    model.compile("sgd", keras.losses.CategoricalCrossentropy(from_logits=True))
    history = model.fit(tokens, np.arange(8) % 2, batch_size=8, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def _padded_dict_model(**options):
    """A `MixupModel` around an LSTM that reads `{"audio", "padding_mask"}`
    (the mask set on the audio by `WithMask`)."""
    import keras
    from sequence_masks_scenarios import WithMask

    audio = keras.Input((5, 2), name="audio")
    valid = keras.Input((5,), dtype="bool", name="padding_mask")
    hidden = keras.layers.LSTM(5)(WithMask()([audio, valid]))
    inner = keras.Model({"audio": audio, "padding_mask": valid}, hidden)
    return keras_mixup.MixupModel(inner, alpha=1.0, seed=2, **options)


@pytest.mark.parametrize("rule", RULES)
def test_a_mixup_model_mixes_a_padded_dict_at_the_input(rule):
    model = _padded_dict_model(num_classes=5, mask_rule=rule)
    x, y, _, _ = model.mix(
        {"audio": sequences(), "padding_mask": MASK}, np.arange(5)
    )
    lam, partners = _recovered(np.asarray(y), MASK, rule)
    out, combined, _ = reference(sequences(), MASK, lam, partners, rule)
    np.testing.assert_allclose(x["audio"], out, atol=1e-5)
    np.testing.assert_array_equal(x["padding_mask"], combined)
    model.compile("sgd", "mse")
    data = {"audio": sequences(), "padding_mask": MASK}
    history = model.fit(data, np.arange(5), verbose=0)
    assert np.isfinite(history.history["loss"][0])


@pytest.mark.parametrize("rule", RULES)
def test_loss_mixing_at_the_input_mixes_a_padded_dict_by_the_rule(rule):
    model = _padded_dict_model(mask_rule=rule, mix_loss=True)
    model.engine.draw = lambda *args, **kwargs: (LAM, PARTNERS)
    x, y, _, plan = model.mix(
        {"audio": sequences(), "padding_mask": MASK}, np.arange(5)
    )
    out, combined, weight = reference(sequences(), MASK, LAM, PARTNERS, rule)
    np.testing.assert_allclose(x["audio"], out, atol=1e-6)
    np.testing.assert_array_equal(x["padding_mask"], combined)
    np.testing.assert_array_equal(y, np.arange(5))  # the loss is mixed
    np.testing.assert_allclose(plan.lam, weight, atol=1e-6)


@pytest.mark.parametrize("rule", RULES)
def test_the_dict_form_of_a_mixup_layer_with_a_padding_mask(rule):
    layer = keras_mixup.MixupLayer(
        alpha=1.0, num_classes=5, mask_rule=rule, seed=3
    )
    batch = {"audio": sequences(), "padding_mask": MASK}
    mixed = layer({**batch, "labels": np.arange(5)})  # labels: mixed too
    lam, partners = _recovered(np.asarray(mixed["labels"]), MASK, rule)
    out, combined, _ = reference(sequences(), MASK, lam, partners, rule)
    np.testing.assert_allclose(mixed["audio"], out, atol=1e-5)
    np.testing.assert_array_equal(mixed["padding_mask"], combined)
    same = layer(batch)  # no labels: inputs only, and only while training
    np.testing.assert_array_equal(same["audio"], batch["audio"])


def test_a_padded_batch_of_unknown_length():
    def examples():
        for length in (2, 4, 3, 1):
            audio = np.full((length, 1), length, "float32")
            yield (
                {
                    "audio": audio,
                    "speaker": np.full([2], length, "float32"),
                    "padding_mask": np.ones([length], bool),
                },
                length,
            )

    ds = tf.data.Dataset.from_generator(
        examples,
        output_signature=(
            {
                "audio": tf.TensorSpec([None, 1]),
                "speaker": tf.TensorSpec([2]),
                "padding_mask": tf.TensorSpec([None], tf.bool),
            },
            tf.TensorSpec([], tf.int32),
        ),
    ).padded_batch(4)
    mixer = keras_mixup.Mixup(alpha=1.0, num_classes=5, seed=0)
    x, y = next(iter(ds.map(mixer)))
    mask = np.arange(4)[None] < np.array([2, 4, 3, 1])[:, None]
    lam, partners = _recovered(y.numpy()[:, [2, 4, 3, 1]], mask, "union")
    audio = np.where(mask, [[2], [4], [3], [1]], 0.0)[..., None]
    out, combined, _ = reference(audio, mask, lam, partners, "union")
    np.testing.assert_allclose(x["audio"], out, atol=1e-5)
    np.testing.assert_array_equal(x["padding_mask"], combined)
    speaker = np.array([2, 4, 3, 1.0])
    blend = lam * speaker + (1 - lam) * speaker[partners]
    np.testing.assert_allclose(x["speaker"][:, 0], blend, atol=1e-5)


def test_a_choice_among_variants_takes_each_rows_member():
    from keras_mixup.variants import Draw, choice, mixup

    options = keras_mixup.MixupLayer(alpha=1.0).engine.options
    members = [(mixup.Mixup(options), 0.5), (mixup.Mixup(options), 0.5)]
    chosen = np.array([0, 1, 0, 1, 1], "int32")
    params = {"choice": chosen, "lams": [LAM, 1 - LAM], "members": [{}, {}]}
    draw = Draw(LAM, PARTNERS, params)
    (mixed,), combined, weight = choice.Choice(options, members).apply_padding(
        draw, [tf.constant(sequences())], tf.constant(MASK), "anchor", "float32"
    )
    lam = np.where(chosen == 0, LAM, 1 - LAM)
    out, mask, lam_anchor = reference(
        sequences(), MASK, lam, PARTNERS, "anchor"
    )
    np.testing.assert_allclose(mixed, out, atol=1e-6)
    np.testing.assert_array_equal(combined, mask)
    np.testing.assert_allclose(weight, lam_anchor, atol=1e-6)


def test_a_model_mixing_masked_embeddings_saves_and_loads(tmp_path):
    import keras

    tokens = keras.Input((5,), dtype="int32")
    hidden = keras.layers.Embedding(10, 4, mask_zero=True)(tokens)
    hidden = keras_mixup.MixupLayer(seed=1, mask_rule="intersection")(hidden)
    model = keras.Model(tokens, keras.layers.LSTM(2)(hidden))
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    ids = np.array([[1, 2, 0, 0, 0], [3, 4, 5, 0, 0]])
    np.testing.assert_array_equal(loaded(ids), model(ids))
    assert loaded.layers[2].mask_rule == "intersection"


def test_latent_mixing_takes_the_label_weight_of_the_chosen_point():
    from keras_mixup.layers import MixStep
    from keras_mixup.models import StepPlan
    from keras_mixup.variants import Draw

    engine = keras_mixup.MixupLayer(alpha=1.0, mask_rule="anchor").engine
    draw = Draw(tf.constant(LAM), tf.constant(PARTNERS), {})
    batch = {"audio": tf.constant(sequences()), "padding_mask": MASK}
    rule = "anchor"
    out, combined, weight = reference(sequences(), MASK, LAM, PARTNERS, rule)
    for chosen in (0, 1):  # the input point (a padded dict), or the layer
        point = tf.constant(chosen)
        at_input, at_layer = (MixStep(engine, draw, point, i) for i in (0, 1))
        mixed = at_input.apply(batch)
        plan = StepPlan([at_layer], draw, point, input_step=at_input)
        if chosen == 0:
            np.testing.assert_allclose(mixed["audio"], out, atol=1e-6)
            np.testing.assert_array_equal(mixed["padding_mask"], combined)
            np.testing.assert_allclose(plan.label_weight(), weight, 1e-6)
        else:  # the layer was not called: lam
            np.testing.assert_array_equal(mixed["audio"], sequences())
            np.testing.assert_allclose(plan.label_weight(), LAM)
