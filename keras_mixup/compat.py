"""The private APIs of other packages that keras_mixup needs, one small
function each.

No public API gives these; each wrapper fails loudly (an `ImportError` or
`AttributeError` naming what moved) rather than falling back, and
`tests/compat_test.py` calls each, so an upgrade that moves one fails the
suite instead of silently changing behaviour.
"""

import contextlib
import functools
import importlib
import sys

__all__ = [
    "KERAS_CALL",
    "backend_module",
    "direct_call_training",
    "inputs_as_given",
    "compiled_loss",
    "in_tf_graph",
    "is_xla",
    "loss_tracker",
    "sublayers",
    "get_keras_mask",
    "set_keras_mask",
    "set_torch_generator_state",
    "torch_dirichlet",
    "torch_generator_state",
    "torch_generator",
]


@functools.cache
def backend_module(name):
    """Keras' implementation of its ops for the backend `name`
    (`"tensorflow"`, `"jax"` or `"torch"`), with `numpy`, `math`, `nn`,
    `core` and `random` submodules, whatever the current backend.

    `keras.ops` dispatches to the current backend only; Keras' preprocessing
    layers reach TensorFlow's ops in `tf.data` through this module
    (`DynamicBackend`). Cached: a call traced by AutoGraph (in `tf.data`, a
    `tf.function`) is then a plain lookup, which AutoGraph does not try to
    convert.
    """
    return importlib.import_module(f"keras.src.backend.{name}")


def in_tf_graph():
    """Whether TensorFlow is tracing a graph (a `Dataset.map`, a
    `tf.function`), as Keras' preprocessing layers ask it; `False` when
    TensorFlow was never imported (and is not imported by asking).

    Asked many times a step (PyTorch runs the mixing eagerly), so without
    TensorFlow it answers before calling Keras.
    """
    if "tensorflow" not in sys.modules:
        return False
    from keras.src.utils import backend_utils

    return backend_utils.in_tf_graph()


def is_xla():
    """Whether the code being traced is compiled by XLA.

    TensorFlow has no public way to ask; TFP's `implementation_selection`
    reads the XLA context of the graph being built.
    """
    from tensorflow_probability.python.internal import (
        implementation_selection,
    )

    return implementation_selection.is_xla()


def sublayers(layer):
    """The direct sublayers of a Keras layer or model, in tracking order.

    `keras.Model.layers` lists only what a functional graph calls (or a
    subclassed model's direct attributes) and `keras.Layer` has no public
    list at all; Keras' own tracking, `_flatten_layers`, sees every layer
    an object holds (in attributes, lists and dicts).
    """
    return list(layer._flatten_layers(include_self=False, recursive=False))


def compiled_loss(model, y, y_pred, sample_weight=None):
    """The loss `model.compile` was given, on `(y, y_pred)`, without the
    model's own losses (weight regularisers, `add_loss`).

    `keras.Model.compute_loss` adds those to the compiled loss and no
    public API gives the compiled loss alone; Keras keeps it, built, in
    `_compile_loss`.
    """
    loss = model._compile_loss
    if loss is None:
        raise ValueError(
            "The model has no compiled loss: pass `loss=` to `compile`."
        )
    return loss(y, y_pred, sample_weight)


def loss_tracker(model):
    """The `keras.metrics.Mean` a compiled model reports as `loss`.

    A training step that computes its own loss (RegMixup's) must update
    the tracker `fit` reads; Keras keeps it, unexposed, in `_loss_tracker`.
    """
    tracker = model._loss_tracker
    if tracker is None:
        raise ValueError("The model is not compiled: it has no loss tracker.")
    return tracker


@contextlib.contextmanager
def inputs_as_given(layer):
    """Calls of `layer` in the block keep their input tensors as they are.

    `keras.Layer.__call__` converts inputs to the backend's tensors, which
    fails for TensorFlow tensors in `tf.data` under JAX or PyTorch; Keras'
    own preprocessing layers (`TFDataLayer`) switch it off there through
    `_convert_input_args`, and let TensorFlow tensors, which are not the
    backend's, be passed positionally (`_allow_non_tensor_positional_args`).
    """
    names = ("_convert_input_args", "_allow_non_tensor_positional_args")
    before = [getattr(layer, name) for name in names]
    layer._convert_input_args = False
    layer._allow_non_tensor_positional_args = True
    try:
        yield
    finally:
        for name, value in zip(names, before, strict=True):
            setattr(layer, name, value)


#: What `direct_call_training` returns where `keras.Layer.__call__` must
#: run.
KERAS_CALL = object()


def _plain_torch_leaf(value):
    """A PyTorch tensor (not a Keras tensor) without a Keras mask."""
    import torch

    return (
        isinstance(value, torch.Tensor)
        and getattr(value, "_keras_mask", None) is None
    )


def _torch_module_is_plain(layer):
    """Whether `torch.nn.Module.__call__` of `layer` would only call
    `forward`: no hooks, on the layer or global, and no `Module.compile`
    (the condition of torch's own shortcut in `Module._call_impl`)."""
    from torch.nn.modules import module

    return not (
        layer._backward_hooks
        or layer._backward_pre_hooks
        or layer._forward_hooks
        or layer._forward_pre_hooks
        or module._global_backward_pre_hooks
        or module._global_backward_hooks
        or module._global_forward_hooks
        or module._global_forward_pre_hooks
        or getattr(layer, "_compiled_call_impl", None) is not None
    )


