"""Throughput of keras_mixup against a plain copy and keras.layers.MixUp.

Run from the repository root:

    python benchmarks/throughput.py            # the full run (a few minutes)
    python benchmarks/throughput.py --quick    # tiny shapes, one repeat
    python benchmarks/throughput.py --sections data --repeats 7
    python benchmarks/throughput.py --backend jax --json jax.json
    python benchmarks/throughput.py --sections family --repeats 3

`--backend` (tensorflow, jax or torch; default tensorflow, whatever
KERAS_BACKEND says) is the Keras backend, set before Keras is imported.
Everything runs on the backend's default device, the GPU if there is one;
the environment printed first names the backend and the device. Under jax
and torch only the "train" section runs (the others time `tf.data`
pipelines, which run TensorFlow whatever the backend), and TensorFlow is
hidden: the script runs as where TensorFlow is not installed, and records
in `--json FILE` that it was not imported (see `write_json`).

Every section is a list of workloads; every workload a list of cases, each
timed by the same function, repeat after repeat in turn (so a load spike on a
shared machine hits all cases of a workload alike), and reported as the
median over the repeats, as a rate and as a ratio to the workload's first
case (its baseline). Sections:

- data (TensorFlow): examples/s of a `tf.data` pipeline mapping batches
  through a plain
  copy (`x * s`, s a random scalar: `x * 1.0` would be optimised away),
  `keras.layers.MixUp`, and `keras_mixup.Mixup` with the fused (XLA) and the
  fallback blend, on float32 and uint8 batches (labels: integer ids, one-hot
  encoded by every case), and the fused blend alone with lam and partners
  fixed ("blend only"): the floor of `Mixup` on the machine; then
  `keras.layers.CutMix`, `keras_mixup.CutMix` (fused and fallback paste)
  and the DeiT switch `Mixup(alpha=0.8, cutmix_alpha=1.0, switch_prob=0.5)`
  on the same batches. By default the
  map is sequential with tf.data's optimizations off, which measures each
  map function's cost per batch;
  `--parallel` times the usual AUTOTUNE pipeline (see `_pipeline_case`).
- train (every backend): the training step of a small CNN, plain and with
  mixup in the model (`MixupLayer`, `MixupModel` at the input and at a
  hidden layer, and CutMix at the input), as `model.fit` runs it (see
  `_fit_inputs`); and the mixing work of a step timed alone against the
  plain step (Keras's own `train_step`), which resolves the few percent that
  mixing adds (see `_mixing_alone_cases`). Cases whose API is not in this
  version of keras_mixup are listed as skipped; under jax and torch, so are
  the mixup cases that raise, with the error as the reason.
- family (every backend; its tf.data part on TensorFlow): every
  registered variant (or `--variants a,b,c`) as a `tf.data` map function
  against the copy and KerasCV's FourierMix, GridMask and Mosaic on
  64x224x224x3 and 128x32x32x3, and at the input of a model against the
  plain step (see `benchmarks/variant_family.py`). Run by name only, as anchors.
- pairing (TensorFlow): the data path (`Mixup` in `tf.data`) at batch 256
  of 32x32x3 with
  each pairing strategy of `keras_mixup.pairing.PAIRINGS` (knn, same_class)
  against random pairing, and knn on cheap `knn_features` ("knn,
  MeanPool(64)", "knn, CountSketch(64)": distances between 64 block means
  or a 64-dimensional count sketch of each example).

To add a case, add a builder to a section's workload (see `Case`); to add a
section, add a function returning workloads to `SECTIONS` (and to
`TF_SECTIONS` if it needs TensorFlow).
"""

import argparse
import dataclasses
import importlib
import importlib.abc
import importlib.util
import inspect
import json
import math
import os
import pathlib
import platform
import re
import statistics
import sys
import time
import types

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# The keras_mixup of this checkout, not an installed one.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import anchors  # noqa: E402 - the benchmarks' folder is on the path now
import profiles  # noqa: E402
import variant_family  # noqa: E402

#: Imported by `load_backend` once the backend is known (Keras reads
#: KERAS_BACKEND once, at import): Keras, keras_mixup and two of its
#: modules, and TensorFlow on the TensorFlow backend only.
keras = keras_mixup = blending = pairing = tf = None

BACKENDS = ("tensorflow", "jax", "torch")
NUM_CLASSES = 10


class _WithoutTensorFlow(importlib.abc.MetaPathFinder):
    """A finder of `sys.meta_path` that no longer finds TensorFlow (and
    finds the rest as before): `import tensorflow` fails, and
    `importlib.util.find_spec("tensorflow")` is `None`, as where TensorFlow
    is not installed."""

    def __init__(self, finder):
        self.finder = finder

    def find_spec(self, fullname, path=None, target=None):
        find_spec = getattr(self.finder, "find_spec", None)
        if fullname.partition(".")[0] == "tensorflow" or find_spec is None:
            return None
        return find_spec(fullname, path, target)

    def __getattr__(self, name):
        return getattr(self.finder, name)


def hide_tensorflow():
    """Runs the rest of the process as where TensorFlow is not installed
    (unless it is already imported)."""
    sys.meta_path[:] = [
        f if isinstance(f, _WithoutTensorFlow) else _WithoutTensorFlow(f)
        for f in sys.meta_path
    ]


