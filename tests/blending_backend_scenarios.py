"""The blend and the labels under one Keras backend, in a subprocess of
blending_backends_test.py.

    KERAS_BACKEND=torch python tests/blending_backend_scenarios.py blending

prints one JSON object: what `keras_mixup.blending` and `keras_mixup.labels`
computed on this backend's tensors (outputs, the error of the gradients
against the automatic differentiation of the plain formula, dtypes, error
messages), for the parent test to check. The backend is chosen by the
environment before Keras is imported, which is why this runs in its own
process.
"""

import json
import sys

import keras
import numpy as np
from keras import ops

from keras_mixup import blending, labels

RNG = np.random.default_rng(0)
#: Partners forming a permutation (random pairing), and partners with
#: repeats (the nearest-neighbour pairings): row 1 is the partner of three.
PAIRINGS = {
    "permutation": np.array([3, 0, 4, 1, 2], "int32"),
    "repeats": np.array([1, 1, 0, 4, 1], "int32"),
}
BACKEND = keras.backend.backend()
#: JAX computes in float32 unless x64 is enabled.
FLOAT_DTYPES = ("float16", "bfloat16", "float32") + (
    () if BACKEND == "jax" else ("float64",)
)


def _numpy(tensor):
    """A tensor as a NumPy array (half precision as float32)."""
    if keras.backend.standardize_dtype(tensor.dtype) != "float64":
        tensor = ops.cast(tensor, "float32")
    return ops.convert_to_numpy(tensor)


def _error_text(function):
    """The type and message of what `function()` raises, or `None`."""
    try:
        result = function()
        ops.convert_to_numpy(ops.cast(result, "float32"))
    except Exception as error:  # noqa: BLE001 - reported to the parent
        return f"{type(error).__name__}: {error}"
    return None


def _gradients(loss, args, *, compiled=False):
    """The gradient of `loss(*args)` with respect to every arg, by this
    backend's automatic differentiation: `jax.grad` (under `jax.jit` when
    `compiled`), `loss.backward()`, or a `tf.GradientTape` (in a
    `tf.function` when `compiled`, where the blend is fused)."""
    if BACKEND == "jax":
        import jax

        grad = jax.grad(loss, argnums=tuple(range(len(args))))
        return (jax.jit(grad) if compiled else grad)(*args)
    if BACKEND == "torch":
        args = [a.detach().requires_grad_(True) for a in args]
        loss(*args).backward()
        return [a.grad for a in args]
    import tensorflow as tf

    def grad(*args):
        with tf.GradientTape() as tape:
            tape.watch(args)
            value = loss(*args)
        return tape.gradient(value, args)

    return (tf.function(grad) if compiled else grad)(*args)


def _plain(x, lam, partner_index):
    """The plain formula, for automatic differentiation to differentiate."""
    lam = ops.reshape(lam, [-1] + [1] * (len(x.shape) - 1))
    return lam * x + (1 - lam) * ops.take(x, partner_index, axis=0)


def _loss(blend_structure, weights):
    """A loss of the blend of `{"a": x, "b": z}`, with uneven upstream
    gradients, computed in the dtype of `weights`."""

    def loss(x, z, lam):
        mixed = blend_structure({"a": x, "b": z}, lam)
        return sum(
            ops.sum(w * ops.sin(ops.cast(mixed[k], w.dtype)))
            for k, w in weights.items()
        )

    return loss


def _relative_error(got, want):
    """Max abs difference, relative to the largest value (or to 1)."""
    return float(np.max(np.abs(got - want)) / max(1.0, np.max(np.abs(want))))


