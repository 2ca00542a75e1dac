"""Which tensors the mixing math runs on, and its random draws.

The mixing math (pairing, labels, the blend) is written once, against a
backend namespace `ops()` with Keras' backend API (`ops().numpy.take`,
`ops().core.cond`, ...). The namespace is TensorFlow's wherever the math runs
on TensorFlow tensors: in `tf.data` pipelines (whatever the Keras backend),
inside any TensorFlow graph, and on the TensorFlow backend; it is the Keras
backend's (JAX or PyTorch) inside a model on that backend. This is what Keras
does for its own preprocessing layers (`DynamicBackend`).

Random draws take a `seed` that is either a stateless TensorFlow seed (an
int32 tensor of shape `[2]`, handed out per batch by
`keras_mixup.state.SeedSource`) or a `keras.random.SeedGenerator` (JAX and
PyTorch models: every draw advances it, and Keras threads its state through
the JAX training step). `uniform`, `split` and `fold_in` take either.

Two questions pick a backend, each asked in one place:

- `name()`: where does the mixing math run now? TensorFlow in `tf.data`
  and inside TensorFlow graphs, whatever the Keras backend; the Keras
  backend elsewhere. Ask it before choosing ops, samplers or dtypes.
- `keras_backend()`: which backend does Keras's machinery run on (its
  seed generators and variables, `train_step` / `test_step`, stateless
  JAX steps, layer calls, metrics)? That is `KERAS_BACKEND`, fixed at
  import. No module calls `keras.backend.backend()` but this one.

`tf` and `tfp` are the TensorFlow and TFP modules, imported on first use:
under the JAX and PyTorch backends a model that mixes never imports
TensorFlow.
"""

import contextlib
import contextvars
import functools
import importlib
import sys

import keras

from keras_mixup import compat

__all__ = [
    "compatible_shapes",
    "dtype_name",
    "fold_in",
    "is_floating",
    "is_integer",
    "keras_backend",
    "name",
    "normal",
    "not_converted",
    "not_converted_methods",
    "on_tensorflow",
    "ops",
    "permutation",
    "rank",
    "reshape",
    "split",
    "standard_dtype",
    "stateless_algorithm",
    "tf",
    "tfp",
    "uniform",
    "using_tensorflow",
]


class _LazyModule:
    """A module imported on first attribute access."""

    def __init__(self, module_name):
        self._module_name = module_name

    def __getattr__(self, attribute):
        return getattr(importlib.import_module(self._module_name), attribute)


#: TensorFlow, imported on first use.
tf = _LazyModule("tensorflow")
#: TensorFlow Probability, imported on first use.
tfp = _LazyModule("tensorflow_probability")

_FORCED = contextvars.ContextVar("keras_mixup_backend", default=None)


@contextlib.contextmanager
def using_tensorflow():
    """Runs the block's mixing math on TensorFlow: what the `tf.data` entry
    points (`Mixup`, the variants' map functions, `mix_with`) do, whatever
    the Keras backend."""
    token = _FORCED.set("tensorflow")
    try:
        yield
    finally:
        _FORCED.reset(token)


#: TensorFlow's mark of an entity AutoGraph calls as it is (what
#: `tf.autograph.experimental.do_not_convert` sets on its wrapper).
_NOT_CONVERTED = "autograph_info__"


def not_converted(function):
    """Marks `function` so that TensorFlow's AutoGraph never converts it.

    A `tf.function` with AutoGraph on (the default: a user's own,
    `Dataset.map`) converts every function its code calls: it parses the
    source, rewrites Python control flow into TensorFlow's and recompiles,
    which took most of the tracing of the package's code (the guide
    "Performance" gives the figures). The package is written with explicit
    control flow, as it runs on JAX and PyTorch too, so it needs no
    conversion: AutoGraph calls a marked function as it is, and the calls
    below it are plain Python calls. The mark is the attribute
    `tf.autograph.experimental.do_not_convert` sets on its wrapper, so
    marking imports no TensorFlow.

    Args:
        function: a function, or a class (whose instances, when called,
            are then not converted either).

    Returns:
        `function` itself, marked.
    """
    setattr(function, _NOT_CONVERTED, frozenset())
    return function