def load_backend(backend):
    """Imports Keras on `backend`, keras_mixup, and TensorFlow on the
    TensorFlow backend; under the others TensorFlow is hidden first.

    Raises:
        SystemExit: if Keras is already imported on another backend (a
            process runs one backend).
    """
    loaded = sys.modules.get("keras")
    if loaded is not None and loaded.backend.backend() != backend:
        raise SystemExit(
            f"Keras is already imported with the {loaded.backend.backend()} "
            f"backend; run --backend {backend} in a new process."
        )
    if backend != "tensorflow":
        hide_tensorflow()
    os.environ["KERAS_BACKEND"] = backend
    modules = {
        "keras": importlib.import_module("keras"),
        "keras_mixup": importlib.import_module("keras_mixup"),
        "blending": importlib.import_module("keras_mixup.blending"),
        "pairing": importlib.import_module("keras_mixup.pairing"),
    }
    if backend == "tensorflow":
        modules["tf"] = importlib.import_module("tensorflow")
        # One trace per case; no retracing notes.
        modules["tf"].get_logger().setLevel("ERROR")
    globals().update(modules)


@dataclasses.dataclass
class Case:
    """One thing to time.

    `build()` returns `(run, examples)`: `run()` does one repeat's work and
    `examples` is how many examples it processes. Build errors are reported
    in the table instead of stopping the run; `skip` (a reason) lists the case
    as skipped without building it, and `skip_on_error` (a reason) lists it
    as skipped, with the error, if building or warming it up raises.
    """

    name: str
    build: object = None
    skip: str = ""
    skip_on_error: str = ""


@dataclasses.dataclass
class Workload:
    """Cases timed against each other; the first one is the baseline."""

    section: str
    name: str
    cases: list
    unit: str = "examples/s"
    #: The examples of one call, to report ms per batch (0: not reported).
    batch: int = 0
    #: Bytes each case moves per example, to report GB/s (`{case: bytes}`).
    traffic: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Row:
    section: str
    workload: str
    case: str
    rate: float = float("nan")
    ratio: float = float("nan")
    best_ratio: float = float("nan")
    note: str = ""
    ms_per_batch: float = float("nan")


# --------------------------------------------------------------------------
# Timing


def _build(case, row):
    """Builds and warms up `case` (tracing, XLA compilation, autotuning);
    returns `(run, examples)`, or `None` with the reason in `row.note`."""
    if case.skip:
        row.note = f"skipped: {case.skip}"
        return None
    try:
        run, examples = case.build()
        run()
    except Exception as error:  # noqa: BLE001 - reported in the table
        # Keras wraps errors in layer calls in bold (ANSI codes).
        message = re.sub(r"\x1b\[[0-9;]*m", "", str(error))
        reason = f"{type(error).__name__}: {message}"
        if case.skip_on_error:
            row.note = f"skipped: {case.skip_on_error} ({reason})"
        else:
            row.note = f"failed: {reason}"
        return None
    return run, examples


def time_workload(workload, repeats):
    """Times every case of a workload, interleaved; returns `Row`s."""
    built = {}
    rows = {}
    for case in workload.cases:
        rows[case.name] = Row(workload.section, workload.name, case.name)
        done = _build(case, rows[case.name])
        if done is not None:
            built[case.name] = done
    seconds = {name: [] for name in built}
    for _ in range(repeats):
        for name, (run, _) in built.items():
            start = time.perf_counter()
            run()
            seconds[name].append(time.perf_counter() - start)
    baseline = None
    for case in workload.cases:
        if case.name not in built:
            continue
        median = statistics.median(seconds[case.name])
        best = min(seconds[case.name])
        row = rows[case.name]
        row.rate = built[case.name][1] / median
        if baseline is None:
            baseline = median, best
        row.ratio = median / baseline[0]
        row.best_ratio = best / baseline[1]
        if workload.batch:
            row.ms_per_batch = 1000 * workload.batch / row.rate
        if case.name in workload.traffic:
            gigabytes = row.rate * workload.traffic[case.name] / 1e9
            row.note = f"{gigabytes:.1f} GB/s"
    return list(rows.values())


# --------------------------------------------------------------------------
# Section "data": the tf.data pipeline.


def _pipeline_case(name, fn, x, y, batches, parallel):
    """`Dataset.map(fn)` over one in-memory batch, repeated.

    Sequential (the default): the map runs on demand, with tf.data's default
    graph optimizations and autotuning off, so nothing computes ahead (an
    injected prefetch would fill its buffer while other cases are timed).
    One iterator serves every repeat, and a repeat pulls `batches` batches
    inside the graph (a `tf.while_loop` over `get_next`): no Python per
    batch, and no per-iterator set-up in the timings (instantiating the map
    function costs tens of milliseconds, once per epoch in training). This
    is the cost per batch of each map function.

    Parallel: `num_parallel_calls=AUTOTUNE` and `prefetch(AUTOTUNE)` with
    tf.data's defaults, a fresh iterator per repeat (drained by
    `Dataset.reduce`), so the set-up is included: the throughput of a
    pipeline as it is usually written.
    """

    def build():
        dataset = tf.data.Dataset.from_tensors((x, y)).repeat()
        if parallel:
            dataset = dataset.map(fn, num_parallel_calls=tf.data.AUTOTUNE)
            dataset = dataset.prefetch(tf.data.AUTOTUNE).take(batches)

            def run():
                dataset.reduce(tf.constant(0, tf.int64), lambda n, *_: n + 1)

            return run, batches * int(x.shape[0])
        options = tf.data.Options()
        options.experimental_optimization.apply_default_optimizations = False
        options.autotune.enabled = False
        dataset = dataset.map(fn).with_options(options)
        iterator = iter(dataset)

        @tf.function(autograph=False)
        def pull():
            def body(count):
                element = iterator.get_next()
                with tf.control_dependencies(tf.nest.flatten(element)):
                    return count + 1

            return tf.while_loop(
                lambda count: count < batches, body, [tf.constant(0)]
            )

        return pull, batches * int(x.shape[0])

    return Case(name, build)


