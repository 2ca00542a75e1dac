"""`MixupLayer`: mixup inside a model, trained with plain `model.fit`.

The layer also serves as a mix point for `MixupModel(mix_at="latent")`
(Manifold Mixup). There, the model's training step decides, once per step,
where the batch is mixed and with which lam and partners, and publishes that
decision as a `MixingPlan` for the duration of the step's trace; every
`MixupLayer` reached by the forward pass reads the plan instead of drawing
its own. The plan holds tensors, so one trace serves every step (no
retracing), also under `jit_compile=True`.
"""

import contextlib
import threading

import keras
import tensorflow as tf

from keras_mixup import mixing
from keras_mixup.data import Mixup

#: Keys accepted for the inputs of the dict form (`"images"` as in
#: `keras.layers.MixUp`).
INPUT_KEYS = ("inputs", "images")
LABELS_KEY = "labels"

_plans = threading.local()


def _as_float(tensor, dtype):
    """Casts an integer tensor to `dtype`; other tensors pass unchanged."""
    tensor = tf.convert_to_tensor(tensor)
    if tensor.dtype.is_integer:
        return tf.cast(tensor, dtype)
    return tensor


class MixingPlan:
    """One training step's decision of where and how to mix.

    Built by `MixupModel.train_step` and made current with `mixing_plan`
    while the model is traced for that step.

    Args:
        lam: float32 tensor `[B]`, the step's lam.
        partner_index: int32 tensor `[B]`, the step's partners.
        point: scalar int32 tensor, the index of the chosen mix point.
        layer_points: dict from `id(layer)` of each candidate `MixupLayer` to
            its mix point index. MixupLayers not in it pass through.
    """

    def __init__(
        self, lam=None, partner_index=None, point=None, layer_points=None
    ):
        self.lam = lam
        self.partner_index = partner_index
        self.point = point
        self.layer_points = dict(layer_points or {})
        #: ids of the candidate layers the traced forward pass reached.
        self.reached = set()

    def blend_at(self, index, structure):
        """Returns `structure` blended if `index` is this step's point.

        Integer tensors are cast to the Keras compute dtype first, so both
        branches agree on dtypes.
        """
        dtype = keras.config.dtype_policy().compute_dtype
        structure = tf.nest.map_structure(
            lambda t: _as_float(t, dtype), structure
        )
        mixing.batch_size(structure, self.partner_index)
        return tf.cond(
            tf.equal(self.point, index),
            lambda: mixing.blend(structure, self.lam, self.partner_index),
            lambda: structure,
        )

    def apply(self, layer, inputs):
        """What `layer` outputs under this plan: `inputs`, blended or not."""
        index = self.layer_points.get(id(layer))
        if index is None:
            return inputs
        self.reached.add(id(layer))
        return self.blend_at(index, inputs)


@contextlib.contextmanager
def mixing_plan(plan):
    """Makes `plan` current for the `MixupLayer`s called in the block."""
    stack = _plans.__dict__.setdefault("stack", [])
    stack.append(plan)
    try:
        yield plan
    finally:
        stack.pop()


def current_plan():
    """The innermost active `MixingPlan`, or `None`."""
    stack = getattr(_plans, "stack", None)
    return stack[-1] if stack else None