def _gradient_errors(partner_index, *, scalar_lam, compiled, dtype="float32"):
    """The errors of the gradients (x, z, lam) of the blend against those
    of the plain formula (see `_relative_error`), and their dtypes."""
    x = ops.cast(RNG.normal(size=(5, 3, 2)), dtype)
    z = ops.cast(RNG.normal(size=(5, 4)), dtype)
    z = ops.where(ops.arange(4) == 0, ops.take(z, partner_index, axis=0), z)
    lam = ops.convert_to_tensor(RNG.uniform(size=() if scalar_lam else (5,)))
    lam, index = ops.cast(lam, "float32"), ops.convert_to_tensor(partner_index)
    weights = {"a": RNG.normal(size=(5, 3, 2)), "b": RNG.normal(size=(5, 4))}
    wide_dtype = "float64" if dtype == "float64" else "float32"
    weights = {k: ops.cast(w, wide_dtype) for k, w in weights.items()}

    def ours(structure, lam):
        return blending.blend(structure, lam, index)

    def plain(structure, lam):
        lam = ops.broadcast_to(lam, [5])
        return {k: _plain(v, lam, index) for k, v in structure.items()}

    args = (x, z, lam)
    got = _gradients(_loss(ours, weights), args, compiled=compiled)
    wide = [ops.cast(a, wide_dtype) for a in args]
    want = _gradients(_loss(plain, weights), wide, compiled=compiled)
    return {
        "errors": [
            _relative_error(_numpy(g), _numpy(w))
            for g, w in zip(got, want, strict=True)
        ],
        "dtypes": [keras.backend.standardize_dtype(g.dtype) for g in got],
    }


def _x_only_error():
    """The error of the gradient of x alone, lam a constant (PyTorch then
    skips lam's)."""
    x = ops.convert_to_tensor(RNG.normal(size=(5, 3)), "float32")
    lam = ops.convert_to_tensor(RNG.uniform(size=5), "float32")
    index = ops.convert_to_tensor(PAIRINGS["repeats"])
    weights = ops.convert_to_tensor(RNG.normal(size=(5, 3)), "float32")

    def loss(blend):
        return lambda x: ops.sum(weights * ops.sin(blend(x, lam, index)))

    (got,) = _gradients(loss(blending.blend_tensor), [x])
    (want,) = _gradients(loss(_plain), [x])
    return _relative_error(_numpy(got), _numpy(want))


def gradients():
    """Every gradient case: both pairings, lam per example or scalar,
    eager and compiled; float16 and bfloat16."""
    out = {}
    for pairing, index in PAIRINGS.items():
        for scalar_lam in (False, True):
            for compiled in (False, True):
                if compiled and BACKEND == "torch":
                    continue
                key = f"{pairing}/scalar={scalar_lam}/compiled={compiled}"
                out[key] = _gradient_errors(
                    index, scalar_lam=scalar_lam, compiled=compiled
                )
        for dtype in ("float16", "bfloat16"):
            out[f"{pairing}/{dtype}"] = _gradient_errors(
                index, scalar_lam=False, compiled=False, dtype=dtype
            )
    out["repeats/x_only"] = _x_only_error()
    if "float64" in FLOAT_DTYPES:
        out["repeats/float64"] = _gradient_errors(
            PAIRINGS["repeats"],
            scalar_lam=False,
            compiled=False,
            dtype="float64",
        )
    return out


#: The largest finite half-precision values (3.4e38 is inf in both).
LARGEST = {"float16": 65504.0, "bfloat16": 3.3895313892515355e38}


def forward():
    """The blend of hand-built inputs, self-pairs, half precision and
    integers."""
    x = ops.convert_to_tensor(
        [[0, 1], [10, 20], [-4, 4], [100, -100]], "float32"
    )
    lam = ops.convert_to_tensor([0.25, 0.5, 0.75, 1.0], "float32")
    index = ops.convert_to_tensor([1, 2, 3, 0], "int32")
    out = {"hand": _numpy(blending.blend_tensor(x, lam, index)).tolist()}
    normal = RNG.normal(size=(3, 6))
    infinite = np.array([[np.inf, -np.inf]] * 6, "float32")
    identity = ops.arange(6)
    # lam 0 and 1 (either end of torch.lerp's two formulas) and between.
    lam6 = ops.convert_to_tensor([0.0, 1.0, 0.25, 0.5, 0.75, 1e-7], "float32")
    for dtype in FLOAT_DTYPES:
        big = LARGEST.get(dtype, 3.4e38)  # finite in the dtype
        special = [[np.nan, big, 1e-45, -0.0, 0.0, -big]] * 3
        given = ops.cast(np.concatenate([special, normal]), dtype)
        mixed = blending.blend_tensor(given, lam6, identity)
        out[f"self/{dtype}"] = bool(
            keras.backend.standardize_dtype(mixed.dtype) == dtype
            and np.array_equal(_numpy(mixed), _numpy(given), equal_nan=True)
        )
        mixed = blending.blend_tensor(ops.cast(infinite, dtype), lam6, identity)
        out[f"self_inf/{dtype}"] = _numpy(ops.cast(mixed, "float32")).tolist()
    out.update(_half_forward(index, lam))
    # lam not representable in half precision: blended with lam's float32
    # value, not a float16 rounding of it.
    uneven = ops.convert_to_tensor([0.1, 0.3, 0.7, 0.9], "float32")
    out.update(
        {f"{k}/uneven": v for k, v in _half_forward(index, uneven).items()}
    )
    ints = ops.convert_to_tensor([[1, 2], [3, 4], [5, 6], [7, 8]], "int32")
    mixed = blending.blend_tensor(ints, lam, index)
    out["int"] = [
        keras.backend.standardize_dtype(mixed.dtype),
        _numpy(mixed).tolist(),
    ]
    return out