def _copy(x, y):
    scale = tf.random.uniform([], 0.5, 1.5)
    return tf.cast(x, tf.float32) * scale, tf.one_hot(y, NUM_CLASSES)


def _keras_layer_fn(layer):
    """A map function through a keras preprocessing layer taking keras's
    dict element (`keras.layers.MixUp`, `keras.layers.CutMix`)."""

    def fn(x, y):
        out = layer({"images": x, "labels": tf.one_hot(y, NUM_CLASSES)})
        return out["images"], out["labels"]

    return fn


def _cutmix_cases(x, y, batches, parallel):
    """`keras.layers.CutMix` (alpha 1), `keras_mixup.CutMix` fused and
    not, and the DeiT switch (`Mixup(alpha=0.8, cutmix_alpha=1.0,
    switch_prob=0.5)`), per example."""
    cases = [
        _pipeline_case(
            "keras.layers.CutMix",
            _keras_layer_fn(keras.layers.CutMix(factor=1.0)),
            x,
            y,
            batches,
            parallel,
        )
    ]
    for label, fused in (("fused XLA", True), ("fallback", False)):
        if fused and not blending.xla_available():
            cases.append(Case(f"CutMix {label}", skip="no XLA"))
            continue
        cutmix = keras_mixup.CutMix(num_classes=NUM_CLASSES, fused=fused)
        cases.append(
            _pipeline_case(f"CutMix {label}", cutmix, x, y, batches, parallel)
        )
    switch = keras_mixup.Mixup(
        alpha=0.8, num_classes=NUM_CLASSES, cutmix_alpha=1.0, switch_prob=0.5
    )
    cases.append(
        _pipeline_case("Mixup+CutMix switch", switch, x, y, batches, parallel)
    )
    return cases


def _mixup_cases(x, y, batches, parallel):
    """`keras_mixup.Mixup` with the fused (XLA) and the fallback blend."""
    cases = []
    for label, fused in (("fused XLA", True), ("fallback", False)):
        if fused and not blending.xla_available():
            cases.append(Case(f"Mixup {label}", skip="no XLA"))
            continue
        mixup = keras_mixup.Mixup(
            alpha=0.2, num_classes=NUM_CLASSES, fused=fused
        )
        cases.append(
            _pipeline_case(f"Mixup {label}", mixup, x, y, batches, parallel)
        )
    return cases


def _blend_only_fn(batch, rng):
    """The floor of `Mixup`: the fused blend alone, with lam and partners
    drawn once outside the pipeline (no seed, Beta draw or permutation per
    batch). What the mixing itself costs against the copy."""
    lam = tf.constant(rng.beta(0.2, 0.2, batch).astype("float32"))
    partner = tf.constant(rng.permutation(batch).astype("int32"))

    def fn(x, y):
        labels = tf.one_hot(y, NUM_CLASSES)
        return tuple(blending.blend([x, labels], lam, partner, fused=True))

    return fn


def data_section(args):
    if args.quick:
        shapes = [("float32", (16, 8, 8, 3), 4), ("uint8", (16, 8, 8, 3), 4)]
    else:
        shapes = [
            ("float32", (128, 32, 32, 3), 400),
            ("float32", (64, 224, 224, 3), 30),
            ("uint8", (128, 32, 32, 3), 400),
            ("uint8", (64, 224, 224, 3), 30),
        ]
    rng = np.random.default_rng(0)
    workloads = []
    for dtype, shape, batches in shapes:
        batches = max(1, int(batches * args.scale))
        x = tf.constant((rng.uniform(0, 255, shape)).astype(dtype))
        y = tf.constant(rng.integers(0, NUM_CLASSES, shape[0]), tf.int32)
        cases = [
            _pipeline_case("copy x*s", _copy, x, y, batches, args.parallel),
            _pipeline_case(
                "keras.layers.MixUp",
                _keras_layer_fn(keras.layers.MixUp(alpha=0.2)),
                x,
                y,
                batches,
                args.parallel,
            ),
        ]
        cases += _mixup_cases(x, y, batches, args.parallel)
        if blending.xla_available():
            cases.append(
                _pipeline_case(
                    "blend only (XLA)",
                    _blend_only_fn(shape[0], rng),
                    x,
                    y,
                    batches,
                    args.parallel,
                )
            )
        cases += _cutmix_cases(x, y, batches, args.parallel)
        name = f"{dtype} {'x'.join(map(str, shape))}"
        workloads.append(Workload("data", name, cases))
    return workloads