def not_converted_methods(*names):
    """A class decorator marking the named methods with `not_converted`
    (the functions of the class's own `__dict__`; a name it lacks is an
    error)."""

    def mark(cls):
        for method in names:
            not_converted(cls.__dict__[method])
        return cls

    return mark


def on_tensorflow(function):
    """`function`, run with `using_tensorflow`."""

    @functools.wraps(function)
    def wrapped(*args, **kwargs):
        with using_tensorflow():
            return function(*args, **kwargs)

    return wrapped


#: Keras's backend, fixed when Keras is imported (asked many times a call:
#: PyTorch runs the mixing eagerly).
_KERAS_BACKEND = keras.backend.backend()


def keras_backend():
    """The backend Keras's machinery runs on (seed generators, variables,
    train and test steps): `"tensorflow"`, `"jax"` or `"torch"`, as
    `KERAS_BACKEND` chose at import. Where the mixing math runs is `name`."""
    return _KERAS_BACKEND


def name():
    """The backend the mixing math runs on now: `"tensorflow"`, `"jax"` or
    `"torch"`."""
    forced = _FORCED.get()
    if forced is not None:
        return forced
    if _KERAS_BACKEND == "tensorflow" or (
        "tensorflow" in sys.modules and compat.in_tf_graph()
    ):
        return "tensorflow"
    return _KERAS_BACKEND


#: The backend namespaces by name (`compat.backend_module`'s modules).
_NAMESPACES = {}


def ops():
    """The backend namespace the mixing math runs on now (see `name`)."""
    which = name()
    found = _NAMESPACES.get(which)
    if found is None:
        found = _NAMESPACES[which] = compat.backend_module(which)
    return found


#: Standard dtype names by dtype object (asked several times a call:
#: Keras's `standardize_dtype` walks its aliases each time).
_DTYPE_NAMES = {}


def standard_dtype(dtype):
    """`keras.backend.standardize_dtype(dtype)`, remembered per dtype
    object (dtypes are few; each is named once). `None` and Python types
    (`float`) are not remembered: their name follows `floatx`."""
    try:
        return _DTYPE_NAMES[dtype]
    except (KeyError, TypeError):  # TypeError: an unhashable dtype
        pass
    found = keras.backend.standardize_dtype(dtype)
    if dtype is not None and not isinstance(dtype, type):  # not floatx's
        try:
            _DTYPE_NAMES[dtype] = found
        except TypeError:
            pass
    return found


def reshape(tensor, shape):
    """`keras.ops.reshape` of the backend the math runs on; on PyTorch the
    tensor's own `reshape` (Keras's converts its argument first: tens of
    microseconds an eager call)."""
    if name() == "torch" and ops().core.is_tensor(tensor):
        return tensor.reshape(shape)
    return ops().numpy.reshape(tensor, shape)


def dtype_name(tensor):
    """The standard dtype name of a tensor or variable: `"float32"`, ...
    (a dtype Keras does not know, such as `qint8`, by its own name)."""
    try:
        return standard_dtype(tensor.dtype)
    except ValueError:
        return str(getattr(tensor.dtype, "name", tensor.dtype))


def bitcast(tensor, dtype):
    """`tensor`'s bits as `dtype` (of the same size): `keras.ops.view`,
    which on TensorFlow needs a static last axis, so `tf.bitcast` there."""
    if name() == "tensorflow":
        import tensorflow as tf

        return tf.bitcast(tensor, dtype)
    return ops().numpy.view(tensor, dtype)


def rank(tensor):
    """The static rank of a tensor: `None` where TensorFlow does not know it
    (`tf.Tensor.ndim` is -1 there)."""
    shape = tensor.shape
    return shape.rank if hasattr(shape, "rank") else len(shape)


def compatible_shapes(first, second):
    """Whether two static shapes can be equal: `None` matches any size, and
    a shape of unknown rank (TensorFlow's) any shape."""
    if None in (getattr(first, "rank", 0), getattr(second, "rank", 0)):
        return True
    first, second = tuple(first), tuple(second)
    return len(first) == len(second) and all(
        a is None or b is None or a == b
        for a, b in zip(first, second, strict=True)
    )


def is_floating(tensor):
    """Whether a tensor or variable holds floating-point values."""
    return "float" in dtype_name(tensor)


