"""`MixupModel`: a model wrapper whose training step mixes, at the input or
at hidden layers (Manifold Mixup)."""

import contextlib
import copy

import keras

from keras_mixup import backend, checks, compat, labels, options, sequences
from keras_mixup.backend import tf
from keras_mixup.holding import HoldsEngine
from keras_mixup.layers import MixStep, MixupLayer
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

#: The options a MixupModel takes: all but `mix_labels` (it mixes labels)
#: and those of keras's dict elements, which its steps never see.
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


def _check_loss(loss):
    """Refuses sparse losses: a MixupModel trains on one-hot labels."""
    for leaf in keras.tree.flatten(loss):
        name = leaf if isinstance(leaf, str) else type(leaf).__name__
        if callable(leaf) and not isinstance(leaf, keras.losses.Loss):
            name = getattr(leaf, "__name__", name)
        if "sparse" in str(name).lower():
            raise ValueError(
                "MixupModel mixes the labels, so it trains on one-hot (soft) "
                "labels, integer class ids one-hot encoded with "
                "`num_classes`: compile it with a categorical loss such as "
                f"'categorical_crossentropy'; received the loss {leaf!r}."
            )


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


class StepPlan:
    """One training step's mixing, as `MixupModel.mix` draws it.

    Attributes:
        lam: float32 `[B]`, the step's lam, or `None` in `"input"` mode
            (where `mix` has already mixed the whole batch).
        partner_index: int32 `[B]`, the step's partners, or `None`.
        point: scalar int32 tensor, the index of the chosen mix point in
            `MixupModel.mix_points`, or `None`.
        layer_steps: one `keras_mixup.layers.MixStep` per MixupLayer of the
            wrapped model: what the model tells each layer for the step.
    """

    def __init__(self, layer_steps, draw=None, point=None):
        self.layer_steps = layer_steps
        self.lam, self.partner_index = draw[:2] if draw else (None, None)
        self.point = point


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
class MixupModel(HoldsEngine, keras.Model):
    """Wraps a model so that its training step mixes (mixup, Manifold Mixup).

    Only the training step mixes: `evaluate`, `predict` and calls never do.
    `mix_at="latent"` mixes at one point drawn among the input and every
    `MixupLayer` inside; integer labels are one-hot: use a categorical
    loss. See the guide "Mixing in the model" (saving, resuming, errors).

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
            sparse loss, or invalid labels or sample weights in a step.

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
        points = resolve_mix_points(model, mix_at)
        named = {"alpha": alpha, "num_classes": num_classes, "seed": seed}
        self.hold_engine("MixupModel", MODEL_OPTIONS, named, kwargs)
        _check_at_input(self.engine, mix_at)
        self.model = model
        self.mix_at = mix_at if isinstance(mix_at, str) else list(mix_at)
        self._mix_points = _MixPoints(points, find_mixup_layers(model))
        self._regmixup = RegMixup(self.engine.options["clean_loss_weight"])

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
        """`keras.Model.compile`, refusing sparse losses.

        Raises:
            ValueError: for a sparse loss: labels are mixed, so they are
                one-hot; use a categorical loss.
        """
        _check_loss(loss)
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
        to do in the forward pass.

        Args:
            x: the batch's inputs (any structure the wrapped model takes).
            y: the labels, or `None`. Defaults to `None`.
            sample_weight: per-example weights, or `None`. Defaults to
                `None`.

        Returns:
            `(x, y, sample_weight, plan)`: labels come back as floats
            (integer ids one-hot encoded), `None` entries stay `None`, and
            `plan` is the step's `StepPlan`.
        """
        layers = self._mix_points.layers
        if self.mix_at == INPUT:
            x, y, sample_weight = self.engine.mix(x, y, sample_weight)
            return x, y, sample_weight, StepPlan([MixStep.PASS] * len(layers))
        x, y, sample_weight, size = sequences.check_batch(x, y, sample_weight)
        draw = self.engine.draw(size, x, y)
        points = self._mix_points.points
        chosen = backend.uniform(
            [],
            self.engine.next_seed(),
            minval=0,
            maxval=len(points),
            dtype="int32",
        )
        steps = [MixStep.PASS] * len(layers)
        for index, point in enumerate(points):
            step = MixStep(self.engine, draw, chosen, index)
            if point == INPUT:
                x = step.apply(_as_float(x))
            else:
                position = [layer is point for layer in layers].index(True)
                steps[position] = step
        # Labels and weights: an empty structure stands for the inputs.
        _, y, sample_weight = self.engine.apply(draw, (), y, sample_weight)
        return x, y, sample_weight, StepPlan(steps, draw, chosen)

    def train_step(self, *args):
        """Mixes the batch (see `mix`), then runs Keras' training step on
        it (with `clean_loss_weight` > 0, on the mixed and the clean batch
        joined: see `keras_mixup.regmixup`). On JAX, Keras' stateless step
        `train_step(state, data)`: the draw runs with the step's values of
        the seed generator and the mixing state, and returns them
        advanced."""
        if backend.keras_backend() == "jax":
            return self._stateless_train_step(*args)
        (data,) = args
        batch, steps, rows = self._step_batch(data)
        with self._mix_points.instructing(steps), self._regmixup.training(rows):
            logs = super().train_step(batch)
        self._mix_points.check_applied(steps)
        return logs

    def _step_batch(self, data):
        """The batch a training step trains on, the MixupLayers'
        instructions, and RegMixup's number of mixed rows (or `None`)."""
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        clean = (x, y, sample_weight)
        x, y, sample_weight, plan = self.mix(x, y, sample_weight)
        return self._regmixup.join(
            (x, y, sample_weight), clean, plan.layer_steps, self.engine.encode
        )

    def _stateless_train_step(self, state, data):
        """`train_step` on JAX: mixes with the state's variable values,
        then runs Keras' step on the mixed batch with the advanced ones.
        A batch with a class id out of range changes no state, and says so
        in its logs (see `_screen`)."""
        before = state
        trainable, non_trainable, optimizer_state, metrics_state = state
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        y, sample_weight, screen = self._screen(y, sample_weight)
        variables = self.non_trainable_variables
        with keras.StatelessScope(
            state_mapping=list(zip(variables, non_trainable, strict=True))
        ) as scope:
            batch, steps, rows = self._step_batch((x, y, sample_weight))
        non_trainable = [scope.get_current_value(v) for v in variables]
        state = (trainable, non_trainable, optimizer_state, metrics_state)
        with self._mix_points.instructing(steps), self._regmixup.training(rows):
            logs, state = super().train_step(state, batch)
        self._mix_points.check_applied(steps)
        return _held_back(screen, logs, state, before)

    @property
    def metrics(self):
        """The compiled metrics and, with RegMixup, the trackers of
        `mixed_loss` and `clean_loss` (reported by training steps only)."""
        return [*super().metrics, *self._regmixup.trackers]

    def _screen(self, y, sample_weight):
        """On JAX: the batch's value checks, made here rather than by a
        host callback (which, inside a jitted step, fails late, after
        `fit` returned, with the model's state lost). Integer labels come
        back one-hot encoded, refused weights replaced by 1 (the step is
        held back anyway), and `screen`: `(found, first, kind)`, whether a
        check failed, the value it names and which check (an index into
        `_messages(self)`), or `None` when nothing is checked. The step
        reports it in its logs and the train function raises (see
        `make_train_function`)."""
        num_classes = self.engine.options["num_classes"]
        problems, kinds = [], []
        for leaf in [] if y is None else keras.tree.flatten(y):
            if backend.is_floating(leaf):
                problems.append(labels.nonfinite_labels(leaf))
                kinds.append(2)
            elif num_classes is not None and backend.is_integer(leaf):
                problems.append(labels.outside_ids(leaf, num_classes))
                kinds.append(0)
        y = _screened_labels(y, num_classes)
        weights = [] if sample_weight is None else sample_weight
        for leaf in keras.tree.flatten(weights):
            if backend.is_floating(leaf) or backend.is_integer(leaf):
                bad = checks.refused_weights(leaf)
                problems.append(checks.first_bad(leaf, bad))
                kinds.append(1)
        if sample_weight is not None:
            sample_weight = keras.tree.map_structure(_weights_or_ones, weights)
        return y, sample_weight, _first_problem(problems, kinds)

    def make_train_function(self, force=False):
        """Keras' train function; on JAX it raises the `ValueError` for a
        class id out of range (see `_screen`), with the model's
        variables back in place, unchanged by the refused batch."""
        super().make_train_function(force)
        self.train_function = _raising_label_errors(
            self, self.train_function, _STATE_PARTS
        )

    def test_step(self, *args):
        """Keras' test step (nothing is mixed); on JAX, with class ids
        out of range reported as in `train_step`."""
        if backend.keras_backend() != "jax":
            return super().test_step(*args)
        state, data = args
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        y, sample_weight, screen = self._screen(y, sample_weight)
        logs, after = super().test_step(state, (x, y, sample_weight))
        return _held_back(screen, logs, after, state)

    def make_test_function(self, force=False):
        """Keras' test function; on JAX it raises for a class id out of
        range, as `make_train_function`'s does."""
        super().make_test_function(force)
        parts = tuple(p for p in _STATE_PARTS if p != "optimizer_variables")
        self.test_function = _raising_label_errors(
            self, self.test_function, parts
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
        RegMixup step, `mixed loss + clean_loss_weight * clean loss`."""
        y = _encode(y, self.engine.options["num_classes"])
        if self._regmixup.rows is None:
            return super().compute_loss(
                x, y, y_pred, sample_weight, training=training
            )

        def model_loss(y, y_pred, sample_weight):
            return super(MixupModel, self).compute_loss(
                x, y, y_pred, sample_weight, training=training
            )

        def compiled_loss(y, y_pred, sample_weight):
            return compat.compiled_loss(self, y, y_pred, sample_weight)

        return self._regmixup.loss(
            model_loss, compiled_loss, y, y_pred, sample_weight
        )

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        """The compiled metrics, with integer labels one-hot encoded (in a
        RegMixup step, on the mixed rows)."""
        y, y_pred, sample_weight = self._regmixup.metrics_rows(
            _encode(y, self.engine.options["num_classes"]),
            y_pred,
            sample_weight,
        )
        logs = super().compute_metrics(
            x, y, y_pred, sample_weight=sample_weight
        )
        return self._regmixup.logs(logs)

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
        # Keras' deserialization consumes the nested dicts: work on a copy.
        config = copy.deepcopy(config)
        config["model"] = keras.saving.deserialize_keras_object(
            config["model"], custom_objects=custom_objects
        )
        return cls(
            **Settings.options_from_config(config, accepted=MODEL_OPTIONS)
        )


def _encode(y, num_classes):
    """One-hot encodes integer labels, as the training step does, with
    the training step's checks: Keras builds the compiled loss and metrics
    on the unmixed labels before the first step (on JAX and PyTorch), and
    evaluation never mixes."""
    if y is None:
        return y
    return keras.tree.map_structure(
        lambda t: labels.encode_labels(t, num_classes), y
    )


#: The log entries a JAX step reports a failed value check with.
_FOUND, _FIRST, _KIND = (
    "_mixup_refused",
    "_mixup_refused_value",
    "_mixup_refused_kind",
)

#: The parts of a JAX train step's state, as `jax_state_sync` names them.
_STATE_PARTS = (
    "trainable_variables",
    "non_trainable_variables",
    "optimizer_variables",
    "metrics_variables",
)


def _messages(model):
    """The messages of the value checks a step makes (see
    `MixupModel._screen`), in the order of their kinds."""
    num_classes = model.engine.options["num_classes"]
    return (
        labels.outside_message(num_classes),
        checks.WEIGHTS_MESSAGE,
        labels.NONFINITE_MESSAGE,
    )


def _screened_labels(y, num_classes):
    """Labels as `MixupModel._screen` passes them on: class ids one-hot
    encoded (with `num_classes`), NaN and infinite float labels replaced
    by 0 (the step is held back anyway), so that no check in the step
    fails again."""
    if y is None:
        return y

    def screened(t):
        if num_classes is not None or not backend.is_integer(t):
            t = labels.encode_labels(t, num_classes, check_range=False)
        if not backend.is_floating(t):
            return t
        numpy = backend.ops().numpy
        return numpy.where(numpy.isfinite(t), t, numpy.zeros_like(t))

    return keras.tree.map_structure(screened, y)


def _weights_or_ones(weights):
    """Weights with the refused ones (see
    `keras_mixup.checks.refused_weights`) replaced by 1."""
    if not (backend.is_floating(weights) or backend.is_integer(weights)):
        return weights
    where = backend.ops().numpy.where
    ones = backend.ops().numpy.ones_like(weights)
    return where(checks.refused_weights(weights), ones, weights)


def _first_problem(problems, kinds):
    """`(found, first, kind)` of the first failed check among `problems`
    (`(found, first)` pairs), or `None` without checks."""
    if not problems:
        return None
    ops = backend.ops()
    found, first = problems[0]
    first = ops.core.cast(first, "float32")
    kind = ops.numpy.array(kinds[0], "int32")
    for (other, value), index in zip(problems[1:], kinds[1:], strict=True):
        first = ops.numpy.where(found, first, ops.core.cast(value, "float32"))
        kind = ops.numpy.where(found, kind, index)
        found = ops.numpy.logical_or(found, other)
    return found, first, kind


def _held_back(screen, logs, state, before):
    """A JAX step's `(logs, state)`: after a failed value check
    (`screen`, from `MixupModel._screen`), the state as it was before the
    step, and the check in the logs."""
    if screen is None:
        return logs, state
    import jax

    found, first, kind = screen
    state = jax.tree.map(
        lambda new, old: jax.numpy.where(found, old, new), state, before
    )
    return {**logs, _FOUND: found, _FIRST: first, _KIND: kind}, state


def _raising_label_errors(model, function, parts):
    """Wraps a JAX train or test function (whose state has the `parts`):
    a step that reports an out-of-range class id puts the state back into
    the model's variables (Keras took them out for the epoch) and raises
    the `ValueError`. Other backends' functions are returned as they
    are; on TensorFlow, the range check's `InvalidArgumentError` becomes
    the same `ValueError`."""
    if hasattr(function, "reports") or backend.keras_backend() == "torch":
        return function
    if backend.keras_backend() == "tensorflow":
        return _tensorflow_label_errors(model, function)

    def checked(state, iterator):
        logs, state = function(state, iterator)
        logs = dict(logs)
        found = logs.pop(_FOUND, False)
        first, kind = logs.pop(_FIRST, None), logs.pop(_KIND, None)
        if bool(found):
            model._jax_state = dict(zip(parts, state, strict=True))
            model._jax_state_synced = False
            model.jax_state_sync()
            raise checks.value_error(_messages(model)[int(kind)], first)
        return logs, state

    checked.reports = "out-of-range class ids"
    return checked


def _tensorflow_label_errors(model, function):
    """Wraps a TensorFlow train or test function: the range check's
    `InvalidArgumentError` (a `tf.debugging.Assert`, which stops the step
    before any update) is raised as the `ValueError` of the other
    backends."""
    messages = _messages(model)

    def checked(*args):
        try:
            return function(*args)
        except tf.errors.InvalidArgumentError as error:
            refused = checks.from_tensorflow_error(error, messages)
            if refused is None:
                raise
            raise refused from None

    checked.reports = "out-of-range class ids"
    return checked


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
