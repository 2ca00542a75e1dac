"""Throughput of keras_mixup against a plain copy and keras.layers.MixUp.

Run from the repository root:

    python benchmarks/throughput.py            # the full run (a few minutes)
    python benchmarks/throughput.py --quick    # tiny shapes, one repeat
    python benchmarks/throughput.py --sections data --repeats 7

Every section is a list of workloads; every workload a list of cases, each
timed by the same function, repeat after repeat in turn (so a load spike on a
shared machine hits all cases of a workload alike), and reported as the
median over the repeats, as a rate and as a ratio to the workload's first
case (its baseline). Sections:

- data: examples/s of a `tf.data` pipeline mapping batches through a plain
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
- train: the training step of a small CNN, plain and with mixup in the model
  (`MixupLayer`, `MixupModel` at the input and at a hidden layer), as
  `model.fit` runs; and the mixing work of a step timed alone against the
  plain step, which resolves the few percent that mixing adds (see
  `_mixing_alone_cases`). Cases whose API is not in this version of
  keras_mixup are listed as skipped.
- pairing: the data path (`Mixup` in `tf.data`) at batch 256 of 32x32x3 with
  each pairing strategy of `keras_mixup.pairing.PAIRINGS` (knn, same_class)
  against random pairing, and knn on cheap `knn_features` ("knn,
  MeanPool(64)", "knn, CountSketch(64)": distances between 64 block means
  or a 64-dimensional count sketch of each example).

To add a case, add a builder to a section's workload (see `Case`); to add a
section, add a function returning workloads to `SECTIONS`.
"""

import argparse
import dataclasses
import inspect
import os
import pathlib
import platform
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# The keras_mixup of this checkout, not an installed one.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_mixup  # noqa: E402
from keras_mixup import blending, pairing  # noqa: E402

NUM_CLASSES = 10
tf.get_logger().setLevel("ERROR")  # one trace per case; no retracing notes


@dataclasses.dataclass
class Case:
    """One thing to time.

    `build()` returns `(run, examples)`: `run()` does one repeat's work and
    `examples` is how many examples it processes. Build errors are reported
    in the table instead of stopping the run; `skip` (a reason) lists the case
    as skipped without building it.
    """

    name: str
    build: object = None
    skip: str = ""


@dataclasses.dataclass
class Workload:
    """Cases timed against each other; the first one is the baseline."""

    section: str
    name: str
    cases: list
    unit: str = "examples/s"


@dataclasses.dataclass
class Row:
    section: str
    workload: str
    case: str
    rate: float = float("nan")
    ratio: float = float("nan")
    best_ratio: float = float("nan")
    note: str = ""


# --------------------------------------------------------------------------
# Timing


def time_workload(workload, repeats):
    """Times every case of a workload, interleaved; returns `Row`s."""
    built = {}
    rows = {}
    for case in workload.cases:
        row = Row(workload.section, workload.name, case.name)
        rows[case.name] = row
        if case.skip:
            row.note = f"skipped: {case.skip}"
            continue
        try:
            run, examples = case.build()
            run()  # warm-up: tracing, XLA compilation, autotuning
        except Exception as error:  # noqa: BLE001 - reported in the table
            row.note = f"failed: {type(error).__name__}: {error}"[:120]
            continue
        built[case.name] = (run, examples)
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
# Section "train": a small CNN's training step. The plain model is the
# baseline; the mixup cases run once `MixupLayer` / `MixupModel` exist
# (issue 3). Adjust `_mixup_models` to their final signatures if needed.


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
    return variants


def _train_case(name, build_model, x, y, steps):
    def build():
        model = build_model()
        model.compile(
            optimizer="adam",
            loss=keras.losses.CategoricalCrossentropy(from_logits=True),
        )
        dataset = tf.data.Dataset.from_tensors((x, y)).repeat()

        def run():
            model.fit(
                dataset,
                epochs=1,
                steps_per_epoch=steps,
                verbose=0,
                shuffle=False,
            )

        return run, steps * int(x.shape[0])

    return Case(name, build)


def train_section(args):
    batch, shape, steps = (
        (8, (8, 8, 3), 2) if args.quick else (128, (32, 32, 3), 30)
    )
    steps = max(1, int(steps * args.scale))
    rng = np.random.default_rng(0)
    x = tf.constant(rng.uniform(0, 1, (batch, *shape)).astype("float32"))
    y = tf.one_hot(rng.integers(0, NUM_CLASSES, batch), NUM_CLASSES)
    cases = [_train_case("plain CNN", lambda: _cnn(shape), x, y, steps)]
    for name, build_model, reason in _mixup_models(shape):
        if build_model is None:
            cases.append(Case(name, skip=reason))
        else:
            cases.append(_train_case(name, build_model, x, y, steps))
    size = f"batch {batch} of {'x'.join(map(str, shape))}"
    return [
        Workload("train", f"CNN step, {size}", cases),
        Workload(
            "train",
            f"mixing alone vs the step, {size}",
            _mixing_alone_cases(shape, x, y, steps),
        ),
    ]