def ends():
    """`blend_pair` at lam 0 and 1 on unequal finite values (either end of
    torch.lerp's two formulas), per example and scalar: `{dtype: [lam 0
    gives second, lam 1 gives first]}`, each exact or not."""
    out = {}
    first = RNG.normal(size=(4, 5)) * 1000
    second = RNG.normal(size=(4, 5)) * 1000
    for dtype in FLOAT_DTYPES:
        a, b = ops.cast(first, dtype), ops.cast(second, dtype)
        exact = []
        for value, expected in ((0.0, b), (1.0, a)):
            for lam in (ops.full([4], value), ops.convert_to_tensor(value)):
                mixed = blending.blend_pair(a, b, lam)
                exact.append(
                    bool(np.array_equal(_numpy(mixed), _numpy(expected)))
                )
        out[dtype] = [all(exact[:2]), all(exact[2:])]
    return out


def blended_fused():
    """JAX: the blend of a batch, and a whole `MixupLayer` call, compiled
    by `jax.jit`: the instructions of the compiled entry computation that
    make a batch-sized array, other than the inputs (one fusion means one
    pass over the batch)."""
    if BACKEND != "jax":
        return None
    import jax

    x = ops.convert_to_tensor(RNG.uniform(size=(16, 8, 8, 3)), "float32")
    y = ops.convert_to_tensor(RNG.uniform(size=(16, 10)), "float32")
    lam = ops.convert_to_tensor(RNG.uniform(size=16), "float32")
    index = ops.convert_to_tensor(RNG.permutation(16), "int32")
    out = {}
    for name, structure in (("batch", x), ("batch_and_labels", [x, y])):
        compiled = jax.jit(lambda s, lam, i: blending.blend(s, lam, i))
        out[name] = _batch_instructions(compiled, structure, lam, index)
    out["layer"] = _batch_instructions(jax.jit(_layer_call), x)
    return out


def _layer_call(x):
    """A `MixupLayer` call on keras's dict element (draw, label check,
    one-hot, blends), as a jitted step runs it."""
    import keras_mixup

    layer = keras_mixup.MixupLayer(alpha=0.2, num_classes=10, seed=0)
    ids = ops.arange(16, dtype="int32") % 10
    with keras.StatelessScope():
        return layer({"images": x, "labels": ids})["images"]


def _batch_instructions(compiled, *args):
    """The kinds of the instructions of the compiled entry computation
    that make an f32 array of the batch's size (16 rows), parameters
    excepted."""
    text = compiled.lower(*args).compile().as_text()
    entry = text[text.index("ENTRY") :].splitlines()[1:]
    return [
        line.split("=", 1)[1].split("(", 1)[0].split()[-1]
        for line in entry
        if " = f32[16," in line and "parameter(" not in line
    ]


