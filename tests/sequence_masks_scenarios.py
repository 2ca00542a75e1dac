"""Padded sequences mixed in the model under one Keras backend, run by the
shared scenario runner (`conftest.SHARED`): the rules with an injected draw
through a `MixupLayer` receiving a Keras mask, the combined mask passed on,
following LSTM and attention layers blind to the masked steps, a
`MixupModel` training on masked sequences, one training step of a
`MixupModel` mixing at a hidden layer under `"anchor"` (labels, loss mixing
and RegMixup, the draw injected), the inputs-only form, and batches of 1
and 0.

    KERAS_BACKEND=jax python tests/scenario_runner.py \
        sequence_masks_scenarios.py:sequence_masks

The reference values are computed by sequence_masks_test.py.
"""

import keras
import numpy as np

import keras_mixup
from keras_mixup.layers import MixStep
from keras_mixup.variants import Draw

#: Example i holds i + 1 at its valid steps and -(i + 1) at its padding.
#: Rows 0 and 1 are prefixes (lengths 2 and 4), row 2 has holes, row 3 is
#: empty but for one step, row 4 is full.
MASK = np.array(
    [
        [1, 1, 0, 0, 0],
        [1, 1, 1, 1, 0],
        [1, 0, 1, 0, 1],
        [0, 0, 1, 0, 0],
        [1, 1, 1, 1, 1],
    ],
    bool,
)
#: Every pair of rows shares step 0: an empty combined mask (intersection
#: can give one) leaves attention nothing to attend to.
SHARED_MASK = MASK | (np.arange(MASK.shape[1]) == 0)[None]
PARTNERS = np.array([1, 0, 4, 2, 3], "int32")
LAM = np.array([0.25, 0.5, 0.75, 0.125, 0.625], "float32")
FEATURES = 2
#: The kernel of the classifier after a masked mean (`anchor_step`).
KERNEL = np.linspace(-1, 1, FEATURES * 5).reshape(FEATURES, 5)


def sequences(mask=MASK, padding=None):
    """`[B, T, FEATURES]`: example i holds i + 1 where valid and `padding`
    (default -(i + 1)) where padded."""
    rows = np.arange(1, len(mask) + 1, dtype="float32")[:, None]
    own = np.broadcast_to(rows, mask.shape)
    pad = -own if padding is None else padding
    values = np.where(mask, own, pad).astype("float32")
    return np.repeat(values[..., None], FEATURES, axis=-1)


@keras.saving.register_keras_serializable(package="tests")
class WithMask(keras.layers.Layer):
    """`[values, mask]` -> values carrying `mask` as their Keras mask."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs):
        return inputs[0]

    def compute_mask(self, inputs, mask=None):
        return keras.ops.cast(inputs[1], "bool")


def numpy(t):
    return np.asarray(keras.ops.convert_to_numpy(t))


def _injected(rule, x, mask):
    """The layer's output, mask and label weight with the draw `LAM`,
    `PARTNERS`; and whether it passes through unchanged, with lam as the
    weight, where the step chose another point."""
    layer = keras_mixup.MixupLayer(alpha=1.0, mask_rule=rule)
    draw = Draw(keras.ops.convert_to_tensor(LAM), PARTNERS, {})
    found = {}
    for chosen in (0, 1):
        step = MixStep(layer.engine, draw, keras.ops.array(chosen, "int32"), 0)
        layer.mix_step = step
        out = layer(WithMask()([x, mask]))
        found[chosen] = {
            "x": numpy(out).tolist(),
            "mask": numpy(keras.src.backend.get_keras_mask(out)).tolist(),
            "weight": numpy(step.label_weight).tolist(),
        }
    return found


def _applied(rule, x, mask):
    """`apply_padded` with the injected draw, in both modes: the mixed
    sequences, the combined mask and the labels (smoothed by 0.1)."""
    mixer = keras_mixup.MixupLayer(
        alpha=1.0, num_classes=5, mask_rule=rule, label_smoothing=0.1
    )
    found = {}
    for mode, lam in (("elem", LAM), ("batch", LAM[0])):
        draw = Draw(keras.ops.convert_to_tensor(lam), PARTNERS, {})
        mixed, y, _, combined = mixer.engine.apply_padded(
            draw,
            keras.ops.convert_to_tensor(x),
            keras.ops.convert_to_tensor(mask),
            keras.ops.convert_to_tensor(np.arange(5)),
            mix_labels=True,
        )
        found[mode] = {
            "x": numpy(mixed).tolist(),
            "mask": numpy(combined).tolist(),
            "y": numpy(y).tolist(),
        }
    return found


def _model(rule, kind):
    """values, mask -> MixupLayer -> LSTM (or self-attention and a masked
    mean): the output cannot depend on what masked steps hold."""
    values = keras.Input((MASK.shape[1], FEATURES))
    valid = keras.Input((MASK.shape[1],), dtype="bool")
    hidden = WithMask()([values, valid])
    hidden = keras_mixup.MixupLayer(alpha=1.0, seed=3, mask_rule=rule)(hidden)
    if kind == "lstm":
        out = keras.layers.LSTM(3, seed=0)(hidden)
    else:
        out = keras.layers.MultiHeadAttention(2, 4, seed=0)(hidden, hidden)
        out = keras.layers.GlobalAveragePooling1D()(out)
    return keras.Model([values, valid], out)


def _blind(rule, kind):
    """The largest difference between the training outputs of two models
    with the same weights and seed on sequences whose padding differs."""
    keras.utils.set_random_seed(0)
    first = _model(rule, kind)
    second = _model(rule, kind)
    second.set_weights(first.get_weights())
    a = first([sequences(SHARED_MASK), SHARED_MASK], training=True)
    b = second(
        [sequences(SHARED_MASK, padding=1e3), SHARED_MASK], training=True
    )
    return float(np.max(np.abs(numpy(a) - numpy(b))))


def _trains(rule):
    """A MixupModel mixing an embedding's masked output (wordMixup)."""
    backbone = keras.Sequential(
        [
            keras.Input((5,), dtype="int32"),
            keras.layers.Embedding(12, 4, mask_zero=True),
            keras_mixup.MixupLayer(name="mix"),
            keras.layers.LSTM(4),
            keras.layers.Dense(2),
        ]
    )
    model = keras_mixup.MixupModel(  # the model's options rule its points
        backbone,
        alpha=1.0,
        num_classes=2,
        mix_at=["mix"],
        mask_rule=rule,
        seed=0,
    )
    model.compile("sgd", keras.losses.CategoricalCrossentropy(from_logits=True))
    tokens = np.where(MASK, np.arange(1, 6)[None], 0).astype("int32")
    history = model.fit(
        np.tile(tokens, (4, 1)), np.arange(20) % 2, batch_size=10, verbose=0
    )
    return float(history.history["loss"][-1])