# --------------------------------------------------------------------------
# Section "train": a small CNN's training step, on every backend. The plain
# model is the baseline. Off TensorFlow the inputs are NumPy arrays (or
# tensors made from them by `keras.ops`), so nothing needs TensorFlow.


def _cnn(input_shape, hidden_mixup=False):
    """A small CNN; `hidden_mixup` puts a `MixupLayer` after the first
    block, the mix point of `MixupModel(mix_at="latent")`."""
    inputs = keras.Input(input_shape)
    h = keras.layers.Conv2D(32, 3, padding="same", activation="relu")(inputs)
    h = keras.layers.MaxPooling2D()(h)
    if hidden_mixup:
        h = keras_mixup.MixupLayer(alpha=0.2, name="mix_hidden")(h)
    h = keras.layers.Conv2D(64, 3, padding="same", activation="relu")(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    outputs = keras.layers.Dense(NUM_CLASSES)(h)
    return keras.Model(inputs, outputs)


def _compiled(model, jit_compile="auto"):
    model.compile(
        optimizer="adam",
        loss=keras.losses.CategoricalCrossentropy(from_logits=True),
        jit_compile=jit_compile,
    )
    return model


def _mixup_models(input_shape):
    """`(name, build_model or None, reason)` for the mixup variants."""
    variants = []
    if hasattr(keras_mixup, "MixupLayer"):

        def with_layer():
            cnn = _cnn(input_shape)
            inputs = keras.Input(input_shape)
            mixed = keras_mixup.MixupLayer(alpha=0.2)(inputs)
            return keras.Model(inputs, cnn(mixed))

        variants.append(("MixupLayer", with_layer, ""))
    else:
        variants.append(("MixupLayer", None, "no keras_mixup.MixupLayer"))
    for mix_at in ("input", "latent"):
        name = f"MixupModel {mix_at}"
        if hasattr(keras_mixup, "MixupModel"):

            def wrapped(mix_at=mix_at):
                return keras_mixup.MixupModel(
                    _cnn(input_shape, hidden_mixup=mix_at == "latent"),
                    alpha=0.2,
                    mix_at=mix_at,
                )

            variants.append((name, wrapped, ""))
        else:
            variants.append((name, None, "no keras_mixup.MixupModel"))
    variants.append(_cutmix_model(input_shape))
    return variants


def _cutmix_model(input_shape):
    """`(name, build_model or None, reason)` for CutMix in the model:
    `MixupModel(variant="cutmix")` at the input, where the variant protocol
    (`keras_mixup.variants`) is there."""
    name = "MixupModel input, CutMix"
    if importlib.util.find_spec("keras_mixup.variants") is None:
        return name, None, "no variant= in this keras_mixup"

    def wrapped():
        return keras_mixup.MixupModel(
            _cnn(input_shape), alpha=1.0, variant="cutmix", mix_at="input"
        )

    return name, wrapped, ""


def _fit_inputs(x, y, steps):
    """`model.fit` arguments for `steps` batches `(x, y)`, in one epoch. On
    TensorFlow a `tf.data.Dataset` repeating the batch (NumPy arrays cost
    about 0.2 s more set-up per call there, on this CPU); elsewhere the
    batch repeated as NumPy arrays, in order."""
    if keras.backend.backend() == "tensorflow":
        dataset = tf.data.Dataset.from_tensors((x, y)).repeat()
        return {"x": dataset, "steps_per_epoch": steps, "shuffle": False}
    return {
        "x": np.concatenate([x] * steps),
        "y": np.concatenate([y] * steps),
        "batch_size": len(x),
        "shuffle": False,
    }


def _fit_case(
    name, build_model, x, y, steps, skip_on_error="", jit_compile="auto"
):
    """`model.fit` for `steps` batches, one epoch per repeat."""

    def build():
        model = _compiled(build_model(), jit_compile=jit_compile)
        inputs = _fit_inputs(x, y, steps)

        def run():
            model.fit(epochs=1, verbose=0, **inputs)

        return run, steps * len(x)

    return Case(name, build, skip_on_error=skip_on_error)


def train_section(args):
    batch, shape, steps = (
        (8, (8, 8, 3), 2) if args.quick else (128, (32, 32, 3), 30)
    )
    steps = max(1, int(steps * args.scale))
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (batch, *shape)).astype("float32")
    y = np.eye(NUM_CLASSES, dtype="float32")[
        rng.integers(0, NUM_CLASSES, batch)
    ]
    backend = keras.backend.backend()
    # The in-model API on JAX and PyTorch may still be under way: a mixup
    # case that raises there is listed as skipped, the plain ones must run.
    pending = "" if backend == "tensorflow" else f"fails on {backend}"
    cases = [_fit_case("plain CNN", lambda: _cnn(shape), x, y, steps)]
    for name, build_model, reason in _mixup_models(shape):
        if build_model is None:
            cases.append(Case(name, skip=reason))
        else:
            cases.append(_fit_case(name, build_model, x, y, steps, pending))
    size = f"batch {batch} of {'x'.join(map(str, shape))}"
    compiled = []
    if backend == "torch":
        compiled = [
            Workload(
                "train",
                f"CNN step, jit_compile=True (torch.compile), {size}",
                _torch_compile_cases(args, shape, x, y, steps),
            )
        ]
    return [
        Workload("train", f"CNN step, {size}", cases),
        *compiled,
        Workload(
            "train",
            f"mixing alone vs the step, {size}",
            _mixing_alone_cases(shape, x, y, steps, pending),
        ),
    ]


