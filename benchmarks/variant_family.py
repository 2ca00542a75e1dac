"""The "family" section of `throughput.py`: every variant of the mixing
family side by side, in one run, with the same timing as the other sections.

Variants are the names registered in `keras_mixup.variants.REGISTRY` (every
one by default, `--variants a,b,c` to choose; a name not registered is
listed as skipped), and, with two or more, a choice among all of them
(`variant={a: 1/k, ...}`).

- "family data" (TensorFlow): on float32 batches of 64x224x224x3 and
  128x32x32x3, the `tf.data` map function of each variant
  (`keras_mixup.Mixup(variant=name, num_classes=10)`, the variant's own
  defaults) against the copy (`x * s`, the baseline, as in the data
  section) and KerasCV's `FourierMix`, `GridMask` and `Mosaic` (the
  `bench` extra; skipped, saying so, where KerasCV is not installed).
  Every case maps the same batches through the same sequential pipeline
  (`throughput._pipeline_case`).
- "family model" (every backend): what each variant adds to a training step
  at the input (`MixupModel(cnn, variant=name, mix_at="input").mix`, timed
  alone) against the plain CNN's step at batch 128 of 32x32x3, as the
  train section's "mixing alone" cases.

Targets (`check_targets`, ratios of rows of the run): on 64x224x224x3 each
variant at most 1.5x the copy's time and at least 2x the throughput of its
KerasCV counterpart (`COUNTERPARTS`; a variant without one against the
fastest KerasCV layer); in the model at most 2% added to the step.
"""

import importlib
import importlib.util

__all__ = [
    "COUNTERPARTS",
    "KERAS_CV_LAYERS",
    "check_targets",
    "family_section",
    "variant_names",
]

#: The KerasCV layers timed as anchors (`keras_cv.layers.<name>()` with
#: its defaults).
KERAS_CV_LAYERS = ("FourierMix", "GridMask", "Mosaic")

#: Each variant's KerasCV counterpart, for the throughput target.
COUNTERPARTS = {"fmix": "FourierMix", "gridmix": "GridMask", "mosaic": "Mosaic"}

KERAS_CV_INSTALL = "pip install --no-deps keras-cv==0.9.0 regex"

#: The targets: at most this many times the copy's time, at least this
#: many times KerasCV's throughput (on `LARGE`), at most this fraction
#: added to the step.
COPY_LIMIT = 1.5
KERAS_CV_FACTOR = 2.0
STEP_LIMIT = 0.02
LARGE = "float32 64x224x224x3"


def variant_names(args, bench):
    """`(registered, unknown)`: the names of `--variants` (default: every
    registered variant) that are registered, and those that are not."""
    registry = bench.keras_mixup.variants.REGISTRY
    wanted = getattr(args, "variants", None)
    names = list(registry) if not wanted else wanted.split(",")
    names = [n.strip() for n in names if n.strip()]
    return (
        [n for n in names if n in registry],
        [n for n in names if n not in registry],
    )


def _variant_specs(args, bench):
    """`(case name, variant= value or None, skip reason)` for every
    variant, then the choice among all of them."""
    known, unknown = variant_names(args, bench)
    specs = [(n, n, "") for n in known]
    specs += [(n, None, "not registered in this keras_mixup") for n in unknown]
    if len(known) > 1:
        share = 1.0 / len(known)
        choice = dict.fromkeys(known, share)
        specs.append((f"choice of {len(known)}", choice, ""))
    return specs


def _keras_cv_cases(bench, x, y, batches, parallel):
    """KerasCV's layers as map functions on keras's dict element."""
    if importlib.util.find_spec("keras_cv") is None:
        reason = f"keras_cv is not installed ({KERAS_CV_INSTALL})"
        return [
            bench.Case(f"KerasCV {name}", skip=reason)
            for name in KERAS_CV_LAYERS
        ]
    layers = importlib.import_module("keras_cv").layers
    return [
        bench._pipeline_case(
            f"KerasCV {name}",
            bench._keras_layer_fn(getattr(layers, name)()),
            x,
            y,
            batches,
            parallel,
        )
        for name in KERAS_CV_LAYERS
    ]


def _data_cases(args, bench, x, y, batches):
    """The copy, every variant's map function, KerasCV's layers."""
    parallel = args.parallel
    cases = [
        bench._pipeline_case("copy x*s", bench._copy, x, y, batches, parallel)
    ]
    for name, variant, skip in _variant_specs(args, bench):
        if variant is None:
            cases.append(bench.Case(name, skip=skip))
            continue
        mixer = bench.keras_mixup.Mixup(
            variant=variant, num_classes=bench.NUM_CLASSES
        )
        cases.append(bench._pipeline_case(name, mixer, x, y, batches, parallel))
    return cases + _keras_cv_cases(bench, x, y, batches, parallel)