def _small_batches():
    """Batches of 1 and 0 through a mixing MixupLayer with a mask."""
    layer = keras_mixup.MixupLayer(alpha=1.0, seed=1)
    found = {}
    for size in (1, 0):
        x, mask = sequences()[:size], MASK[:size]
        out = layer(WithMask()([x, mask]), training=True)
        combined = keras.src.backend.get_keras_mask(out)
        found[size] = [list(numpy(out).shape), list(numpy(combined).shape)]
        found[f"{size}_same"] = bool(np.array_equal(numpy(out), x))
    return found


def _anchor_model(**options):
    """values, mask -> MixupLayer -> masked mean -> Dense(5, `KERNEL`),
    under a MixupModel mixing at the layer with `"anchor"` and the draw
    `LAM`, `PARTNERS`."""
    values = keras.Input((MASK.shape[1], FEATURES))
    valid = keras.Input((MASK.shape[1],))
    hidden = WithMask()([values, valid])
    hidden = keras_mixup.MixupLayer(name="mix")(hidden)
    hidden = keras.layers.GlobalAveragePooling1D()(hidden)
    dense = keras.layers.Dense(5, use_bias=False)
    inner = keras.Model([values, valid], dense(hidden))
    dense.set_weights([KERNEL])
    model = keras_mixup.MixupModel(
        inner, alpha=1.0, mix_at=["mix"], mask_rule="anchor", **options
    )
    draw = (keras.ops.array(LAM), keras.ops.array(PARTNERS))
    model.engine.draw = lambda *args, **kwargs: draw
    return model


def anchor_step():
    """The loss Keras logs for one step (learning rate 0) of the anchor
    model: labels mixed (cross-entropy), loss mixed (mean squared error),
    and RegMixup (`clean_loss_weight=0.5`)."""
    cross_entropy = keras.losses.CategoricalCrossentropy(from_logits=True)
    runs = {
        "labels": ({}, cross_entropy),
        "mix_loss": ({"mix_loss": True}, "mse"),
        "regmixup": ({"clean_loss_weight": 0.5}, cross_entropy),
    }
    found = {}
    for name, (options, loss) in runs.items():
        model = _anchor_model(seed=0, **options)
        model.compile(keras.optimizers.SGD(0.0), loss)
        history = model.fit(
            [sequences(), MASK.astype("float32")],
            np.eye(5, dtype="float32"),
            batch_size=5,
            shuffle=False,
            verbose=0,
        )
        found[name] = {k: float(v[0]) for k, v in history.history.items()}
    return found


def _inputs_only_anchor():
    """A MixupLayer alone under `"anchor"` (inputs only), draw injected."""
    layer = keras_mixup.MixupLayer(alpha=1.0, mask_rule="anchor")
    draw = Draw(keras.ops.convert_to_tensor(LAM), PARTNERS, {})
    layer.engine.draw = lambda *args, **kwargs: draw
    out = layer(WithMask()([sequences(), MASK]), training=True)
    combined = keras.src.backend.get_keras_mask(out)
    return {"x": numpy(out).tolist(), "mask": numpy(combined).tolist()}


def _refusals():
    def bad_mask():
        layer = keras_mixup.MixupLayer()
        layer.call(sequences(), training=True, mask=np.ones((5, 5, 1)))

    try:
        bad_mask()
        return {"mask": None}
    except ValueError as error:
        return {"mask": str(error)}


def sequence_masks():
    """Everything above, as one JSON-able dict."""
    x = sequences()
    found = {"backend": keras.backend.backend()}
    for rule in ("union", "intersection", "anchor"):
        found[rule] = {"applied": _applied(rule, x, MASK)}
        found[rule]["injected"] = _injected(rule, x, MASK)
        found[rule]["lstm"] = _blind(rule, "lstm")
        found[rule]["attention"] = _blind(rule, "attention")
        found[rule]["loss"] = _trains(rule)
    found["anchor"]["step"] = anchor_step()
    found["anchor"]["inputs_only"] = _inputs_only_anchor()
    found["small"] = _small_batches()
    found["refusals"] = _refusals()
    return found