def is_integer(tensor):
    """Whether a tensor or variable holds integers (not bools)."""
    return "int" in dtype_name(tensor)


def _is_generator(seed):
    return isinstance(seed, keras.random.SeedGenerator)


def stateless_algorithm():
    """The algorithm of every stateless TensorFlow draw of the package:
    `"threefry"` in a computation XLA compiles, `"auto_select"` (Philox,
    TensorFlow's default) elsewhere.

    Under XLA on CPU, TensorFlow's default algorithm compiles 2-3 times
    slower than ThreeFry and runs up to 100 times slower (figures in the
    performance guide); ThreeFry has no kernel outside XLA. A seed gives
    the same draw on each path; the two paths differ (as the default
    algorithm's float draws already did).
    """
    return "threefry" if compat.is_xla() else "auto_select"


def split(seed, *, count=2):
    """`count` independent seeds from one: a stateless split of a TensorFlow
    seed (the first two of a 3-way split are those of a 2-way one), or the
    same `SeedGenerator` `count` times (each draw advances it)."""
    if _is_generator(seed):
        return [seed] * count
    return tf.unstack(
        tf.random.experimental.stateless_split(
            seed, count, alg=stateless_algorithm()
        )
    )


def fold_in(seed, value):
    """A seed derived from `seed` and the int `value` (a `SeedGenerator`
    is returned as it is: its next draw is already a fresh one)."""
    if _is_generator(seed):
        return seed
    return tf.random.experimental.stateless_fold_in(
        seed, value, alg=stateless_algorithm()
    )


def _torch_draw(seed, draw, shape, dtype, **kwargs):
    """`draw(shape, ...)` (a `torch` sampler) with the `torch.Generator` of
    the `SeedGenerator` `seed` (see `compat.torch_generator`): no host
    round trip, no generator made per draw."""
    import torch

    generator = compat.torch_generator(seed)
    return draw(
        *kwargs.pop("args", ()),
        tuple(int(d) for d in shape),
        generator=generator,
        device=generator.device,
        dtype=getattr(torch, standard_dtype(dtype)),
        **kwargs,
    )


def uniform(shape, seed, *, minval=0.0, maxval=1.0, dtype="float32"):
    """Uniform draws in `[minval, maxval)`; integers for an int `dtype`
    (then `minval` and `maxval` are required ints or int tensors)."""
    if not _is_generator(seed):
        return tf.random.stateless_uniform(
            shape,
            seed=seed,
            minval=minval,
            maxval=maxval,
            dtype=dtype,
            alg=stateless_algorithm(),
        )
    if name() == "torch":
        import torch

        if "int" in dtype:
            bounds = (int(minval), int(maxval))
            return _torch_draw(seed, torch.randint, shape, dtype, args=bounds)
        draw = _torch_draw(seed, torch.rand, shape, dtype)
        if (minval, maxval) == (0.0, 1.0):
            return draw
        return draw * (maxval - minval) + minval
    if "int" in dtype:
        return keras.random.randint(
            shape, minval, maxval, dtype=dtype, seed=seed
        )
    return keras.random.uniform(
        shape, minval=minval, maxval=maxval, dtype=dtype, seed=seed
    )


def normal(shape, seed, *, dtype="float32"):
    """Standard normal draws (`seed` as for `uniform`)."""
    if _is_generator(seed):
        if name() == "torch":
            import torch

            return _torch_draw(seed, torch.randn, shape, dtype)
        return keras.random.normal(shape, dtype=dtype, seed=seed)
    return tf.random.stateless_normal(
        shape, seed=seed, dtype=dtype, alg=stateless_algorithm()
    )


def permutation(size, seed):
    """A uniformly random permutation of `range(size)`, int32: the argsort
    of uniform keys (`seed` as for `uniform`), or on PyTorch one
    `torch.randperm`."""
    if _is_generator(seed) and name() == "torch":
        import torch

        generator = compat.torch_generator(seed)
        return torch.randperm(
            int(size),
            generator=generator,
            device=generator.device,
            dtype=torch.int32,
        )
    numpy = ops().numpy
    return ops().core.cast(numpy.argsort(uniform([size], seed)), "int32")