def _torch_compile_cases(args, shape, x, y, steps):
    """The plain CNN and the CNN behind a `MixupLayer`, compiled with
    `jit_compile=True` (on PyTorch, `torch.compile`: the mixing runs in
    the compiled step, its draws breaking the graph where Dynamo cannot
    trace them). Skipped with `--quick`: compiling takes tens of seconds."""
    models = [("plain CNN", lambda: _cnn(shape))]
    models += [(n, b) for n, b, _ in _mixup_models(shape)[:1] if b]
    if args.quick:
        reason = "--quick (compiling takes tens of seconds)"
        return [Case(name, skip=reason) for name, _ in models]
    return [
        _fit_case(name, build, x, y, steps, jit_compile=True)
        for name, build in models
    ]


# The mixing work of a step, timed alone in a loop of `calls` calls, each
# run as the backend runs a training step (see `LOOPS`).


def _feed(total, outputs):
    """`total` plus the first value of every output: every output feeds the
    loop, so nothing can be pruned or hoisted out of it."""
    for output in keras.tree.flatten(outputs):
        first = keras.ops.reshape(keras.ops.stop_gradient(output), [-1])[0]
        total = total + keras.ops.cast(first, "float32")
    return total


def _tf_loop(fn, args, calls):
    """`calls` calls of `fn(*args)` in a `tf.while_loop` in one
    `tf.function`."""

    @tf.function(autograph=False)
    def run():
        def body(count, total):
            return count + 1, _feed(total, fn(*args))

        return tf.while_loop(
            lambda count, _: count < calls,
            body,
            [tf.constant(0), tf.constant(0.0)],
        )[1]

    return run


def _written_variables(fn, args):
    """The Keras variables `fn(*args)` assigns (the state a JAX step must
    carry: weights, optimizer slots, seed generators), found by tracing it
    once in a `keras.StatelessScope` (which assigns nothing)."""
    written = {}

    class Recorder(keras.StatelessScope):
        def add_update(self, update):
            written.setdefault(id(update[0]), update[0])
            super().add_update(update)

    with Recorder():
        # A new function each time: JAX caches the traces of a function.
        importlib.import_module("jax").eval_shape(lambda *a: fn(*a), *args)
    return list(written.values())


def _repeat(step, calls):
    """`calls` calls of `step(total)` from Python, from a total of 0."""

    def run():
        total = keras.ops.zeros((), "float32")
        for _ in range(calls):
            total = step(total)
        return total

    return run


def _jax_loop(fn, args, calls):
    """`calls` calls of `fn(*args)` compiled by `jax.jit`, from Python (on
    CPU, XLA runs a training step in a `lax.fori_loop` many times slower),
    the variables `fn` assigns carried from call to call (and from repeat
    to repeat) through a `keras.StatelessScope`."""
    jax = importlib.import_module("jax")
    variables = _written_variables(fn, args)

    @jax.jit
    def call(values, total, args):
        mapping = list(zip(variables, values, strict=True))
        with keras.StatelessScope(mapping) as scope:
            total = _feed(total, fn(*args))
        return [scope.get_current_value(v) for v in variables], total

    state = {"values": [v.value for v in variables]}

    def step(total):
        state["values"], total = call(state["values"], total, args)
        return total

    return _repeat(step, calls)


def _python_loop(fn, args, calls):
    """`calls` calls of `fn(*args)` from Python: PyTorch runs eagerly, as
    Keras runs its steps there."""
    return _repeat(lambda total: _feed(total, fn(*args)), calls)


LOOPS = {"tensorflow": _tf_loop, "jax": _jax_loop, "torch": _python_loop}


def _loop_case(name, build_body, calls, examples, skip_on_error=""):
    """`calls` calls of the function `build_body()` returns (with its
    arguments, `(fn, args)`), looped on the backend (see `LOOPS`); the
    result is read back, so work queued on a GPU is timed."""

    def build():
        fn, args = build_body()
        loop = LOOPS[keras.backend.backend()](fn, args, calls)
        return (lambda: keras.ops.convert_to_numpy(loop())), calls * examples

    return Case(name, build, skip_on_error=skip_on_error)


def _forward_backward(fn, h):
    """`fn(h)` and its backward pass with `h` as the output gradient, on
    the backend's automatic differentiation."""
    backend = keras.backend.backend()
    if backend == "jax":
        out, backward = importlib.import_module("jax").vjp(fn, h)
        return out, backward(h)[0]
    if backend == "torch":
        torch = importlib.import_module("torch")
        leaf = h.detach().requires_grad_()
        out = fn(leaf)
        return out, torch.autograd.grad(out, leaf, grad_outputs=h)[0]
    with tf.GradientTape() as tape:
        tape.watch(h)
        out = fn(h)
    return out, tape.gradient(out, h, output_gradients=h)


