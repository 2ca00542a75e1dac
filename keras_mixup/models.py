"""`MixupModel`: a model wrapper whose training step mixes, at the input or
at hidden layers (Manifold Mixup)."""

import contextlib
import contextvars
import copy
import warnings

import keras

from keras_mixup import (
    backend,
    compat,
    draws,
    model_steps,
    options,
    sequences,
    variants,
)
from keras_mixup.holding import HoldsEngine
from keras_mixup.layers import MixStep, MixupLayer
from keras_mixup.loss_mixing import LossMixing, check_loss, encode_targets
from keras_mixup.regmixup import RegMixup
from keras_mixup.settings import Settings

__all__ = [
    "MixupModel",
    "StepPlan",
    "find_mixup_layers",
    "resolve_mix_points",
]

INPUT = "input"
LATENT = "latent"

#: The options a MixupModel takes: all but `mix_labels` (it mixes labels,
#: or with `mix_loss` the loss) and those of keras's dict elements, which
#: its steps never see.
MODEL_OPTIONS = tuple(
    name
    for name in options.OPTIONS
    if name not in ("mix_labels", "bounding_box_format", "min_box_visibility")
)


def _walk(layer, found):
    """Appends every layer inside `layer` to `found`, depth first, once."""
    for sublayer in compat.sublayers(layer):
        if not any(sublayer is seen for seen in found):
            found.append(sublayer)
            _walk(sublayer, found)
    return found


def find_mixup_layers(model):
    """Every `MixupLayer` inside `model`, nested models and layers included,
    in depth-first order of the model's layers."""
    return [
        layer for layer in _walk(model, []) if isinstance(layer, MixupLayer)
    ]


def _named_point(model, name, names):
    """The MixupLayer `mix_at` names `name`, or a clear error."""
    matches = [layer for layer in _walk(model, []) if layer.name == name]
    if not matches:
        raise ValueError(
            f"`mix_at` names {name!r}, but the model has no layer of "
            f"that name. MixupLayers in the model: {names}."
        )
    if len(matches) > 1:
        raise ValueError(
            f"`mix_at` names {name!r}, which {len(matches)} layers of "
            "the model share; give the MixupLayers unique names."
        )
    if not isinstance(matches[0], MixupLayer):
        raise ValueError(
            f"`mix_at` names {name!r}, a {type(matches[0]).__name__} "
            "layer; only MixupLayers (and 'input') are mix points. "
            f"MixupLayers in the model: {names}."
        )
    return matches[0]


def _check_mix_at_form(mix_at, names):
    if isinstance(mix_at, str) and mix_at not in (INPUT, LATENT):
        raise ValueError(
            f"`mix_at` must be 'input', 'latent' or a list of MixupLayer "
            f"names (optionally with 'input'); received {mix_at!r}. "
            f"MixupLayers in the model: {names}."
        )
    if isinstance(mix_at, str):
        return
    if (
        not isinstance(mix_at, (list, tuple))
        or not mix_at
        or not all(isinstance(name, str) for name in mix_at)
    ):
        raise ValueError(
            f"`mix_at` must be 'input', 'latent' or a non-empty list of "
            f"MixupLayer names (optionally with 'input'); received "
            f"{mix_at!r}. MixupLayers in the model: {names}."
        )
    if len(set(mix_at)) != len(mix_at):
        raise ValueError(f"`mix_at` names a point twice: {list(mix_at)}.")


def resolve_mix_points(model, mix_at):
    """Validates `mix_at` and returns the mix points it names, in model
    order: `"input"` and/or `MixupLayer` objects.

    Raises:
        ValueError: for an unknown value, a name no layer has, a layer that
            is not a MixupLayer, an ambiguous or repeated name, or
            `"latent"` on a model without MixupLayers.
    """
    mixup_layers = find_mixup_layers(model)
    names = [layer.name for layer in mixup_layers]
    _check_mix_at_form(mix_at, names)
    if mix_at == INPUT:
        return [INPUT]
    if mix_at == LATENT:
        if not mixup_layers:
            raise ValueError(
                "`mix_at='latent'` mixes at the input or at a "
                "MixupLayer inside the model, but the model has no "
                "MixupLayer: add keras_mixup.MixupLayer() after the "
                "hidden layers to mix at, or use `mix_at='input'`."
            )
        return [INPUT, *mixup_layers]
    chosen = [_named_point(model, n, names) for n in mix_at if n != INPUT]
    layers = [
        layer for layer in mixup_layers if any(layer is c for c in chosen)
    ]
    return [INPUT, *layers] if INPUT in mix_at else layers


