"""What `MixupModel`'s steps do besides mixing: JAX's stateless training
step, the value checks a JAX step makes itself (`screen`), and the
`ValueError` every backend's train and test functions raise for a refused
batch.

On JAX a check inside a jitted step cannot raise: a host callback fails
late, after `fit` returned, with the model's state lost. So a JAX step
checks its batch with array ops (`screen`), keeps the state it started
with when a check failed (`held_back`) and reports the check in its logs;
the train function (`raising_label_errors`) puts that state back into the
model and raises. On TensorFlow the range check is a `tf.debugging.Assert`,
whose `InvalidArgumentError` becomes the same `ValueError`.
"""

import keras

from keras_mixup import backend, checks, labels
from keras_mixup.backend import tf

__all__ = [
    "STATE_PARTS",
    "held_back",
    "raising_label_errors",
    "screen",
    "screened_step_batch",
    "stateless_test_step",
    "stateless_train_step",
]

#: The log entries a JAX step reports a failed value check with.
_FOUND, _FIRST, _KIND = (
    "_mixup_refused",
    "_mixup_refused_value",
    "_mixup_refused_kind",
)

#: The parts of a JAX train step's state, as `jax_state_sync` names them.
STATE_PARTS = (
    "trainable_variables",
    "non_trainable_variables",
    "optimizer_variables",
    "metrics_variables",
)


def stateless_train_step(model, keras_step, state, data):
    """`MixupModel.train_step` on JAX: mixes with the state's variable
    values, then runs Keras' step (`keras_step(state, batch)`) on the mixed
    batch with the advanced ones. A batch with a class id out of range
    changes no state, and says so in its logs (see `screen`)."""
    before = state
    trainable, non_trainable, optimizer_state, metrics_state = state
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    y, sample_weight, problem = screen(model, y, sample_weight)
    variables = model.non_trainable_variables
    with keras.StatelessScope(
        state_mapping=list(zip(variables, non_trainable, strict=True))
    ) as scope:
        batch, plan = screened_step_batch(model, (x, y, sample_weight))
    non_trainable = [scope.get_current_value(v) for v in variables]
    state = (trainable, non_trainable, optimizer_state, metrics_state)
    from keras_mixup.models import training_on  # models imports this

    with training_on(model, plan):
        logs, state = keras_step(state, batch)
    model._mix_points.check_applied(plan.layer_steps)
    return held_back(problem, logs, state, before)


def screened_step_batch(model, data):
    """`model._step_batch(data)` for a batch `screen` checked: mixed with
    the engine's value checks off, so that the jitted step holds no host
    callback (each costs a round trip into Python every step)."""
    engine = model.engine
    engine.check_values = False
    try:
        return model._step_batch(data)
    finally:
        engine.check_values = True


def stateless_test_step(model, keras_step, state, data):
    """`MixupModel.test_step` on JAX: Keras' step (`keras_step(state,
    data)`, nothing mixed) on the batch `screen` checked, held back as in
    `stateless_train_step`."""
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    y, sample_weight, problem = screen(model, y, sample_weight)
    logs, after = keras_step(state, (x, y, sample_weight))
    return held_back(problem, logs, after, state)


def screen(model, y, sample_weight):
    """On JAX: the batch's value checks, made here rather than by a host
    callback. Integer labels come back one-hot encoded (when `num_classes`
    is set), refused weights replaced by 1 (the step is held back anyway),
    and the problem: `(found, first, kind)`, whether a check failed, the
    value it names and which check (an index into `_messages(model)`), or
    `None` when nothing is checked."""
    num_classes = model.engine.options["num_classes"]
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


def _messages(model):
    """The messages of the value checks a step makes (see `screen`), in
    the order of their kinds."""
    num_classes = model.engine.options["num_classes"]
    return (
        labels.outside_message(num_classes),
        checks.WEIGHTS_MESSAGE,
        labels.NONFINITE_MESSAGE,
    )


def _screened_labels(y, num_classes):
    """Labels as `screen` passes them on: class ids one-hot encoded (with
    `num_classes`), NaN and infinite float labels replaced by 0 (the step
    is held back anyway), so that no check in the step fails again."""
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


def held_back(problem, logs, state, before):
    """A JAX step's `(logs, state)`: after a failed value check
    (`problem`, from `screen`), the state as it was before the step, and
    the check in the logs."""
    if problem is None:
        return logs, state
    import jax

    found, first, kind = problem
    state = jax.tree.map(
        lambda new, old: jax.numpy.where(found, old, new), state, before
    )
    return {**logs, _FOUND: found, _FIRST: first, _KIND: kind}, state


def raising_label_errors(model, function, *, training=True):
    """Wraps a JAX train or test function (`training`: whose state holds
    the optimizer's variables, see `STATE_PARTS`): a step that reports an
    out-of-range class id puts the state back into the model's variables
    (Keras took them out for the epoch) and raises the `ValueError`. Other
    backends' functions are returned as they are; on TensorFlow, the range
    check's `InvalidArgumentError` becomes the same `ValueError`."""
    if hasattr(function, "reports") or backend.keras_backend() == "torch":
        return function
    if backend.keras_backend() == "tensorflow":
        name = "train_function" if training else "test_function"
        return _tensorflow_label_errors(model, function, name)
    parts = STATE_PARTS
    if not training:
        parts = tuple(p for p in parts if p != "optimizer_variables")

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


def _tensorflow_label_errors(model, function, name):
    """Wraps a TensorFlow train or test function, `model.<name>`: the
    range check's `InvalidArgumentError` (a `tf.debugging.Assert`, which
    stops the step before any update) is raised as the `ValueError` of the
    other backends. A call refused otherwise (a batch the step's checks
    refuse while it traces) drops the function from the model, so that
    the next `fit` or `evaluate` traces a new one: a `tf.function` whose
    first trace failed after creating variables (Keras's metrics and
    optimizer build) cannot be traced again ("Creating variables on a
    non-first call"), in plain Keras too."""
    messages = _messages(model)

    def checked(*args):
        try:
            logs = function(*args)
        except tf.errors.InvalidArgumentError as error:
            refused = checks.from_tensorflow_error(error, messages)
            if refused is None:
                raise
            raise refused from None
        except Exception:
            if getattr(model, name, None) is checked:
                setattr(model, name, None)
            raise
        return logs

    checked.reports = "out-of-range class ids"
    return checked