def _data_workloads(args, bench):
    import numpy as np

    tf = bench.tf
    if args.quick:
        shapes = [((8, 32, 32, 3), 2)]
    else:
        shapes = [((64, 224, 224, 3), 6), ((128, 32, 32, 3), 100)]
    rng = np.random.default_rng(0)
    workloads = []
    for shape, batches in shapes:
        batches = max(1, int(batches * args.scale))
        x = tf.constant(rng.uniform(0, 255, shape).astype("float32"))
        y = tf.constant(rng.integers(0, bench.NUM_CLASSES, shape[0]), tf.int32)
        name = f"float32 {'x'.join(map(str, shape))}"
        workloads.append(
            bench.Workload(
                "family data",
                name,
                _data_cases(args, bench, x, y, batches),
                batch=shape[0],
            )
        )
    return workloads


def _model_workload(args, bench):
    """The plain CNN step, then each variant's mixing at the input."""
    import numpy as np

    batch, shape, calls = (
        (8, (8, 8, 3), 2) if args.quick else (128, (32, 32, 3), 20)
    )
    calls = max(1, int(calls * args.scale))
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (batch, *shape)).astype("float32")
    y = np.eye(bench.NUM_CLASSES, dtype="float32")[
        rng.integers(0, bench.NUM_CLASSES, batch)
    ]
    cases = [
        bench._loop_case(
            "plain CNN step",
            lambda: bench._plain_step(shape, x, y),
            calls,
            batch,
        )
    ]
    for name, variant, skip in _variant_specs(args, bench):
        label = f"{name}: mixing alone"
        if variant is None:
            cases.append(bench.Case(label, skip=skip))
            continue
        cases.append(
            bench._loop_case(
                label,
                lambda variant=variant: bench._input_mix(
                    shape, x, y, variant=variant
                ),
                calls,
                batch,
            )
        )
    size = f"batch {batch} of {'x'.join(map(str, shape))}"
    return bench.Workload(
        "family model", f"mixing at the input vs the step, {size}", cases
    )


def family_section(args, bench):
    """The family section's workloads: the `tf.data` ones on TensorFlow,
    the in-model one on every backend."""
    workloads = []
    if bench.keras.backend.backend() == "tensorflow":
        workloads += _data_workloads(args, bench)
    return workloads + [_model_workload(args, bench)]


def _measured(row):
    return row is not None and row.rate == row.rate


def _data_targets(rows):
    """The copy and KerasCV targets on the 64x224x224x3 workload."""
    data = [
        r for r in rows if r.section == "family data" and r.workload == LARGE
    ]
    by_case = {r.case: r for r in data}
    anchors = [
        by_case.get(f"KerasCV {n}")
        for n in KERAS_CV_LAYERS
        if _measured(by_case.get(f"KerasCV {n}"))
    ]
    lines = []
    for row in data:
        if row.case == "copy x*s" or row.case.startswith("KerasCV"):
            continue
        what = f"family target, {LARGE}: {row.case}"
        bound = f"{COPY_LIMIT:g}x the copy's time"
        lines.append(_limit_line(what, row, COPY_LIMIT, bound, "{:.2f}x"))
        if _measured(row):
            lines.append(_keras_cv_line(what, row, by_case, anchors))
    return lines


def _limit_line(what, row, limit, bound, shown):
    """Whether `row`'s ratio is at most `limit` (worded `bound`; the ratio
    formatted by `shown`), or why it was not measured."""
    if not _measured(row):
        return f"{what}: not measured ({row.note})"
    met = "met" if row.ratio <= limit else "MISSED"
    return f"{what} <= {bound}: {shown.format(row.ratio)} ({met})"


def _keras_cv_line(what, row, by_case, anchors):
    counterpart = COUNTERPARTS.get(row.case)
    if counterpart is not None:
        anchor = by_case.get(f"KerasCV {counterpart}")
        anchors = [anchor] if _measured(anchor) else []
    if not anchors:
        return f"{what} >= {KERAS_CV_FACTOR:g}x KerasCV: not measured"
    anchor = max(anchors, key=lambda r: r.rate)
    factor = row.rate / anchor.rate
    met = "met" if factor >= KERAS_CV_FACTOR else "MISSED"
    return (
        f"{what} >= {KERAS_CV_FACTOR:g}x {anchor.case}'s throughput: "
        f"{factor:.2f}x ({met})"
    )


def check_targets(rows):
    """Lines saying, for each family target, the ratio measured in this
    run and whether it is met."""
    lines = _data_targets(rows)
    for row in rows:
        if row.section != "family model" or row.case == "plain CNN step":
            continue
        what = f"family target, {row.workload}: {row.case}"
        bound = f"{STEP_LIMIT:.0%} of the step"
        lines.append(_limit_line(what, row, STEP_LIMIT, bound, "{:.1%}"))
    return lines
