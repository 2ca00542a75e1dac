"""`MixupLayer`: mixup inside a model, trained with plain `model.fit`.

The layer is also a mix point of `MixupModel(mix_at="latent")` (Manifold
Mixup). There the model tells each of its MixupLayers what to do in a
training step by setting the layer's `mix_step` attribute to a `MixStep`
for the length of the step (and to `MixStep.PASS` while the model is
called outside a step); with `mix_step` unset (`None`) the layer mixes on
its own.
"""

import keras

from keras_mixup import (
    backend,
    blending,
    checks,
    compat,
    draws,
    elements,
    options,
    sequences,
    variants,
)
from keras_mixup.holding import HoldsEngine
from keras_mixup.settings import Settings

__all__ = ["MixStep", "MixupLayer", "padding_of"]

#: The options a MixupLayer takes: all but `mix_labels` (the form of the
#: call decides: inputs only for a tensor, labels too for a dict).
LAYER_OPTIONS = tuple(
    name
    for name in options.OPTIONS
    if name != "mix_labels" and name not in options.MODEL_ONLY
)


def padding_of(owner, inputs, mask):
    """The one Keras mask of `inputs` (a padding mask, bool `[B, T]`), or
    `None`.

    Raises:
        ValueError: for masks on several inputs, or a mask that is not
            bool `[B, T]`.
    """
    masks = [m for m in keras.tree.flatten(mask) if m is not None]
    if not masks:
        return None
    if len(masks) > 1 or not backend.ops().core.is_tensor(inputs):
        raise ValueError(
            f"{owner} mixes padded sequences as one tensor [batch, time, "
            "...] with its Keras mask; received masks on the inputs "
            f"{elements.describe(inputs)}."
        )
    return sequences.check_padding_mask(masks[0], "mask")


@keras.saving.register_keras_serializable(package="keras_mixup")
class CallMask(keras.Operation):
    """The Keras mask a `MixupLayer`'s call set on its output: in a
    functional model, the mask the next layers receive (a functional graph
    replays the masks it was built with, and the combined mask of a mixing
    call depends on the draw, which `compute_mask` cannot know)."""

    def call(self, outputs):
        mask = compat.call_mask(outputs)
        if mask is None:  # a call that set no mask on its output
            shape = backend.ops().core.shape(outputs)[:2]
            mask = backend.ops().numpy.ones(shape, "bool")
        return mask

    def compute_output_spec(self, outputs):
        return keras.KerasTensor(outputs.shape[:2], "bool")

    def get_config(self):
        return {"name": self.name}


def _mask_from_call(inputs, outputs):
    """`outputs` of a symbolic call on a masked tensor: their mask made the
    `CallMask` of the call (what a functional graph replays)."""
    if not isinstance(outputs, keras.KerasTensor):
        return outputs
    if compat.get_keras_mask(outputs) is None or isinstance(inputs, dict):
        return outputs
    return compat.set_keras_mask(outputs, CallMask()(outputs))


#: The size given to unknown dimensions when JAX or PyTorch describe a
#: symbolic call (see `MixupLayer.compute_output_spec`); outputs of this
#: size are described as unknown.
_SPEC_SIZE = 37


class MixStep:
    """A MixupModel's instruction to one of its MixupLayers for one step.

    Args:
        engine: the model's `MixingEngine` (how to blend).
        draw: the step's `(lam, partner_index)`, or `None` to pass through.
        chosen: a scalar int tensor, the index of the step's mix point.
            Defaults to `None`.
        index: this layer's index among the mix points. Defaults to `None`.
    """

    def __init__(self, engine=None, draw=None, chosen=None, index=None):
        if draw is not None:
            draw = variants.as_draw(draw)
        self.engine = engine
        self.draw = draw
        self.chosen = chosen
        self.index = index
        #: Whether `apply` ran: the model checks, after the forward pass,
        #: that every chosen layer was called.
        self.applied = False
        #: After `apply` mixed padded sequences: each example's label
        #: weight under `mask_rule` (float32 `[B]`: lam' under `"anchor"`)
        #: where this point is chosen, else lam; `None` otherwise.
        self.label_weight = None

    def apply(self, inputs, mask=None):
        """`inputs` blended with the step's draw if this point is chosen,
        else unchanged (a `cond`: one trace serves every step). Padded
        sequences (a Keras `mask`, or a dict with a `"padding_mask"`) mix
        under `mask_rule`, and their label weight is kept in
        `label_weight`; with `mask`, returns `(inputs, mask)`."""
        if self.draw is None:
            return inputs if mask is None else (inputs, mask)
        self.applied = True
        checks.batch_size(inputs, self.draw[1])
        ops = backend.ops()
        chosen = ops.numpy.equal(self.chosen, self.index)
        if mask is None and not sequences.is_padded(inputs):
            lam, partner_index = self.draw[:2]
            fused = self.engine.options["fused"]
            return ops.core.cond(
                chosen,
                lambda: blending.blend(inputs, lam, partner_index, fused=fused),
                lambda: inputs,
            )
        given = inputs if mask is None else (inputs, mask)
        outputs, self.label_weight = ops.core.cond(
            chosen,
            lambda: self._mixed_padded(inputs, mask),
            lambda: (given, draws.per_example(*self.draw[:2])),
        )
        return outputs

    def _mixed_padded(self, inputs, mask):
        """`(outputs, label_weight)` of padded sequences mixed."""
        if mask is not None:
            mixed, mask, weight = sequences.mix_padded_inputs(
                self.engine, self.draw, inputs, mask
            )
            return (mixed, mask), weight
        rest, padding = sequences.split_dict(inputs, "inputs")
        rest, padding, weight = sequences.mix_padded_inputs(
            self.engine, self.draw, rest, padding
        )
        return {**rest, sequences.PADDING_MASK: padding}, weight