def _check_at_input(mixing, mix_at):
    """Refuses cutting variants at hidden layers: they cut input images.

    Raises:
        ValueError: for a variant that cuts with a `mix_at` other than
            `"input"`.
    """
    if mixing.variant.spatial and mix_at != INPUT:
        raise ValueError(
            f"variant={mixing.options['variant']!r} cuts input images, so "
            "a MixupModel with it mixes at the input only: use mix_at="
            f'"input"; received mix_at={mix_at!r}.'
        )


#: Set while `MixupModel.from_config` builds a model: files saved before
#: `_refuse_layer_options` existed load, warning.
_LOADING = contextvars.ContextVar("loading", default=False)


def _refuse_layer_options(layers, mixing):
    """Refuses what a MixupModel would silently ignore: an option of one of
    its MixupLayers that the model takes, set to neither the layer's
    default nor the model's value (the model mixes at the layers `mix_at`
    picks with its own options and passes the others through; a layer's
    `seed` only seeds its own use outside the model). A model being loaded
    from a file saved before this check only warns.

    Raises:
        ValueError: naming the layer, the option and both values.
    """
    for layer in layers:
        own = layer.engine.options
        for name in layer.engine.settings.saved_names:
            if name == "seed" or name not in MODEL_OPTIONS:
                continue
            default = options.OPTIONS[name].default
            if own[name] == default or own[name] == mixing.options[name]:
                continue
            message = (
                f"A MixupModel mixes at its MixupLayers with its own options "
                f"and passes the others through, so MixupLayer "
                f"{layer.name!r}'s {name}={own[name]!r} would not be used "
                f"(the MixupModel's {name} is {mixing.options[name]!r}). Set "
                f"{name} on the MixupModel, and leave the layer's at its "
                f"default ({default!r})."
            )
            if not _LOADING.get():
                raise ValueError(message)
            warnings.warn(message, stacklevel=3)


class StepPlan:
    """One training step's mixing, as `MixupModel.mix` draws it.

    Attributes:
        lam: float32 `[B]` (`[]` in `"batch"` mode), the step's label
            weight (for a padded dict at the input, the rule's), or `None`
            in `"input"` mode without loss mixing (where `mix` has already
            mixed the whole batch).
        partner_index: int32 `[B]`, the step's partners, or `None`.
        point: scalar int32 tensor, the index of the chosen mix point in
            `MixupModel.mix_points`, or `None`.
        layer_steps: one `keras_mixup.layers.MixStep` per MixupLayer of the
            wrapped model: what the model tells each layer for the step.
        input_step: the `MixStep` of the input point in latent modes, or
            `None`.
        deferred: whether the labels are mixed after the forward pass, with
            the weights the mix points found there (`label_weight`): under
            `mask_rule="anchor"` in latent modes.
        rows: with RegMixup, the number of mixed rows of the joined batch
            the step trains on, else `None`.
    """

    def __init__(
        self,
        layer_steps,
        draw=None,
        point=None,
        *,
        input_step=None,
        deferred=False,
    ):
        self.layer_steps = layer_steps
        self.lam, self.partner_index = draw[:2] if draw else (None, None)
        self.point = point
        self.input_step = input_step
        self.deferred = deferred
        self.rows = None

    def label_weight(self):
        """Each example's label weight, float32 `[B]`: lam, or where the
        chosen point mixed padded sequences, the weight their mask rule
        gave (lam' under `"anchor"`), known once the forward pass ran."""
        ops = backend.ops()
        weight = draws.per_example(self.lam, self.partner_index)
        size = ops.core.shape(self.partner_index)[0]
        for step in [self.input_step, *self.layer_steps]:
            if step is None or step.label_weight is None:
                continue
            chosen = ops.numpy.equal(step.chosen, step.index)
            found = step.label_weight[:size]  # RegMixup: the mixed rows
            weight = ops.numpy.where(chosen, found, weight)
        return weight


