"""How `MixupGAN` minimises its losses on each backend.

A GAN step is written once (`MixupGAN._step_losses`); only how a loss is
minimised differs by backend, in a small step object: a `tf.GradientTape`
on TensorFlow (`TensorFlowStep`), `loss.backward()` on PyTorch
(`TorchStep`), and on JAX Keras' stateless step (`JaxStep`):
`jax.value_and_grad` of the loss as a function of the variables' values and
`optimizer.stateless_apply`, with the seed generator and the mixing state
threaded through like every other non-trainable variable.
"""

import functools

import keras

from keras_mixup import backend
from keras_mixup.backend import tf

__all__ = [
    "JaxStep",
    "Optimizers",
    "TensorFlowStep",
    "TorchStep",
    "call",
    "for_backend",
    "stateless",
]


def call(function):
    """`function()`: how a loss is run where variables hold values."""
    return function()


def _positions(variables, part):
    """Where each variable of `part` sits in `variables`."""
    return [
        next(i for i, v in enumerate(variables) if v is variable)
        for variable in part
    ]


def stateless(function, mapping, updated):
    """Runs `function()` with each variable of `mapping` (pairs of a
    variable and a value) read as that value.

    Returns:
        The result, and the values of the variables `updated` after it.
    """
    with keras.StatelessScope(state_mapping=mapping) as scope:
        result = function()
    return result, [scope.get_current_value(v) for v in updated]


class _Step:
    """Runs a training step's parts where variables hold their values
    (TensorFlow and PyTorch); subclasses minimise."""

    def run(self, function):
        """Runs `function()` (a draw) and returns its result."""
        return function()

    def loss(self, loss_of):
        """The loss `loss_of(run)` computes, `run` calling a function."""
        return loss_of(call)


class TensorFlowStep(_Step):
    """Minimises with gradients from a `tf.GradientTape`."""

    def minimize(self, loss_of, model, optimizer):
        """Computes a loss (see `loss`), takes one step of `optimizer` on
        the trainable variables of `model`, and returns the loss."""
        with tf.GradientTape() as tape:
            loss = self.loss(loss_of)
        variables = model.trainable_variables
        gradients = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(gradients, variables, strict=True))
        return loss


class TorchStep(_Step):
    """Minimises with gradients from `loss.backward()`, as Keras' own
    PyTorch step takes them."""

    def __init__(self, owner):
        self.owner = owner

    def minimize(self, loss_of, model, optimizer):
        """See `TensorFlowStep.minimize`."""
        import torch

        self.owner.zero_grad()  # the gradients left by the last backward
        loss = self.loss(loss_of)
        loss.backward()
        variables = model.trainable_weights
        with torch.no_grad():
            optimizer.apply([v.value.grad for v in variables], variables)
        return loss


class JaxStep:
    """Runs a training step's parts on JAX, statelessly: every function
    runs on the step's values of the owner's variables, and the values it
    leaves (seed generator, mixing state, batch statistics) are kept for
    the next part.

    Args:
        owner: the `MixupGAN`.
        trainable: the values of `owner.trainable_variables`.
        non_trainable: the values of `owner.non_trainable_variables`.
        optimizer_values: the values of `owner.optimizer.variables` (both
            optimizers'), or `None` outside training. Defaults to `None`.
    """

    def __init__(self, owner, trainable, non_trainable, optimizer_values=None):
        self.owner = owner
        self.trainable = list(trainable)
        self.non_trainable = list(non_trainable)
        self.optimizer_values = (
            None
            if optimizer_values is None
            else owner.optimizer.split(optimizer_values)
        )

    def _pure(self, trainable, function):
        """`(function(), non-trainable values after it)`, on `trainable`
        and the current non-trainable values; changes nothing here, so it
        may run inside a `cond` branch or a gradient."""
        owner = self.owner
        mapping = [
            *zip(owner.trainable_variables, trainable, strict=True),
            *zip(
                owner.non_trainable_variables, self.non_trainable, strict=True
            ),
        ]
        return stateless(function, mapping, owner.non_trainable_variables)

    def run(self, function):
        """Runs `function()` (a draw) statelessly and returns its result."""
        result, self.non_trainable = self._pure(self.trainable, function)
        return result

    def loss(self, loss_of):
        """The loss `loss_of(run)` computes, where `run(function)` returns
        `(function(), non-trainable values)`."""
        run = functools.partial(self._pure, self.trainable)
        loss, self.non_trainable = loss_of(run)
        return loss

    def minimize(self, loss_of, model, optimizer):
        """Computes a loss (see `loss`) and its gradient with respect to the
        values of `model`'s trainable variables, applies one step of
        `optimizer` to them, and returns the loss."""
        import jax

        positions = _positions(
            self.owner.trainable_variables, model.trainable_variables
        )

        def loss_and_state(values):
            trainable = list(self.trainable)
            for position, value in zip(positions, values, strict=True):
                trainable[position] = value
            return loss_of(functools.partial(self._pure, trainable))

        values = [self.trainable[position] for position in positions]
        (loss, self.non_trainable), gradients = jax.value_and_grad(
            loss_and_state, has_aux=True
        )(values)
        index = self.owner.optimizer.index(optimizer)
        values, self.optimizer_values[index] = optimizer.stateless_apply(
            self.optimizer_values[index], gradients, values
        )
        for position, value in zip(positions, values, strict=True):
            self.trainable[position] = value
        return loss


class Optimizers:
    """What Keras' JAX trainer reads as `model.optimizer`: the variables of
    both optimizers (the discriminator's first), which it threads through
    the stateless step."""

    def __init__(self, *optimizers):
        self.optimizers = optimizers

    @property
    def built(self):
        return all(optimizer.built for optimizer in self.optimizers)

    @property
    def variables(self):
        return [v for o in self.optimizers for v in o.variables]

    def index(self, optimizer):
        """The position of `optimizer` among the optimizers."""
        return [o is optimizer for o in self.optimizers].index(True)

    def split(self, values):
        """The values of `variables`, one list per optimizer."""
        parts, start = [], 0
        for optimizer in self.optimizers:
            stop = start + len(optimizer.variables)
            parts.append(list(values[start:stop]))
            start = stop
        return parts


def for_backend(owner):
    """The step object of the TensorFlow or PyTorch backend (JAX's takes
    the step's state: see `JaxStep`)."""
    if backend.keras_backend() == "torch":
        return TorchStep(owner)
    return TensorFlowStep()