def _plain_step(shape, x, y, build=None):
    """Keras's own training step of the plain CNN (or of the model
    `build()` returns: `model.train_step`, what `fit` runs per batch), on
    one batch; its state carried on JAX."""
    model = _compiled(_cnn(shape) if build is None else build())
    model.train_on_batch(x, y)  # builds the model, optimizer and metrics
    data = (keras.ops.convert_to_tensor(x), keras.ops.convert_to_tensor(y))
    if keras.backend.backend() != "jax":
        return (lambda x, y: model.train_step((x, y))["loss"]), data
    groups = (
        model.trainable_variables,
        model.non_trainable_variables,
        model.optimizer.variables,
        model.metrics_variables,
    )

    def step(x, y):
        state = [[v.value for v in group] for group in groups]
        logs, state = model.train_step(state, (x, y))
        for group, values in zip(groups, state, strict=True):
            for variable, value in zip(group, values, strict=True):
                variable.assign(value)
        return logs["loss"]

    return step, data


def _layer_mix(x):
    """What `MixupLayer` adds to a step at the input: its draw and blend."""
    layer = keras_mixup.MixupLayer(alpha=0.2)
    return (lambda x: layer(x, training=True)), (
        keras.ops.convert_to_tensor(x),
    )


def _input_mix(shape, x, y, **options):
    """What `MixupModel(mix_at="input", **options)` adds to a step: its
    `mix`."""
    options = {"alpha": 0.2, **options}
    model = keras_mixup.MixupModel(_cnn(shape), mix_at="input", **options)
    data = (keras.ops.convert_to_tensor(x), keras.ops.convert_to_tensor(y))
    return (lambda x, y: _step_mix(model, x, y)[:2]), data


def _step_mix(model, x, y):
    """`model.mix(x, y)` as `MixupModel`'s training step runs it: on JAX
    after the step's own value checks (`model_steps.screen`, array ops),
    with the engine's checks off (`model_steps.screened_step_batch`), so
    the jitted step holds no host callback; elsewhere `model.mix`."""
    if keras.backend.backend() != "jax":
        return model.mix(x, y)
    model_steps = importlib.import_module("keras_mixup.model_steps")
    y, _, _ = model_steps.screen(model, y, None)
    batch, plan = model_steps.screened_step_batch(model, (x, y))
    return (*batch, plan)


def _hidden_mix(shape, x, y):
    """What `MixupModel` adds to a step that mixes at a hidden layer: its
    `mix` (draw, labels) and the hidden `MixupLayer`'s blend forward and
    backward, as the model's step runs it (the layer told what to do by the
    step's `mix_step`). `mix_at=["mix_hidden"]` mixes there every step
    (`"latent"` picks the input or that layer)."""
    cnn = _cnn(shape, hidden_mixup=True)
    model = keras_mixup.MixupModel(cnn, alpha=0.2, mix_at=["mix_hidden"])
    layer = cnn.get_layer("mix_hidden")
    hidden = (len(x), *layer.input.shape[1:])
    h = np.random.default_rng(1).uniform(0, 1, hidden).astype("float32")

    def mix_forward_backward(x, y, h):
        _, mixed_y, _, plan = _step_mix(model, x, y)
        (layer.mix_step,) = plan.layer_steps
        try:
            mixed_h, grad_h = _forward_backward(
                lambda h: layer(h, training=True), h
            )
        finally:
            layer.mix_step = None
        return mixed_y, mixed_h, grad_h

    tensors = (x, y, h)
    return mix_forward_backward, tuple(
        map(keras.ops.convert_to_tensor, tensors)
    )


def _mixing_alone_cases(shape, x, y, calls, skip_on_error=""):
    """The training step's mixing work timed alone, against a plain step.

    The whole-step cases above compare `model.fit` runs, whose differences
    of a few percent are below what a shared machine resolves. Here the
    baseline is the plain CNN's training step (Keras's `train_step`, with
    the same model, loss and optimizer) and each other case is only what
    mixing adds to a step, so its "x baseline" is the added fraction: the
    draw and the blend of `MixupLayer`, `MixupModel(mix_at="input")`'s
    `mix`, and at a hidden layer its `mix` (draw, labels) plus the blend of
    the hidden state forward and backward. Each case runs `calls` times
    (see `LOOPS`): in a `tf.while_loop` in one `tf.function` on TensorFlow,
    each call compiled by `jax.jit` on JAX, eagerly on PyTorch (as Keras
    runs a step on each).
    """
    cases = [
        _loop_case(
            "plain CNN step", lambda: _plain_step(shape, x, y), calls, len(x)
        )
    ]
    if not hasattr(keras_mixup, "MixupModel"):
        return cases
    for name, build in (
        ("MixupLayer: mixing alone", lambda: _layer_mix(x)),
        ("MixupModel input: mixing alone", lambda: _input_mix(shape, x, y)),
        (
            "MixupModel hidden: mixing alone (fwd+bwd)",
            lambda: _hidden_mix(shape, x, y),
        ),
    ):
        cases.append(_loop_case(name, build, calls, len(x), skip_on_error))
    return cases


# --------------------------------------------------------------------------
# Section "pairing": the data path with each pairing strategy, random first
# (the baseline): `Mixup(pairing=...)` mapped over batches of 256 32x32x3,
# so the ratio is the cost of the whole mixing step, not of the partner
# draw alone (a random permutation of 256 is nearly free).

