"""Loss mixing, `MixupModel(..., mix_loss=True)`, on TensorFlow: one
training step with an injected draw equals lam * L(y_i, f(x~)) + (1 - lam)
* L(y_j, f(x~)) computed by hand, for each reduction, weights, variant,
mix point and RegMixup; the metrics it reports; the errors. Every backend:
models_mix_loss_backends_test.py."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_mixup

X = np.array(
    [[1.0, 0.0, 2.0], [0.5, -1.0, 0.0], [-1.0, 1.0, 1.0], [2.0, 2.0, -0.5]],
    "float32",
)
Y = np.array([0, 1, 2, 0])
LAM = np.array([0.7, 0.2, 0.5, 0.9], "float32")
PARTNER = np.array([1, 0, 3, 2], "int32")


def _dense(units):
    return keras.layers.Dense(
        units, kernel_initializer=keras.initializers.RandomNormal(seed=1)
    )


def _model(shape=(3,), units=3, *, mixup_layer=False, draw=None, **options):
    """A MixupModel with loss mixing whose every draw is `draw` (default
    `(LAM, PARTNER)`)."""
    layers = [keras.Input(shape)]
    if mixup_layer:
        layers.append(keras_mixup.MixupLayer(name="mix"))
    if len(shape) > 1 and shape[-1] == 1:
        layers.append(keras.layers.Flatten())
    layers.append(_dense(units))
    model = keras_mixup.MixupModel(
        keras.Sequential(layers), mix_loss=True, seed=0, **options
    )
    if draw is None:
        draw = (tf.constant(LAM), tf.constant(PARTNER))
    model.engine.draw = lambda *args, **kwargs: draw
    return model


def _step(model, loss, x=X, y=Y, sample_weight=None, **compile_args):
    """`(logs of one step on the whole batch, kernel, bias)` before it."""
    model.compile(keras.optimizers.SGD(0.1), loss, **compile_args)
    kernel, bias = (np.asarray(w, "float64") for w in model.model.get_weights())
    history = model.fit(
        x,
        y,
        sample_weight=sample_weight,
        batch_size=len(x),
        shuffle=False,
        verbose=0,
    )
    return {k: v[0] for k, v in history.history.items()}, kernel, bias


def _mixed(x, lam=LAM):
    lam = np.broadcast_to(lam, [len(x)]).astype("float64")
    lam = lam.reshape(-1, *[1] * (x.ndim - 1))
    return lam * x + (1 - lam) * x[PARTNER]


def _cross_entropy(logits, labels):
    """Per-example sparse cross-entropy from logits."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return -np.take_along_axis(log_p, labels[:, None], axis=-1)[:, 0]


def _terms(logits, lam=LAM, partner=PARTNER):
    """`(own, partner)` per-example terms: lam * L_i, (1 - lam) * L_j."""
    lam = np.broadcast_to(lam, [len(logits)]).astype("float64")
    own = lam * _cross_entropy(logits, Y)
    return own, (1 - lam) * _cross_entropy(logits, Y[partner])


SPARSE = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "sum"])
def test_the_step_loss_is_the_mixed_formula_under_each_reduction(reduction):
    loss = keras.losses.SparseCategoricalCrossentropy(
        from_logits=True, reduction=reduction
    )
    logs, kernel, bias = _step(_model(), loss)
    own, partner = _terms(_mixed(X) @ kernel + bias)
    total = (own + partner).sum()
    expected = total / len(X) if reduction != "sum" else total
    assert logs["loss"] == pytest.approx(expected, rel=1e-6)


def test_sample_weights_weigh_each_term_with_its_source_weight():
    weights = np.array([1.0, 2.0, 0.5, 0.0], "float32")
    logs, kernel, bias = _step(_model(), SPARSE, sample_weight=weights)
    own, partner = _terms(_mixed(X) @ kernel + bias)
    expected = (own * weights + partner * weights[PARTNER]).mean()
    assert logs["loss"] == pytest.approx(expected, rel=1e-6)


def test_one_lam_per_batch_is_spread_over_the_batch():
    draw = (tf.constant(0.3), tf.constant(PARTNER))
    logs, kernel, bias = _step(_model(draw=draw, mode="batch"), SPARSE)
    own, partner = _terms(_mixed(X, 0.3) @ kernel + bias, lam=0.3)
    assert logs["loss"] == pytest.approx((own + partner).mean(), rel=1e-6)


def test_a_hidden_mix_point_mixes_there_and_the_loss_likewise():
    model = _model(mixup_layer=True, mix_at=["mix"])
    logs, kernel, bias = _step(model, SPARSE)
    own, partner = _terms(_mixed(X) @ kernel + bias)
    assert logs["loss"] == pytest.approx((own + partner).mean(), rel=1e-6)


def test_integer_labels_are_one_hot_with_num_classes_for_a_categorical_loss():
    loss = keras.losses.CategoricalCrossentropy(from_logits=True)
    logs, kernel, bias = _step(_model(num_classes=3), loss)
    own, partner = _terms(_mixed(X) @ kernel + bias)
    assert logs["loss"] == pytest.approx((own + partner).mean(), rel=1e-6)