class _MixPoints:
    """Holds the mix points and the model's MixupLayers out of Keras' layer
    tracking (the layers are already tracked through the wrapped model)."""

    def __init__(self, points, layers):
        self.points = points
        self.layers = layers

    @contextlib.contextmanager
    def instructing(self, steps):
        """Sets each MixupLayer's `mix_step` for the block, then restores
        it. `steps` lists one `MixStep` per layer of `layers`;
        `None` keeps a step already set (the model called inside its own
        training step) and makes the others pass through."""
        layers = self.layers
        before = [layer.mix_step for layer in layers]
        if steps is None:
            steps = [b if b is not None else MixStep.PASS for b in before]
        for layer, step in zip(layers, steps, strict=True):
            layer.mix_step = step
        try:
            yield
        finally:
            for layer, step in zip(layers, before, strict=True):
                layer.mix_step = step

    def check_applied(self, steps):
        """Refuses a step whose chosen MixupLayers were never called."""
        missed = [
            layer.name
            for layer, step in zip(self.layers, steps, strict=True)
            if step.draw is not None and not step.applied
        ]
        if missed:
            raise ValueError(
                f"`mix_at` includes the MixupLayers {missed}, but the "
                "forward pass never called them, so the labels would be "
                "mixed without the inputs. Call them in the model, or leave "
                "them out of `mix_at`."
            )