def _half_forward(index, lam):
    """Half precision: blended in float32 and rounded once, never
    overflowing."""
    out = {}
    values = RNG.normal(size=(4, 7)) * 1000
    values[:, 0] = [60000, -60000, 60000, -60000]  # first - second overflows
    for dtype in ("float16", "bfloat16"):
        half = ops.cast(values, dtype)
        mixed = blending.blend_tensor(half, lam, index)
        wide = blending.blend_tensor(ops.cast(half, "float32"), lam, index)
        out[f"half/{dtype}"] = {
            "dtype": keras.backend.standardize_dtype(mixed.dtype),
            "rounded_once": bool(
                np.array_equal(_numpy(mixed), _numpy(ops.cast(wide, dtype)))
            ),
            "finite": bool(np.all(np.isfinite(_numpy(mixed)))),
        }
    return out


def _jit_label_error():
    """On JAX, an out-of-range id inside `jax.jit`: the error when it runs."""
    import jax

    encode = jax.jit(lambda y: labels.encode_labels(y, 3))
    return _error_text(lambda: encode(ops.convert_to_tensor([0, 5, 1])))


def labels_scenario():
    """Encoding, smoothing, reading classes back, and the refusals."""
    ids = ops.convert_to_tensor([2, 0, 1], "int32")
    one_hot = labels.encode_labels(ids, 3)
    masks = ops.convert_to_tensor([[[1], [0]], [[2], [2]]], "int32")
    out = {
        "one_hot": _numpy(one_hot).tolist(),
        "one_hot_dtype": keras.backend.standardize_dtype(one_hot.dtype),
        "column": _numpy(
            labels.encode_labels(ops.expand_dims(ids, 1), 3)
        ).tolist(),
        "smooth": _numpy(labels.encode_labels(ids, 3, 0.3)).tolist(),
        "binary_smooth": _numpy(
            labels.smooth_labels(ops.convert_to_tensor([0.0, 1.0]), 0.2)
        ).tolist(),
        "float_kept": _numpy(labels.encode_labels(one_hot, 3)).tolist(),
        "class_ids": [
            _numpy(labels.class_ids(t)).tolist()
            for t in (one_hot, ops.convert_to_tensor([0.2, 1.9, 1.0]), ids)
        ],
        "masks": _numpy(labels.encode_masks(masks, 3, one_hot=True)).tolist(),
        "out_of_range": _error_text(
            lambda: labels.encode_labels(ops.convert_to_tensor([0, 5, 1]), 3)
        ),
        "negative": _error_text(
            lambda: labels.encode_labels(ops.convert_to_tensor([0, -1]), 3)
        ),
        "float_ids": _error_text(
            lambda: labels.encode_labels(ops.convert_to_tensor([0.0, 1.0]), 3)
        ),
        "width": _error_text(lambda: labels.encode_labels(one_hot, 4)),
    }
    if BACKEND == "jax":
        out["jit_out_of_range"] = _jit_label_error()
    return out


def _fused_true():
    x = ops.convert_to_tensor(RNG.normal(size=(4, 3)), "float32")
    index = ops.convert_to_tensor([1, 2, 3, 0], "int32")
    lam = ops.convert_to_tensor([0.1, 0.2, 0.3, 0.4], "float32")
    return _error_text(lambda: blending.blend_tensor(x, lam, index, fused=True))


def _uses_custom_backward():
    """Whether the gradient goes through `_blend_grads`, the gather-shaped
    backward, rather than the backend's automatic differentiation."""
    calls = []
    original = blending._blend_grads

    def counted(*args):
        calls.append(args)
        return original(*args)

    blending._blend_grads = counted
    try:
        _gradient_errors(
            PAIRINGS["permutation"], scalar_lam=False, compiled=False
        )
    finally:
        blending._blend_grads = original
    return bool(calls)


def blending_scenario():
    """Everything the parent checks, in one process (Keras and the backend
    take seconds to import)."""
    out = {
        "backend": BACKEND,
        "forward": forward(),
        "gradients": gradients(),
        "labels": labels_scenario(),
        "fused_true": _fused_true(),
        "custom_backward": _uses_custom_backward(),
        "ends": ends(),
        "fused": blended_fused(),
    }
    out["tensorflow_imported"] = "tensorflow" in sys.modules
    return out


if __name__ == "__main__":
    print(json.dumps({"blending": blending_scenario}[sys.argv[1]]()))