def direct_call_training(layer, inputs, args, kwargs):
    """The `training` that `keras.Layer.__call__` would pass `layer.call`
    for `layer(inputs, *args, **kwargs)`, where calling `layer.call`
    directly does all the rest of its work; else `KERAS_CALL`.

    That is an eager call on the PyTorch backend of a built layer that
    does not autocast, supports masking, records no activity loss and is
    not rematerialised, on a PyTorch tensor or a flat dict of them that
    carry no Keras mask, with `training` the only other argument, and no
    torch hooks. Keras's call then converts nothing, casts nothing,
    builds nothing, sets no mask and adds no node: it only resolves
    `training` (the argument, else the enclosing layer call's, else
    `None`), which this does, for about a thousand Python calls less on
    a dict (the more a call is dispatched eagerly, the more they cost).
    """
    from keras.src.backend.common import global_state

    if args or set(kwargs) - {"training"} or not layer.built:
        return KERAS_CALL
    leaves = inputs.values() if type(inputs) is dict else [inputs]
    if not (
        leaves
        and all(map(_plain_torch_leaf, leaves))
        and not layer.autocast
        and layer.supports_masking
        and layer.activity_regularizer is None
        and layer._remat_mode is None
        and _torch_module_is_plain(layer)
    ):
        return KERAS_CALL
    training = kwargs.get("training")
    if training is None:
        context = global_state.get_global_attribute("current_call_ctx")
        training = None if context is None else context.training
    if not layer._called:  # Keras's setattr tracks: a few us a call
        layer._called = True
    return training


#: The attribute keeping the mask a call set (see `set_keras_mask`).
_CALL_MASK = "_keras_mixup_mask"


def set_keras_mask(tensor, mask):
    """Attaches `mask` to `tensor` as its Keras mask and returns `tensor`.

    A layer whose output mask depends on its draw (a `MixupLayer` mixing
    padded sequences under `mask_rule`) sets it in `call`: Keras then keeps
    it instead of asking `compute_mask`, which cannot know the partners.
    Keras' own setter, `keras.src.backend.set_keras_mask`, is private (it
    stores the mask on the tensor, or by id for tensors that take no
    attributes, such as JAX arrays). The mask is also kept under an
    attribute of keras_mixup's own (`call_mask` reads it), which layers
    that consume and clear `_keras_mask` (`MultiHeadAttention`) leave.
    """
    from keras.src import backend as keras_backend
    from keras.src.backend.common import tensor_attributes

    keras_backend.set_keras_mask(tensor, mask)
    tensor_attributes.set_tensor_attr(tensor, _CALL_MASK, mask)
    return tensor


def get_keras_mask(tensor):
    """The Keras mask attached to `tensor`, or `None` (Keras' private
    `keras.src.backend.get_keras_mask`, the reader of `set_keras_mask`)."""
    from keras.src import backend as keras_backend

    return keras_backend.get_keras_mask(tensor)


def call_mask(tensor):
    """The mask `set_keras_mask` attached to `tensor`, even if a layer
    cleared its Keras mask since, or `None`."""
    from keras.src.backend.common import tensor_attributes

    return tensor_attributes.get_tensor_attr(tensor, _CALL_MASK)


def torch_dirichlet(concentration, generator):
    """Dirichlet draws from PyTorch's sampler with the `torch.Generator`
    `generator`: what `torch.distributions.Dirichlet` (and `Beta`, a
    Dirichlet of two) samples with, but its public classes draw from
    torch's global generator only; `torch._sample_dirichlet` takes one."""
    import torch

    return torch._sample_dirichlet(concentration, generator=generator)


#: The attribute of a `keras.random.SeedGenerator` that holds its
#: `torch.Generator` (see `torch_generator`).
_TORCH_GENERATOR = "_keras_mixup_torch_generator"


def torch_generator(seed_generator):
    """The `torch.Generator` that keras_mixup's PyTorch draws with the
    Keras `seed_generator` come from.

    Keras draws on PyTorch (`keras.random.uniform(seed=generator)`) read
    the seed generator's state back to the host and seed a new
    `torch.Generator` for every draw: a host round trip (a device sync on
    a GPU) and a few tens of microseconds each. This generator is made
    once, on the seed generator's device, seeded from its state (read
    once), and kept as an attribute of the seed generator (Keras has no
    slot for it), so it follows the seed generator and is copied with it;
    every draw then advances it. The same int seed gives the same stream.
    """
    generator = getattr(seed_generator, _TORCH_GENERATOR, None)
    if generator is None:
        import torch

        state = seed_generator.state.value
        first, second = (int(v) for v in state.detach().cpu().tolist())
        generator = torch.Generator(state.device)
        generator.manual_seed((first * 1_000_003 + second) % 2**63)
        setattr(seed_generator, _TORCH_GENERATOR, generator)
    return generator


def torch_generator_state(seed_generator):
    """The state of `seed_generator`'s kept `torch.Generator` (see
    `torch_generator`) as a uint8 numpy array, or `None` if no draw made it
    yet (the stream is then where the seed generator's state says)."""
    generator = getattr(seed_generator, _TORCH_GENERATOR, None)
    if generator is None:
        return None
    return generator.get_state().numpy()


def set_torch_generator_state(seed_generator, state):
    """Puts `seed_generator`'s kept `torch.Generator` (made if needed) at
    `state`, as `torch_generator_state` returned it."""
    import torch

    torch_generator(seed_generator).set_state(
        torch.as_tensor(state, dtype=torch.uint8)
    )