#: The instruction to pass through.
MixStep.PASS = MixStep()


@keras.saving.register_keras_serializable(package="keras_mixup")
class MixupLayer(HoldsEngine, keras.layers.Layer):
    """Mixes the batch inside a model while it trains (inputs-only mixup).

    While training, each example `x_i` becomes `lam_i * x_i + (1 - lam_i)
    * x_j` with lam_i ~ Beta(alpha + 1, alpha); the labels are untouched
    (mixup in expectation for cross-entropy). At inference it is the
    identity. On a dict `{"images": x, "labels": y}` it mixes both, like
    `keras.layers.MixUp`. See the guide "Mixing in the model".

    Args:
        alpha: the Beta concentration (> 0). Defaults to `0.2`.
        seed: an int for reproducible draws, or `None`. Defaults to `None`.
        prob: the chance a training batch is mixed. Defaults to `1.0`.
        {options}
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: a batch-first tensor (or tuple or list) of rank >= 1 (a
            Keras mask of padded sequences mixes under `mask_rule`), a
            dict with `"images"` (or `"inputs"`) and `"labels"`.
        training: whether the model is training. Defaults to `None`
            (inference for a tensor, training for a dict).

    Returns:
        The inputs, mixed while training; a dict for the dict form.

    Raises:
        ValueError: for an invalid option; for a dict without `"labels"`
            or with other keys, integer labels without `num_classes`, and
            string, ragged or scalar inputs.

    Example:

    ```python
    layer = keras_mixup.MixupLayer(alpha=0.2, seed=0)
    x = np.random.rand(64, 8).astype("float32")
    assert np.array_equal(layer(x), x)  # identity at inference
    assert not np.array_equal(layer(x, training=True), x)
    mixed = layer({"images": x, "labels": np.eye(3)[np.arange(64) % 3]})
    assert mixed["labels"].shape == (64, 3)
    ```
    """

    def __init__(self, alpha=0.2, seed=None, prob=1.0, **kwargs):
        named = {"alpha": alpha, "seed": seed, "prob": prob}
        self.hold_engine("MixupLayer", LAYER_OPTIONS, named, kwargs)
        #: Set by a `MixupModel` around its steps and calls; `None`: the
        #: layer mixes on its own.
        self.mix_step = None
        self.supports_masking = True
        # Only the inputs are cast to the compute dtype (in `call`): Keras'
        # autocast would also round the dict form's float labels to float16
        # under a mixed policy.
        self.autocast = False
        self.built = True

    def __call__(self, inputs, *args, **kwargs):
        if backend.keras_backend() != "tensorflow" and compat.in_tf_graph():
            # In tf.data under JAX or PyTorch: mix the TensorFlow tensors.
            with compat.inputs_as_given(self):
                return super().__call__(inputs, *args, **kwargs)
        if backend.keras_backend() == "torch":  # eager: skip what does nothing
            training = compat.direct_call_training(self, inputs, args, kwargs)
            if training is not compat.KERAS_CALL:
                return self.call(inputs, training=training)
        outputs = super().__call__(inputs, *args, **kwargs)
        return _mask_from_call(inputs, outputs)

    def call(self, inputs, training=None, mask=None):
        """Mixes `inputs` while training; see the class docstring."""
        if sequences.is_padded(inputs):
            return self._mix_padded(inputs, training)
        if isinstance(inputs, dict):
            return self._mix_dict(inputs, training)
        inputs = keras.tree.map_structure(self._to_compute_dtype, inputs)
        mask = padding_of(self.name, inputs, mask)
        if self.mix_step is not None:
            if mask is None:
                return self.mix_step.apply(inputs)
            return compat.set_keras_mask(*self.mix_step.apply(inputs, mask))
        if mask is None and not training:
            return inputs
        if mask is None:
            mixed, _, _ = self.engine.mix(inputs, inputs_only=True)
            return mixed
        if not training:
            return compat.set_keras_mask(inputs, mask)
        x, _, _, size = checks.check_batch(inputs)
        draw = self.engine.draw(size, x, inputs_only=True)
        mixed, _, _, mask = self.engine.apply_padded(
            draw, x, mask, mix_labels=False
        )
        return compat.set_keras_mask(mixed, mask)

    def _mix_padded(self, data, training):
        """A dict of inputs with a `"padding_mask"` (and `"labels"`, mixed
        too when given): inputs only, labels untouched, otherwise."""
        if self.mix_step is not None:
            return self.mix_step.apply(data)
        if not training and (training is not None or "labels" not in data):
            return dict(data)
        x = {k: v for k, v in data.items() if k != elements.LABELS_KEY}
        y = data.get(elements.LABELS_KEY)
        x, y, _ = self.engine.mix(x, y, inputs_only=y is None)
        return x if y is None else {**x, elements.LABELS_KEY: y}

    def _mix_dict(self, data, training):
        if training is False:  # checked as a mixing call is (in mix_dict)
            elements.split_dict(data, "MixupLayer")
            return dict(data)
        return elements.mix_dict(
            self.engine, data, "MixupLayer", prepare=self._to_compute_dtype
        )

    def _to_compute_dtype(self, tensor):
        """Casts a numeric tensor to the compute dtype (what Keras' autocast
        does for floats, and integers too); others pass to the checks."""
        tensor = checks.to_tensor(tensor)
        dtype = backend.dtype_name(tensor)
        if dtype != self.compute_dtype and ("float" in dtype or "int" in dtype):
            return backend.ops().core.cast(tensor, self.compute_dtype)
        return tensor

    def compute_output_spec(self, inputs, training=None, mask=None):
        """The output's structure, shapes and dtypes for a symbolic call
        (a functional model). JAX and PyTorch cannot draw for symbolic
        tensors, whose batch size is unknown: the call runs on a small
        batch of zeros, in a `keras.StatelessScope` (so no draw is taken
        from the seed stream), and its outputs are described with the
        unknown dimensions unknown again."""
        if backend.keras_backend() == "tensorflow":
            return super().compute_output_spec(
                inputs, training=training, mask=mask
            )
        ops = backend.ops()
        zeros = keras.tree.map_structure(
            lambda t: ops.numpy.zeros(
                [_SPEC_SIZE if d is None else d for d in t.shape], t.dtype
            ),
            inputs,
        )
        if all(m is None for m in keras.tree.flatten(mask)):
            mask = None  # a dict of inputs none of which carries a mask
        if mask is not None:
            mask = keras.tree.map_structure(
                lambda m: (
                    None
                    if m is None
                    else ops.numpy.ones(
                        [_SPEC_SIZE if d is None else d for d in m.shape],
                        "bool",
                    )
                ),
                mask,
            )
        with keras.StatelessScope():
            outputs = self.call(zeros, training=training, mask=mask)
        return keras.tree.map_structure(
            lambda t: keras.KerasTensor(
                [None if d == _SPEC_SIZE else d for d in t.shape],
                backend.dtype_name(t),
            ),
            outputs,
        )

    def compute_mask(self, inputs, mask=None):
        """The input mask, passed through: the output's mask where the
        layer does not mix. A mixing call sets the combined mask of
        `mask_rule` on its output itself (it depends on the partners,
        which `compute_mask` cannot know)."""
        return mask

    def get_config(self):
        """Returns the constructor arguments (the options, base args)."""
        return {**super().get_config(), **self.engine.settings.get_config()}

    @classmethod
    def from_config(cls, config):
        return cls(**Settings.options_from_config(config))


MixupLayer.__doc__ = options.document_options(
    MixupLayer.__doc__,
    [n for n in LAYER_OPTIONS if n not in ("alpha", "seed", "prob")],
)