PAIRING_NAMES = ("random", "same_class", "knn")


def _knn_features():
    """Cheap `knn_features` timed as extra "knn, <name>" cases: a name and a
    builder of the features, or None if this version lacks them."""
    return tuple(
        (
            f"{name}(64)",
            (lambda name=name: getattr(pairing, name)(dim=64))
            if hasattr(pairing, name)
            else None,
        )
        for name in ("MeanPool", "CountSketch")
    )


def _takes_pairing():
    return "pairing" in inspect.signature(keras_mixup.Mixup).parameters


def pairing_section(args):
    batch, batches = (16, 4) if args.quick else (256, 100)
    batches = max(1, int(batches * args.scale))
    rng = np.random.default_rng(0)
    x = tf.constant(rng.uniform(0, 1, (batch, 32, 32, 3)).astype("float32"))
    y = tf.constant(rng.integers(0, NUM_CLASSES, batch), tf.int32)
    variants = [(name, name, {}) for name in PAIRING_NAMES]
    for label, build_features in _knn_features():
        if build_features is None:
            variants.append((f"knn, {label}", "knn", None))
        else:
            options = {"knn_features": build_features()}
            variants.append((f"knn, {label}", "knn", options))
    cases = []
    for label, name, extra in variants:
        if name not in pairing.PAIRINGS or extra is None:
            cases.append(Case(label, skip="not in keras_mixup.pairing"))
            continue
        options = {"pairing": name, **extra} if _takes_pairing() else {}
        mixup = keras_mixup.Mixup(alpha=0.2, num_classes=NUM_CLASSES, **options)
        cases.append(_pipeline_case(label, mixup, x, y, batches, args.parallel))
    return [Workload("pairing", f"Mixup, batch {batch} of 32x32x3", cases)]


def anchors_section(args):
    """Other libraries' mixup and CutMix beside keras_mixup's (see
    `benchmarks/anchors.py`): under torch and jax."""
    return anchors.anchors_section(args, types.SimpleNamespace(**globals()))


def family_section(args):
    """Every variant of the mixing family against the copy, KerasCV and
    the plain step (see `benchmarks/variant_family.py`): on every backend."""
    return variant_family.family_section(
        args, types.SimpleNamespace(**globals())
    )


SECTIONS = {
    "data": data_section,
    "train": train_section,
    "pairing": pairing_section,
    "anchors": anchors_section,
    "family": family_section,
}
#: The sections a run without `--sections` leaves out (run them by name).
OPT_IN = ("anchors", "family")
#: The sections that time `tf.data` pipelines: TensorFlow only.
TF_SECTIONS = ("data", "pairing")


# --------------------------------------------------------------------------
# Report


def default_device():
    """Where Keras puts a new tensor on this backend: the GPU if there is
    one, else the CPU (with the GPU's name)."""
    tensor = keras.ops.zeros(())
    backend = keras.backend.backend()
    if backend == "jax":
        (device,) = tensor.devices()
        return f"{device.platform}:{device.id} ({device.device_kind})"
    if backend == "torch":
        torch = importlib.import_module("torch")
        if tensor.device.type == "cuda":
            name = torch.cuda.get_device_name(tensor.device)
            return f"{tensor.device} ({name})"
        return str(tensor.device)
    device = tensor.device.rpartition("device:")[2]
    gpus = tf.config.list_physical_devices("GPU")
    if device.startswith("GPU") and gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        return f"{device} ({details.get('device_name', 'GPU')})"
    return device


def environment():
    backend = keras.backend.backend()
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    env = {
        "python": platform.python_version(),
        "backend": backend,
        "device": default_device(),
        backend: importlib.import_module(backend).__version__,
        "keras": keras.__version__,
        "keras_mixup": keras_mixup.__version__,
        "cpus": os.cpu_count(),
        "machine": f"{platform.system()} {platform.machine()}",
    }
    if backend == "tensorflow":
        env["xla"] = blending.xla_available()
    else:
        env["tensorflow"] = "hidden (runs as where it is not installed)"
    if backend == "torch":
        # On a loaded machine, more threads than free cores slow every op.
        env["torch threads"] = importlib.import_module(
            "torch"
        ).get_num_threads()
    env["load average at start"] = (
        " ".join(f"{v:.2f}" for v in load) if load else "n/a"
    )
    return env


def format_table(rows):
    """The rows as an aligned text table."""
    header = (
        "section",
        "workload",
        "case",
        "examples/s",
        "ms/batch",
        "x baseline",
        "best x",
        "",
    )
    numeric = (3, 4, 5, 6)
    lines = [header]
    for row in rows:
        # Three decimals for the small fractions of "mixing alone".
        cells = [
            "" if np.isnan(value) else f"{value:{spec}}"
            for value, spec in (
                (row.rate, ",.0f"),
                (row.ms_per_batch, ".3f"),
                (row.ratio, ".2f" if row.ratio >= 0.1 else ".3f"),
                (row.best_ratio, ".2f" if row.best_ratio >= 0.1 else ".3f"),
            )
        ]
        note = " ".join(row.note.split())[:120]
        lines.append((row.section, row.workload, row.case, *cells, note))
    count = len(header) - 1
    widths = [max(len(line[i]) for line in lines) for i in range(count)]

    def fmt(line):
        cells = [
            line[i].rjust(widths[i])
            if i in numeric
            else line[i].ljust(widths[i])
            for i in range(count)
        ]
        return "  ".join([*cells, line[-1]]).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([fmt(lines[0]), rule] + [fmt(line) for line in lines[1:]])