@keras.saving.register_keras_serializable(package="keras_mixup")
class MixupLayer(keras.layers.Layer):
    """Mixes the batch inside a model while it trains (inputs-only mixup).

    Put it at the input, or after any hidden layer, of any model trained
    with plain `model.compile` / `model.fit`. While training, each example
    `x_i` of the batch becomes `lam_i * x_i + (1 - lam_i) * x_j`, with `j`
    a random partner from the same batch and lam_i ~ Beta(alpha + 1, alpha);
    the labels are left untouched. At inference (`predict`, `evaluate`, or
    `training` false or unset) the layer is the identity.

    For a loss linear in the label (cross-entropy, binary cross-entropy)
    this is mixup, in expectation. Write the mixup loss
    `E[lam * l(f(x~), y_i) + (1 - lam) * l(f(x~), y_j)]` with
    `x~ = lam * x_i + (1 - lam) * x_j` and lam ~ Beta(alpha, alpha). In the
    second term swap the roles of i and j (both run over the same batch)
    and replace lam by 1 - lam (Beta(alpha, alpha) is symmetric): it
    becomes the first term. So the loss is `E[2 * lam * l(f(x~), y_i)]`,
    and `2 * lam * Beta(alpha, alpha)` is exactly the density of
    Beta(alpha + 1, alpha) (the factor 2 is 1 / E[lam]). Hence training on
    `(x~, y_i)` with lam ~ Beta(alpha + 1, alpha) has the same expected
    loss and gradient, and the partner's label is never needed. This does
    not hold for losses that are not linear in the label, such as mean
    squared error: there, mix the labels too (`keras_mixup.Mixup` in the
    input pipeline, or `keras_mixup.MixupModel`).

    Called directly on a dict `{"inputs": x, "labels": y}` (`"images"` is
    accepted for `"inputs"`), the layer mixes both inputs and float labels
    with the same lam ~ Beta(alpha, alpha) and partners, like
    `keras.layers.MixUp`; as for that layer, `training` defaults to true
    in this form (`training=False` passes the dict through), so it can be
    mapped over a batched `tf.data.Dataset`.

    Inside `keras_mixup.MixupModel`, the model decides: with
    `mix_at="latent"` the layer is one of the step's candidate mix points
    (Manifold Mixup) and mixes only when chosen, with the step's lam and
    partners; otherwise it passes through.

    Args:
        alpha: the Beta concentration, a finite number > 0. Defaults to
            `0.2`.
        seed: an int for a reproducible stream of lam and partners, or
            `None`. Defaults to `None`.
        prob: the probability that a training batch is mixed at all, in
            [0, 1]; an unmixed batch passes through unchanged. Defaults to
            `1.0`.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: a batch-first tensor (or a tuple or list of them) of rank
            >= 1; or a dict with `"inputs"` (or `"images"`) and `"labels"`
            (float labels: one-hot, soft or multi-label). Integer inputs
            are cast to the layer's compute dtype.
        training: whether the model is training. Defaults to `None`
            (inference for a tensor, training for a dict).

    Returns:
        The inputs, mixed while training; a dict with the same keys for the
        dict form.

    Raises:
        ValueError: at construction for an invalid `alpha`, `seed` or
            `prob`; at
            call time for a dict without `"labels"` or with other keys, for
            integer labels in the dict form, and for string, ragged or
            scalar inputs.

    Example:

    ```python
    model = keras.Sequential([
        keras.Input((8,)),
        keras_mixup.MixupLayer(alpha=0.2, seed=1),
        keras.layers.Dense(16, activation="relu"),
        keras_mixup.MixupLayer(alpha=0.2, seed=2),
        keras.layers.Dense(3, activation="softmax"),
    ])
    model.compile("adam", "sparse_categorical_crossentropy")
    x = np.random.rand(64, 8).astype("float32")
    y = np.random.randint(0, 3, size=64)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)

    layer = keras_mixup.MixupLayer(alpha=0.2, seed=0)
    assert np.array_equal(layer(x), x)  # identity at inference
    assert not np.array_equal(layer(x, training=True), x)
    mixed = layer({"images": x, "labels": np.eye(3)[y]})
    assert mixed["labels"].shape == (64, 3)
    ```
    """

    def __init__(self, alpha=0.2, seed=None, prob=1.0, **kwargs):
        super().__init__(**kwargs)
        self.mixup = Mixup(alpha, seed=seed, prob=prob)
        self.alpha = self.mixup.alpha
        self.prob = self.mixup.prob
        self.seed = seed
        self.supports_masking = True
        self.built = True

    @property
    def mixing_state(self):
        """The switch and alpha a `keras_mixup.MixupSchedule` changes."""
        return self.mixup.mixing_state

    def call(self, inputs, training=None):
        """Mixes `inputs` while training; see the class docstring."""
        if isinstance(inputs, dict):
            return self._mix_dict(inputs, training)
        inputs = tf.nest.map_structure(
            lambda t: _as_float(t, self.compute_dtype), inputs
        )
        plan = current_plan()
        if plan is not None:
            return plan.apply(self, inputs)
        if not training:
            return inputs
        inputs = mixing.check_structure(inputs, "inputs")
        size = mixing.batch_size(inputs)
        lam, partner_index = self.mixup.draw(size, inputs, inputs_only=True)
        return mixing.blend(inputs, lam, partner_index)

    def _mix_dict(self, data, training):
        input_keys = [key for key in INPUT_KEYS if key in data]
        unknown = sorted(set(data) - {*INPUT_KEYS, LABELS_KEY}, key=str)
        if len(input_keys) != 1 or LABELS_KEY not in data or unknown:
            raise ValueError(
                "A dict passed to MixupLayer must hold exactly one of "
                f"{INPUT_KEYS} and {LABELS_KEY!r} (float labels), and no "
                f"other key; received keys {sorted(data, key=str)}. Call the "
                "layer on a tensor for the inputs-only form."
            )
        key = input_keys[0]
        if training is False:
            return dict(data)
        labels = tf.convert_to_tensor(data[LABELS_KEY])
        if not labels.dtype.is_floating:
            raise ValueError(
                "MixupLayer blends float labels (one-hot, soft or "
                "multi-label); received labels of dtype "
                f"{labels.dtype.name} and shape {labels.shape}. One-hot "
                "encode them first, or map keras_mixup.Mixup(num_classes=...) "
                "over the dataset."
            )
        inputs, labels, _ = self.mixup.mix(data[key], labels)
        return {key: inputs, LABELS_KEY: labels}

    def compute_mask(self, inputs, mask=None):
        """Passes the input mask through."""
        return mask

    def get_config(self):
        """Returns the constructor arguments (`alpha`, `seed`, `prob`, base
        args)."""
        config = super().get_config()
        config.update(
            {"alpha": self.alpha, "seed": self.seed, "prob": self.prob}
        )
        return config