def test_metrics_see_the_labels_of_the_source_each_example_holds_most_of():
    logs, kernel, bias = _step(_model(), SPARSE, metrics=["accuracy"])
    predicted = (_mixed(X) @ kernel + bias).argmax(axis=-1)
    dominant = np.where(LAM >= 0.5, Y, Y[PARTNER])
    assert logs["accuracy"] == pytest.approx(np.mean(predicted == dominant))
    # The hand-built batch tells the two apart: the own labels score other.
    assert np.mean(predicted == dominant) != np.mean(predicted == Y)


def test_regmixup_adds_the_clean_loss_to_the_mixed_loss():
    logs, kernel, bias = _step(_model(clean_loss_weight=0.5), SPARSE)
    own, partner = _terms(_mixed(X) @ kernel + bias)
    clean = _cross_entropy(X.astype("float64") @ kernel + bias, Y).mean()
    mixed = (own + partner).mean()
    assert logs["mixed_loss"] == pytest.approx(mixed, rel=1e-6)
    assert logs["clean_loss"] == pytest.approx(clean, rel=1e-6)
    assert logs["loss"] == pytest.approx(mixed + 0.5 * clean, rel=1e-6)


def _images():
    """Four 8x8 images, each filled with its index + 1."""
    values = np.arange(1, 5, dtype="float32")
    return np.broadcast_to(values[:, None, None, None], (4, 8, 8, 1)).copy()


@pytest.mark.parametrize(
    "variant", ["cutmix", {"mixup": 0.5, "cutmix": 0.5}], ids=["cut", "choice"]
)
def test_a_cut_variant_weighs_the_loss_with_its_pixel_fraction(variant):
    images = _images()
    seeded = keras_mixup.MixupModel(
        keras.Sequential([keras.Input((8, 8, 1))]),
        alpha=1.0,
        variant=variant,
        mix_loss=True,
        seed=3,
    )
    draw = seeded.engine.draw(4, images, Y)  # injected below
    y = seeded.mix(images, Y)[1]
    mixed = np.asarray(seeded.engine.apply(draw, images)[0], "float64")
    lam = np.asarray(draw.lam, "float64")
    partner_index = np.asarray(draw.partner_index)
    np.testing.assert_array_equal(y, Y)  # the labels are not mixed
    if variant == "cutmix":  # the label weight: the own pixels' fraction
        own = (mixed == images).mean(axis=(1, 2, 3))
        paired = partner_index != np.arange(4)
        assert paired.sum() >= 2  # (one's own partner changes nothing)
        np.testing.assert_allclose(lam[paired], own[paired], atol=1e-6)
        assert np.all((lam > 0) & (lam < 1))
    model = _model((8, 8, 1), draw=draw, variant=variant, alpha=1.0)
    logs, kernel, bias = _step(model, SPARSE, x=images)
    logits = mixed.reshape(4, -1) @ kernel + bias
    own, partner = _terms(logits, lam=lam, partner=partner_index)
    assert logs["loss"] == pytest.approx((own + partner).mean(), rel=1e-6)


def test_a_ctc_loss_trains_on_the_mixed_formula():
    frames = np.linspace(-1, 1, 4 * 6 * 2, dtype="float32").reshape(4, 6, 2)
    labels = np.array([[1, 2, 0], [2, 0, 0], [1, 1, 2], [3, 0, 0]], "int32")
    model = _model((6, 2), units=4)
    logs, kernel, bias = _step(model, keras.losses.CTC(), x=frames, y=labels)
    logits = tf.constant(_mixed(frames) @ kernel + bias, tf.float32)

    def ctc(targets):
        return np.asarray(keras.losses.ctc(tf.constant(targets), logits))

    lam = LAM.astype("float64")
    expected = (lam * ctc(labels) + (1 - lam) * ctc(labels[PARTNER])).mean()
    assert logs["loss"] == pytest.approx(expected, rel=1e-5)


def test_a_custom_loss_function_trains_on_the_mixed_formula():
    targets = np.array(
        [[1.0, -1.0, 0.0], [0.0, 2.0, 1.0], [3.0, 0.5, -2.0], [0.0, 0.0, 1.0]],
        "float32",
    )

    def pseudo_huber(y_true, y_pred):  # not linear in the target
        return keras.ops.mean(
            keras.ops.sqrt(1.0 + keras.ops.square(y_pred - y_true)) - 1.0, -1
        )

    logs, kernel, bias = _step(_model(), pseudo_huber, y=targets)
    outputs = _mixed(X) @ kernel + bias

    def per_example(t):
        return (np.sqrt(1.0 + (outputs - t) ** 2) - 1.0).mean(-1)

    lam = LAM.astype("float64")
    terms = lam * per_example(targets) + (1 - lam) * per_example(
        targets[PARTNER]
    )
    assert logs["loss"] == pytest.approx(terms.mean(), rel=1e-6)
    blended = _mixed(targets)  # blending the targets gives another loss
    assert abs(per_example(blended).mean() - terms.mean()) > 1e-3