@keras.saving.register_keras_serializable(package="keras_mixup")
@backend.not_converted_methods("mix", "train_step", "test_step")
class MixupModel(HoldsEngine, keras.Model):
    """Wraps a model so that its training step mixes (mixup, Manifold Mixup).

    Only the training step mixes. `mix_at="latent"` mixes at one point drawn
    among the input and every `MixupLayer` inside; integer labels are one-hot
    (categorical loss), or with `mix_loss=True` the loss is mixed, not the
    labels. See the guide "Mixing in the model" (saving, resuming, errors).

    Args:
        model: the `keras.Model` to train (any kind, any inputs).
        alpha: the Beta concentration (> 0). Defaults to `0.2`.
        num_classes: the classes, for integer labels. Defaults to `None`.
        mix_at: `"input"`, `"latent"`, or a list of MixupLayer names
            (optionally with `"input"`). Defaults to `"input"`.
        seed: an int for reproducible draws, or `None`. Defaults to `None`.
        {options}
        **kwargs: base model arguments (`name`, ...).

    Call arguments:
        inputs: the wrapped model's inputs.
        training: passed to the wrapped model. Defaults to `None`.

    Returns:
        The wrapped model's outputs, never mixed.

    Raises:
        ValueError: for a non-Keras `model`, a bad option or `mix_at`, a
            sparse loss without `mix_loss`, or invalid labels in a step.

    Example:

    ```python
    model = keras_mixup.MixupModel(keras.Sequential([
        keras.Input((8,)), keras_mixup.MixupLayer(name="mix_hidden"),
        keras.layers.Dense(3, activation="softmax")]),
        alpha=2.0, num_classes=3, mix_at="latent", seed=1)
    model.compile("adam", "categorical_crossentropy")
    model.fit(np.random.rand(64, 8), np.arange(64) % 3, verbose=0)
    assert model.mix_points == ["input", "mix_hidden"]
    ```
    """

    def __init__(
        self,
        model,
        alpha=0.2,
        num_classes=None,
        mix_at="input",
        seed=None,
        **kwargs,
    ):
        if not isinstance(model, keras.Model):
            raise ValueError(
                "`model` must be a keras.Model (Sequential, functional or "
                f"subclassed); received {model!r} of type "
                f"{type(model).__name__}."
            )
        _check_not_inputs_only(kwargs)
        points = resolve_mix_points(model, mix_at)
        named = {"alpha": alpha, "num_classes": num_classes, "seed": seed}
        self.hold_engine("MixupModel", MODEL_OPTIONS, named, kwargs)
        _check_at_input(self.engine, mix_at)
        _refuse_layer_options(find_mixup_layers(model), self.engine)
        self.model = model
        self.mix_at = mix_at if isinstance(mix_at, str) else list(mix_at)
        self._mix_points = _MixPoints(points, find_mixup_layers(model))
        self._regmixup = RegMixup(self.engine.options["clean_loss_weight"])
        self._loss_mixing = LossMixing(self.engine.options["mix_loss"])

    def _described(self):
        """The repr: the wrapped model's name, `mix_at` and the options."""
        name, options = super()._described()
        return [
            name,
            f"model={self.model.name!r}",
            f"mix_at={self.mix_at!r}",
            options,
        ]

    @property
    def mix_points(self):
        """The names of the points a step may mix at, in model order."""
        return [p if p == INPUT else p.name for p in self._mix_points.points]

    def compile(self, optimizer="rmsprop", loss=None, **kwargs):
        """`keras.Model.compile`, refusing the losses the model cannot
        train with.

        Raises:
            ValueError: for a sparse or CTC loss without `mix_loss` (labels
                are mixed, so they are one-hot: use a categorical loss, or
                mix the loss); with `mix_loss`, for such a loss with
                `num_classes` set, or the reduction
                `"mean_with_sample_weight"`.
        """
        options = self.engine.options
        check_loss(
            loss,
            mix_loss=options["mix_loss"],
            num_classes=options["num_classes"],
        )
        self._loss_mixing.compiled_with(loss)
        super().compile(optimizer=optimizer, loss=loss, **kwargs)

    def compile_from_config(self, config):
        """Compiles the model as `get_compile_config` recorded it: what
        `keras.saving.load_model` calls, so that a loaded model resumes
        `fit` (the optimizer's variables are built here, for the file's
        values to load into).

        Args:
            config: the dict `get_compile_config` returned.
        """
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        if self.built:
            self.optimizer.build(self.trainable_variables)

    def call(self, inputs, training=None):
        """Calls the wrapped model; never mixes, even with `training=True`
        (its MixupLayers pass through unless a training step picks them)."""
        with self._mix_points.instructing(None):
            return self.model(inputs, training=training)

    def mix(self, x, y=None, sample_weight=None):
        """Draws and applies one training step's mixing.

        In `"input"` mode the batch is mixed here. In latent modes the
        labels and weights are mixed here, the inputs only if the step
        picked the input, and the returned steps tell the MixupLayers what
        to do in the forward pass. With `mix_loss`, labels and weights
        come back unmixed, and the plan's lam and partners weigh the loss.
        Under `mask_rule="anchor"` in latent modes, labels and weights come
        back unmixed too: the model mixes them after the forward pass,
        with the label weights the mix points found (`StepPlan.deferred`).

        Args:
            x: the batch's inputs (any structure the wrapped model takes).
            y: the labels, or `None`. Defaults to `None`.
            sample_weight: per-example weights, or `None`. Defaults to
                `None`.

        Returns:
            `(x, y, sample_weight, plan)`: labels come back as floats
            (integer ids one-hot encoded; with `mix_loss` and no
            `num_classes`, as given), `None` entries stay `None`, and
            `plan` is the step's `StepPlan`.
        """
        layers = self._mix_points.layers
        if self.mix_at == INPUT and not self._loss_mixing.enabled:
            x, y, sample_weight = self.engine.mix(x, y, sample_weight)
            return x, y, sample_weight, StepPlan([MixStep.PASS] * len(layers))
        x, y, sample_weight, size = self.engine.check_batch(x, y, sample_weight)
        draw = self.engine.draw(size, x, y)
        x, plan = _mix_inputs(self, draw, x)
        if self._loss_mixing.enabled or plan.deferred:
            y, sample_weight = self._loss_mixing.targets(
                self.engine, y, sample_weight
            )
        else:  # labels and weights: an empty structure for the inputs
            _, y, sample_weight = self.engine.apply(draw, (), y, sample_weight)
        return x, y, sample_weight, plan

    def train_step(self, *args):
        """Mixes the batch (see `mix`), then runs Keras' training step on
        it (with `clean_loss_weight` > 0, on the mixed and the clean batch
        joined: see `keras_mixup.regmixup`; with `mix_loss`, on the
        unmixed labels, the loss mixed: see `keras_mixup.loss_mixing`). On
        JAX, Keras' stateless step `train_step(state, data)` (see
        `keras_mixup.model_steps.stateless_train_step`)."""
        if backend.keras_backend() == "jax":
            return model_steps.stateless_train_step(
                self, super().train_step, *args
            )
        (data,) = args
        batch, plan = self._step_batch(data)
        with training_on(self, plan):
            logs = super().train_step(batch)
        self._mix_points.check_applied(plan.layer_steps)
        return logs

    def _step_batch(self, data):
        """The batch a training step trains on and its `StepPlan` (the
        MixupLayers' instructions and RegMixup's mixed rows set for it)."""
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        clean = (x, y, sample_weight)
        x, y, sample_weight, plan = self.mix(x, y, sample_weight)
        encode = self._loss_mixing.encoder(self.engine)
        batch, plan.layer_steps, plan.rows = self._regmixup.join(
            (x, y, sample_weight), clean, plan.layer_steps, encode
        )
        return batch, plan

    @property
    def metrics(self):
        """The compiled metrics and, with RegMixup, the trackers of
        `mixed_loss` and `clean_loss` (reported by training steps only)."""
        return [*super().metrics, *self._regmixup.trackers]

    def make_train_function(self, force=False):
        """Keras' train function; on JAX it raises the `ValueError` for a
        class id out of range (see `keras_mixup.model_steps`), with the
        model's variables back in place, unchanged by the refused batch."""
        super().make_train_function(force)
        self.train_function = model_steps.raising_label_errors(
            self, self.train_function
        )

    def test_step(self, *args):
        """Keras' test step (nothing is mixed); on JAX, with class ids
        out of range reported as in `train_step`."""
        if backend.keras_backend() != "jax":
            return super().test_step(*args)
        return model_steps.stateless_test_step(self, super().test_step, *args)

    def make_test_function(self, force=False):
        """Keras' test function; on JAX it raises for a class id out of
        range, as `make_train_function`'s does."""
        super().make_test_function(force)
        self.test_function = model_steps.raising_label_errors(
            self, self.test_function, training=False
        )

    def compute_loss(
        self,
        x=None,
        y=None,
        y_pred=None,
        sample_weight=None,
        training=True,
    ):
        """The compiled loss, with integer labels one-hot encoded; in a
        loss-mixing step, `lam * L(y) + (1 - lam) * L(y[p])`; in a
        RegMixup step, `mixed loss + clean_loss_weight * clean loss`."""
        batch = (self._targets(y), y_pred, sample_weight)
        return _step_loss(self, x, batch, training)

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        """The compiled metrics, with integer labels one-hot encoded (in a
        RegMixup step, on the mixed rows; in a loss-mixing step, on the
        labels and weights of the source each mixed example holds most
        of: see `keras_mixup.loss_mixing.LossMixing.metrics_targets`)."""
        y, y_pred, sample_weight = self._regmixup.metrics_rows(
            self._targets(y), y_pred, sample_weight
        )
        y, sample_weight = self._loss_mixing.mixed_labels(
            self.engine, y, sample_weight
        )
        y, sample_weight = self._loss_mixing.metrics_targets(y, sample_weight)
        logs = super().compute_metrics(
            x, y, y_pred, sample_weight=sample_weight
        )
        return self._regmixup.logs(logs)

    def _targets(self, y):
        """Labels as the compiled loss and metrics see them."""
        return encode_targets(
            y,
            self.engine.options["num_classes"],
            keep_ids=self._loss_mixing.enabled,
        )

    def get_config(self):
        """Returns the constructor arguments, the wrapped model serialized."""
        return {
            **super().get_config(),
            "model": keras.saving.serialize_keras_object(self.model),
            "mix_at": self.mix_at,
            **self.engine.settings.get_config(),
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        return _from_config(cls, config, custom_objects)


def _from_config(cls, config, custom_objects):
    """`MixupModel.from_config`."""
    # Keras' deserialization consumes the nested dicts: work on a copy.
    config = copy.deepcopy(config)
    config["model"] = keras.saving.deserialize_keras_object(
        config["model"], custom_objects=custom_objects
    )
    token = _LOADING.set(True)
    try:
        return cls(
            **Settings.options_from_config(config, accepted=MODEL_OPTIONS)
        )
    finally:
        _LOADING.reset(token)


@contextlib.contextmanager
def training_on(model, plan):
    """The block of Keras' training step on the batch of `plan`: the
    MixupLayers instructed, RegMixup's rows and the loss's draw set."""
    with (
        model._mix_points.instructing(plan.layer_steps),
        model._regmixup.training(plan.rows),
        model._loss_mixing.training(plan),
    ):
        yield


def _step_loss(model, x, batch, training):
    """`MixupModel.compute_loss` on `(y, y_pred, sample_weight)`, the
    labels encoded: Keras' loss (the compiled loss plus the model's own
    losses), mixed in a loss-mixing step, joined with the clean loss in a
    RegMixup step."""

    def model_loss(y, y_pred, sample_weight):
        return super(MixupModel, model).compute_loss(
            x, y, y_pred, sample_weight, training=training
        )

    def compiled_loss(y, y_pred, sample_weight):
        return compat.compiled_loss(model, y, y_pred, sample_weight)

    def mixed_loss(y, y_pred, sample_weight):
        y, sample_weight = model._loss_mixing.mixed_labels(
            model.engine, y, sample_weight
        )
        return model._loss_mixing.loss(
            model_loss, compiled_loss, y, y_pred, sample_weight
        )

    if model._regmixup.rows is None:
        return mixed_loss(*batch)
    return model._regmixup.loss(mixed_loss, compiled_loss, *batch)


def _check_not_inputs_only(kwargs):
    """Refuses `mix_labels`: a MixupModel mixes the labels or the loss.

    Raises:
        ValueError: if `kwargs` holds `mix_labels`.
    """
    if "mix_labels" in kwargs:
        raise ValueError(
            "MixupModel mixes the labels with the inputs, or with "
            "`mix_loss=True` the loss (the labels untouched, exact for any "
            "loss), so it takes no `mix_labels`; received mix_labels="
            f"{kwargs['mix_labels']!r}. For the inputs-only form (lam ~ "
            "Beta(alpha + 1, alpha), labels untouched), put a "
            "keras_mixup.MixupLayer in the model and train it with plain "
            "`fit`."
        )


def _mix_inputs(model, draw, x):
    """Applies a step's draw to the inputs: `(x, plan)`, the inputs (mixed
    when the step mixes there) and the step's `StepPlan`."""
    draw = variants.as_draw(draw)
    layers = model._mix_points.layers
    steps = [MixStep.PASS] * len(layers)
    if model.mix_at == INPUT and sequences.is_padded(x):
        rest, mask = sequences.split_dict(x)
        rest, mask, weight = sequences.mix_padded_inputs(
            model.engine, draw, rest, mask
        )  # the label weight of the rule, known here
        x = {**rest, sequences.PADDING_MASK: mask}
        return x, StepPlan(steps, (weight, draw.partner_index))
    if model.mix_at == INPUT:
        x, _, _ = model.engine.apply(draw, x)
        return x, StepPlan(steps, draw)
    points = model._mix_points.points
    chosen = backend.uniform(
        [],
        model.engine.next_seed(),
        minval=0,
        maxval=len(points),
        dtype="int32",
    )
    rule = model.engine.options["mask_rule"]
    plan = StepPlan(steps, draw, chosen, deferred=rule == "anchor")
    for index, point in enumerate(points):
        step = MixStep(model.engine, draw, chosen, index)
        if point == INPUT:
            x = step.apply(_as_float(x))
            plan.input_step = step
        else:
            steps[[layer is point for layer in layers].index(True)] = step
    return x, plan


def _as_float(structure):
    """Integer tensors cast to the Keras compute dtype, so that a blended
    and an unblended branch agree on dtypes."""
    dtype = keras.config.dtype_policy().compute_dtype
    cast = backend.ops().core.cast
    return keras.tree.map_structure(
        lambda t: cast(t, dtype) if backend.is_integer(t) else t, structure
    )


MixupModel.__doc__ = options.document_options(
    MixupModel.__doc__,
    [n for n in MODEL_OPTIONS if n not in ("alpha", "num_classes", "seed")],
)