def write_json(path, env, args, rows, *, tensorflow_imported):
    """Writes the run to `path` as JSON: `backend`, `device`,
    `tensorflow_imported` (whether the run imported TensorFlow: false
    under jax and torch), `environment` (as printed), `options` (the
    command line) and `rows` (each `Row`'s fields; null for a rate or ratio
    not measured)."""

    def measured(value):
        return None if isinstance(value, float) and math.isnan(value) else value

    record = {
        "backend": env["backend"],
        "device": env["device"],
        "tensorflow_imported": tensorflow_imported,
        "environment": env,
        "options": vars(args),
        "rows": [
            {
                **{k: measured(v) for k, v in dataclasses.asdict(row).items()},
                "device": env["device"],
            }
            for row in rows
        ],
    }
    pathlib.Path(path).write_text(json.dumps(record, indent=2) + "\n")


def _parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default="tensorflow",
        help="the Keras backend (default tensorflow); under jax and torch "
        "only the train section runs, and TensorFlow is hidden",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny shapes and one repeat: checks that everything runs",
    )
    parser.add_argument(
        "--sections",
        nargs="+",
        choices=sorted(SECTIONS),
        default=None,
        help="sections to run (default: all but anchors and family on "
        "tensorflow, train and anchors on jax and torch)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="timed repeats per case; the median is reported (default 5, "
        "1 with --quick)",
    )
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="multiplies the batches or steps per repeat",
    )
    parser.add_argument(
        "--parallel",
        action="store_true",
        help="map with num_parallel_calls=AUTOTUNE and prefetch, a fresh "
        "iterator per repeat (default: sequential map without tf.data "
        "optimizations, which measures the cost per batch)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="under torch, the intra-op threads (torch.set_num_threads; "
        "default torch's own). On a shared machine, 1 keeps busy cores from "
        "stalling every op",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="under torch, also print the PyTorch ops of one MixupLayer "
        "call (per example and per batch), each with its count and time "
        "per call (torch.profiler)",
    )
    parser.add_argument(
        "--variants",
        default=None,
        metavar="A,B,C",
        help="the family section's variants, comma-separated (default: "
        "every name in keras_mixup.variants.REGISTRY)",
    )
    parser.add_argument(
        "--json",
        metavar="FILE",
        help="also write the environment and the rows to FILE as JSON",
    )
    return parser


def parse_args(argv):
    """The command line `argv`, with the defaults that depend on others
    filled in.

    Raises:
        SystemExit: for a TensorFlow-only section under jax or torch.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    if args.sections is None:
        on_tf = args.backend == "tensorflow"
        tf_default = [s for s in SECTIONS if s not in OPT_IN]
        args.sections = tf_default if on_tf else ["train", "anchors"]
    tf_only = [s for s in args.sections if s in TF_SECTIONS]
    if args.backend != "tensorflow" and tf_only:
        parser.error(
            f"--sections {' '.join(tf_only)}: these time tf.data pipelines, "
            "which run TensorFlow whatever the Keras backend; run them "
            "with --backend tensorflow (on jax and torch: --sections train)"
        )
    if args.repeats is None:
        args.repeats = 1 if args.quick else 5
    return args


def main(argv=None):
    """Runs the selected sections, prints the table and returns its rows.

    Raises:
        SystemExit: under jax or torch, if TensorFlow was imported.
    """
    args = parse_args(argv)
    load_backend(args.backend)
    if args.threads is not None and args.backend == "torch":
        importlib.import_module("torch").set_num_threads(args.threads)
    env = environment()
    print("Environment:")
    for key, value in env.items():
        print(f"  {key}: {value}")
    run = [f"repeats: {args.repeats} (median reported)"]
    if any(section in TF_SECTIONS for section in args.sections):
        run.append(f"map: {'parallel' if args.parallel else 'sequential'}")
    print("  " + ", ".join(run + ["quick"] * args.quick))
    print()
    rows = []
    for section in args.sections:
        for workload in SECTIONS[section](args):
            rows.extend(time_workload(workload, args.repeats))
    print(format_table(rows))
    print(
        "\nexamples/s: median over the repeats. x baseline: median time over "
        "the median time of the workload's first case (the copy, the plain "
        "CNN, random pairing); lower is faster. best x: the same for the "
        "fastest repeat of each, less sensitive to other load on the machine."
    )
    if {"anchors", "train", "family"} & set(args.sections):
        print("\nTargets (ratios measured in this run):")
        for line in anchors.check_targets(rows) + variant_family.check_targets(
            rows
        ):
            print(f"  {line}")
    if args.profile:
        print(
            "\n"
            + profiles.profile_report(args, types.SimpleNamespace(**globals()))
        )
    imported = "tensorflow" in sys.modules
    print(f"\ntensorflow imported: {'yes' if imported else 'no'}")
    if args.json:
        write_json(args.json, env, args, rows, tensorflow_imported=imported)
    if imported and args.backend != "tensorflow":
        raise SystemExit(f"TensorFlow was imported under {args.backend}.")
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