@pytest.mark.parametrize("size", [1, 0])
def test_batches_of_1_and_0(size):
    itself = tf.zeros([size], "int32")  # a batch of 1 is its own partner
    model = _model(draw=(tf.constant(LAM[:size]), itself))
    x, y, _, plan = model.mix(X[:size], Y[:size])
    np.testing.assert_array_equal(x, X[:size])
    np.testing.assert_array_equal(y, Y[:size])
    assert list(plan.lam.shape) == [size]
    if size:
        logs, kernel, bias = _step(model, SPARSE, x=X[:1], y=Y[:1])
        plain = _cross_entropy(X[:1] @ kernel + bias, Y[:1])
        assert logs["loss"] == pytest.approx(plain[0], rel=1e-6)


def test_evaluate_and_mix_leave_sparse_labels_as_they_are():
    model = _model()
    model.compile("sgd", SPARSE)
    logits = np.asarray(model.predict(X, verbose=0), "float64")
    evaluated = model.evaluate(X, Y, verbose=0)
    expected = _cross_entropy(logits, Y).mean()
    assert evaluated == pytest.approx(expected, rel=1e-6)
    weights = np.array([1, 2, 3, 4])
    x, y, sample_weight, plan = model.mix(X, Y, weights)
    np.testing.assert_array_equal(y, Y)
    np.testing.assert_array_equal(sample_weight, weights)
    assert sample_weight.dtype == tf.float32
    np.testing.assert_allclose(x, _mixed(X), rtol=1e-6)
    np.testing.assert_array_equal(plan.lam, LAM)


def test_sparse_losses_without_mix_loss_are_refused_pointing_to_it():
    model = keras_mixup.MixupModel(_model().model, num_classes=3)
    for loss in ("sparse_categorical_crossentropy", keras.losses.CTC()):
        with pytest.raises(ValueError, match=r"or pass `mix_loss=True`"):
            model.compile("sgd", loss)


@pytest.mark.parametrize(
    "options, loss, message",
    [
        (
            {"num_classes": 3},
            "sparse_categorical_crossentropy",
            r"takes class ids, but `num_classes=3` one-hot encodes them",
        ),
        (
            {},
            keras.losses.MeanSquaredError(reduction="mean_with_sample_weight"),
            r"the reduction 'mean_with_sample_weight' divides out again",
        ),
    ],
    ids=["num_classes", "mean_with_sample_weight"],
)
def test_losses_loss_mixing_cannot_weigh_are_refused(options, loss, message):
    with pytest.raises(ValueError, match=message):
        _model(**options).compile("sgd", loss)


def test_mix_labels_and_a_bad_mix_loss_are_refused():
    inner = _model().model
    with pytest.raises(ValueError, match=r"takes no `mix_labels`; received "):
        keras_mixup.MixupModel(inner, mix_labels=False)
    with pytest.raises(ValueError, match=r"`mix_loss` must be"):
        keras_mixup.MixupModel(inner, mix_loss="yes")
    assert keras_mixup.MixupModel(inner, mix_loss=True).mix_loss is True
    for entry in (keras_mixup.MixupLayer, keras_mixup.Mixup):
        with pytest.raises(ValueError, match=r"option\(s\) \['mix_loss'\]"):
            entry(mix_loss=True)


def test_for_one_label_cross_entropy_it_equals_blending_one_hot_labels():
    sparse_logs, _, _ = _step(_model(), SPARSE)
    blended = keras_mixup.MixupModel(_model().model, num_classes=3, seed=0)
    blended.engine.draw = lambda *args, **kwargs: (
        tf.constant(LAM),
        tf.constant(PARTNER),
    )
    loss = keras.losses.CategoricalCrossentropy(from_logits=True)
    blended_logs, _, _ = _step(blended, loss)
    assert sparse_logs["loss"] == pytest.approx(blended_logs["loss"], rel=1e-6)


def test_per_example_weights_weigh_every_position_of_a_sequence_label():
    frames = np.linspace(-1, 1, 4 * 3 * 2, dtype="float32").reshape(4, 3, 2)
    tags = np.array([[0, 2, -1], [1, -1, -1], [2, 2, 0], [1, 0, -1]])
    weights = np.array([1.0, 2.0, 0.5, 3.0], "float32")
    loss = keras.losses.SparseCategoricalCrossentropy(
        from_logits=True, ignore_class=-1
    )
    logs, kernel, bias = _step(
        _model((3, 2)), loss, x=frames, y=tags, sample_weight=weights
    )
    logits = _mixed(frames) @ kernel + bias

    def term(labels, weight):
        valid = labels != -1
        ce = _cross_entropy(
            logits.reshape(-1, 3), np.where(valid, labels, 0).reshape(-1)
        ).reshape(4, 3)
        return (weight[:, None] * ce * valid).sum() / valid.sum()

    lam = LAM.astype("float64")
    expected = term(tags, lam * weights) + term(
        tags[PARTNER], (1 - lam) * weights[PARTNER]
    )
    assert logs["loss"] == pytest.approx(expected, rel=1e-6)