def _calls_case(name, build_fn, calls, examples):
    """`calls` runs of the function `build_fn()` returns, looped inside one
    `tf.function` (a `tf.while_loop`), so no Python call overhead is timed:
    what a step's graph does, and nothing else."""

    def build():
        body = build_fn()

        @tf.function(autograph=False)
        def run():
            def loop(count, total):
                # One value of every output feeds the loop: nothing can be
                # pruned or hoisted out of it.
                for output in tf.nest.flatten(body()):
                    first = tf.reshape(output, [-1])[0]
                    total += tf.cast(first, tf.float32)
                return count + 1, total

            return tf.while_loop(
                lambda count, _: count < calls,
                loop,
                [tf.constant(0), tf.constant(0.0)],
            )

        return run, calls * examples

    return Case(name, build)


def _mixing_alone_cases(shape, x, y, calls):
    """The training step's mixing work timed alone, against a plain step.

    The whole-step cases above compare `model.fit` runs, whose differences
    of a few percent are below what a shared machine resolves. Here the
    baseline is the plain CNN's training step (a `tf.function` with the
    same model, loss and optimizer) and each other case is only what
    mixing adds to a step, so its "x baseline" is the added fraction: the
    draw and the blend of `MixupLayer`, `MixupModel(mix_at="input")`'s
    `mix`, and for `mix_at="latent"` its `mix` (draw, labels) plus the
    blend of the hidden state forward and backward.
    """

    def plain_step():
        model = _cnn(shape)
        optimizer = keras.optimizers.Adam()
        loss_fn = keras.losses.CategoricalCrossentropy(from_logits=True)
        model(x)
        optimizer.build(model.trainable_variables)

        def step():
            with tf.GradientTape() as tape:
                loss = loss_fn(y, model(x, training=True))
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply(grads, model.trainable_variables)
            return loss

        return step

    def layer_mix():
        layer = keras_mixup.MixupLayer(alpha=0.2)
        return lambda: layer(x, training=True)

    def model_mix(mix_at):
        def build():
            cnn = _cnn(shape, hidden_mixup=mix_at == "latent")
            model = keras_mixup.MixupModel(cnn, alpha=0.2, mix_at=mix_at)
            if mix_at == "input":
                return lambda: model.mix(x, y)[:2]
            hidden = cnn.get_layer("mix_hidden").input.shape[1:]
            h = tf.random.stateless_uniform([x.shape[0], *hidden], [0, 1])

            def mix_and_blend_hidden():
                _, mixed_y, _, plan = model.mix(x, y)
                with tf.GradientTape() as tape:
                    tape.watch(h)
                    out = blending.blend(h, plan.lam, plan.partner_index)
                return mixed_y, tape.gradient(out, h, output_gradients=h)

            return mix_and_blend_hidden

        return build

    builders = [("plain CNN step", plain_step)]
    if hasattr(keras_mixup, "MixupModel"):
        builders += [
            ("MixupLayer: mixing alone", layer_mix),
            ("MixupModel input: mixing alone", model_mix("input")),
            ("MixupModel latent: mixing alone (fwd+bwd)", model_mix("latent")),
        ]
    examples = int(x.shape[0])
    return [
        _calls_case(name, build, calls, examples) for name, build in builders
    ]


# --------------------------------------------------------------------------
# Section "pairing": the data path with each pairing strategy, random first
# (the baseline): `Mixup(pairing=...)` mapped over batches of 256 32x32x3,
# so the ratio is the cost of the whole mixing step, not of the partner
# draw alone (a random permutation of 256 is nearly free).

PAIRING_NAMES = ("random", "same_class", "knn")

#: Cheap `knn_features` timed as extra "knn, <name>" cases: a name and a
#: builder of the features, or None if this version lacks them.
KNN_FEATURES = tuple(
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
    for label, build_features in KNN_FEATURES:
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


SECTIONS = {
    "data": data_section,
    "train": train_section,
    "pairing": pairing_section,
}


# --------------------------------------------------------------------------
# Report


def environment():
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "keras_mixup": keras_mixup.__version__,
        "cpus": os.cpu_count(),
        "machine": f"{platform.system()} {platform.machine()}",
        "xla": blending.xla_available(),
        "load average at start": (
            " ".join(f"{v:.2f}" for v in load) if load else "n/a"
        ),
    }


def format_table(rows):
    """The rows as an aligned text table."""
    header = (
        "section",
        "workload",
        "case",
        "examples/s",
        "x baseline",
        "best x",
        "",
    )
    numeric = (3, 4, 5)
    lines = [header]
    for row in rows:
        cells = [
            "" if np.isnan(value) else f"{value:{spec}}"
            for value, spec in (
                (row.rate, ",.0f"),
                (row.ratio, ".2f"),
                (row.best_ratio, ".2f"),
            )
        ]
        lines.append((row.section, row.workload, row.case, *cells, row.note))
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


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny shapes and one repeat: checks that everything runs",
    )
    parser.add_argument(
        "--sections",
        nargs="+",
        choices=sorted(SECTIONS),
        default=list(SECTIONS),
        help="sections to run (default: all)",
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
    args = parser.parse_args(argv)
    if args.repeats is None:
        args.repeats = 1 if args.quick else 5
    return args


def main(argv=None):
    """Runs the selected sections, prints the table and returns its rows."""
    args = parse_args(argv)
    env = environment()
    print("Environment:")
    for key, value in env.items():
        print(f"  {key}: {value}")
    print(
        f"  repeats: {args.repeats} (median reported), map: "
        f"{'parallel' if args.parallel else 'sequential'}"
        f"{', quick' if args.quick else ''}"
    )
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
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
