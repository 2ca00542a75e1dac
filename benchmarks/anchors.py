"""The "anchors" section of `throughput.py`: keras_mixup's in-model mixing
timed beside other libraries' mixup and CutMix, in one run, on the same
tensors.

Under `--backend torch`: `MixupLayer` (keras's dict element, channels last)
and `MixupModel.mix` against torchvision's `v2.MixUp` and `v2.CutMix`,
timm's `Mixup` and kornia's `RandomMixUpV2` and `RandomCutMixV2` (the same
values, channels first), per batch and per example where the anchor has
it, with the floors of the machine: a copy (`x * 0.5`) and a Keras layer
whose `call` is `x * 0.5`. Under `--backend jax`: `MixupLayer` and
`MixupModel.mix` in a jitted step against a hand-written `jax.jit` mixup.
Every case runs its call `calls` times eagerly (PyTorch) or as one jitted
call each (JAX), and the last result is read back, so work queued on a GPU
is timed; each workload's first case (the anchor) is its baseline, so its
"x baseline" column is the ratio to the anchor (see `TARGETS`).

The anchors are installed by the `bench` extra (`pip install
keras-mixup[bench]`), never by the package; an anchor that is not installed
is listed as skipped, saying so. torchvision's wheels from the package
registry are built for CUDA: beside a CPU-only torch its C++ operators do
not load, and `import torchvision` fails registering fake kernels for two
of them (`torchvision::nms`, `qnms`). `import_torchvision` then declares
those two operator schemas and imports it again: the transforms timed here
are pure Python and never call them.
"""

import functools
import importlib
import importlib.util
import sys

__all__ = [
    "ANCHORS",
    "TARGETS",
    "anchors_section",
    "check_targets",
    "import_anchor",
]

#: The anchor packages and the module each case imports.
ANCHORS = ("torchvision", "timm", "kornia")
INSTALL = "pip install 'keras-mixup[bench]'"

#: `(workload prefix, case, the case it is compared to, the largest
#: ratio, where)`: the targets of the in-model mixing (issue 26).
TARGETS = (
    ("mixup per batch", "MixupLayer", "torchvision v2.MixUp", 1.5, "CPU"),
    ("mixup per example", "MixupLayer", "kornia RandomMixUpV2", 1.0, "CPU"),
    ("CutMix per batch", "MixupLayer", "torchvision v2.CutMix", 1.5, "CPU"),
    ("CutMix per example", "MixupLayer", "kornia RandomCutMixV2", 1.0, "CPU"),
    (
        "mixing alone vs the step",
        "MixupModel hidden: mixing alone (fwd+bwd)",
        "plain CNN step",
        0.05,
        "CPU",
    ),
    (
        "ResNet-50 step",
        "MixupLayer: mixing alone",
        "plain ResNet-50 step",
        0.01,
        "GPU",
    ),
)

#: The GPU targets, written beside the CPU ones; no GPU figure has been
#: measured for them until a run on a GPU reports one.
GPU_TARGETS = (
    "in the model, mixing at most 1% of a ResNet-50 training step at "
    "batch 256 (workload 'ResNet-50 step': runs on a GPU only)",
    "the blend at 80% of the device's memory bandwidth or better (workload "
    "'blend bandwidth': 'MixupLayer blend' against 'copy (peak)')",
)


def _declare_torchvision_operators():
    """Declares the two operator schemas `torchvision._meta_registrations`
    registers fake kernels for, when its C++ library did not load."""
    import torch

    library = torch.library.Library("torchvision", "DEF")
    for name in ("nms", "qnms"):
        library.define(
            f"{name}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor"
        )
    return library


_DECLARED = []


def import_torchvision():
    """`torchvision`, imported beside a torch its C++ operators were not
    built for (see the module docstring)."""
    try:
        return importlib.import_module("torchvision")
    except RuntimeError as error:
        if "torchvision::" not in str(error) or _DECLARED:
            raise
    for name in [
        m for m in sys.modules if m.partition(".")[0] == "torchvision"
    ]:
        del sys.modules[name]
    _DECLARED.append(_declare_torchvision_operators())
    return importlib.import_module("torchvision")


def import_anchor(name):
    """The anchor package `name` (one of `ANCHORS`), or `None` if it is not
    installed."""
    if importlib.util.find_spec(name) is None:
        return None
    if name == "torchvision" or name == "timm":  # timm imports torchvision
        import_torchvision()
    return importlib.import_module(name)


def _missing(name):
    return f"{name} is not installed ({INSTALL})"


def anchor_case(make_case, name, label, build):
    """`make_case(label, build)`, or a skipped case when the anchor `name`
    is not installed."""
    if import_anchor(name) is None:
        return make_case(label, None, skip=_missing(name))
    return make_case(label, build)


def check_targets(rows):
    """Lines saying, for each target of `TARGETS`, the ratio measured in
    this run and whether it is met."""
    by_name = {(row.workload, row.case): row for row in rows}
    lines = []
    for prefix, case, anchor, limit, where in TARGETS:
        found = [
            (w, by_name.get((w, case)), by_name.get((w, anchor)))
            for (w, c) in by_name
            if w.startswith(prefix)
            and c == case
            and (w, anchor) in by_name  # not a workload of other anchors
        ]
        for workload, ours, theirs in found:
            lines.append(
                _target_line(workload, case, anchor, limit, where, ours, theirs)
            )
    lines += [f"GPU target: {text}" for text in GPU_TARGETS]
    return lines


def _target_line(workload, case, anchor, limit, where, ours, theirs):
    what = f"{where} target, {workload}: {case} <= {limit:g}x {anchor}"
    if theirs is None or not theirs.rate == theirs.rate:
        return f"{what}: not measured ({theirs.note if theirs else 'no row'})"
    if not ours.rate == ours.rate:
        return f"{what}: not measured ({ours.note})"
    ratio = theirs.rate / ours.rate
    return f"{what}: {ratio:.2f}x ({'met' if ratio <= limit else 'MISSED'})"


# --------------------------------------------------------------------------
# Cases: each builder returns a function of no arguments doing one call.


def _read_back(output, keras):
    """One value of `output` on the host: queued GPU work is done."""
    first = keras.tree.flatten(output)[0]
    return keras.ops.convert_to_numpy(keras.ops.reshape(first, [-1])[:1])


def _eager_case(bench, name, build, calls, batch, skip=""):
    """`calls` calls of the function `build()` returns, eagerly, the last
    result read back (PyTorch)."""
    if build is None:
        return bench.Case(name, skip=skip)

    def built():
        call = build()

        def run():
            for _ in range(calls):
                output = call()
            _read_back(output, bench.keras)

        return run, calls * batch

    return bench.Case(name, built)


def _floor(bench, images):
    """The floor of a Keras layer call: a layer whose `call` is `x * 0.5`."""

    class Half(bench.keras.layers.Layer):
        def call(self, x):
            return x * 0.5

    layer = Half()
    return lambda: layer(images)


def _ours(bench, mode, input_shape, **options):
    """Builders of `MixupLayer` on keras's dict element and of
    `MixupModel.mix`, each returning a call `f(x, y)` (channels last,
    class ids)."""
    keras_mixup = bench.keras_mixup
    options = dict(
        alpha=0.2, num_classes=bench.NUM_CLASSES, mode=mode, **options
    )

    def layer():
        mixing = keras_mixup.MixupLayer(**options)
        return lambda x, y: mixing({"images": x, "labels": y})

    def model():
        cnn = bench._cnn(tuple(input_shape))
        wrapped = keras_mixup.MixupModel(cnn, mix_at="input", **options)
        return lambda x, y: wrapped.mix(x, y)[:2]

    return layer, model


def _cutmix_options(keras_mixup):
    """The options asking `MixupLayer` for CutMix alone: `variant="cutmix"`
    where the layer takes it, else the mixup/CutMix switch always on."""
    try:
        keras_mixup.MixupLayer(variant="cutmix")
        return {"variant": "cutmix"}
    except (TypeError, ValueError) as error:
        if "variant" not in str(error):
            raise
    return {"cutmix_alpha": 1.0, "switch_prob": 1.0}


def _torch_anchors(kind, mode, first, labels):
    """`(name, package, builder)` of the anchors of one workload (channels
    first); `kind` is "mixup" or "cutmix", `mode` "batch" or "elem"."""

    def torchvision():
        from torchvision.transforms import v2

        transform = (
            v2.MixUp(alpha=0.2, num_classes=10)
            if kind == "mixup"
            else v2.CutMix(alpha=1.0, num_classes=10)
        )
        return lambda: transform(first, labels)

    def timm():
        from timm.data import Mixup

        alphas = (0.2, 0.0) if kind == "mixup" else (0.0, 1.0)
        mixing = Mixup(
            mixup_alpha=alphas[0],
            cutmix_alpha=alphas[1],
            mode=mode,
            label_smoothing=0.0,
            num_classes=10,
        )
        mixed = first.clone()  # timm mixes in place
        return lambda: mixing(mixed, labels)

    def kornia():
        from kornia import augmentation

        keys = {"data_keys": ["input", "class"]}
        transform = (
            augmentation.RandomMixUpV2(**keys)
            if kind == "mixup"
            else augmentation.RandomCutMixV2(
                beta=1.0, use_correct_lambda=True, **keys
            )
        )
        return lambda: transform(first, labels)

    transform = "v2.MixUp" if kind == "mixup" else "v2.CutMix"
    kornia_name = "RandomMixUpV2" if kind == "mixup" else "RandomCutMixV2"
    if mode == "batch":
        return [
            (f"torchvision {transform}", "torchvision", torchvision),
            ("timm Mixup", "timm", timm),
        ]
    return [
        (f"kornia {kornia_name}", "kornia", kornia),
        ("timm Mixup", "timm", timm),
    ]


def _batch_tensors(bench, batch, size):
    """One batch of `batch` RGB images `size` x `size` and class ids, on
    the default device: channels last (ours) and first (the anchors')."""
    import numpy as np

    keras = bench.keras
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (batch, size, size, 3)).astype("float32")
    y = rng.integers(0, bench.NUM_CLASSES, batch)
    images = keras.ops.convert_to_tensor(x)
    labels = keras.ops.convert_to_tensor(y, "int64")
    first = keras.ops.convert_to_tensor(
        np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    )
    return images, labels, first


def _torch_workload(bench, kind, mode, tensors, calls):
    """One workload: the anchors first (the first is the baseline), then
    `MixupLayer` and `MixupModel.mix`, then the floors (mixup only)."""
    images, labels, first = tensors
    cases = [
        anchor_case(
            lambda label, build, skip="": _eager_case(
                bench, label, build, calls, len(images), skip
            ),
            package,
            name,
            build,
        )
        for name, package, build in _torch_anchors(kind, mode, first, labels)
    ]
    options = {} if kind == "mixup" else _cutmix_options(bench.keras_mixup)
    layer, model = _ours(bench, mode, images.shape[1:], **options)
    refused = "" if kind == "mixup" else "refused on this backend"
    for name, build in (("MixupLayer", layer), ("MixupModel.mix", model)):
        case = _eager_case(
            bench,
            name,
            lambda build=build: functools.partial(build(), images, labels),
            calls,
            len(images),
        )
        case.skip_on_error = refused
        cases.append(case)
    if kind == "mixup" and mode == "batch":
        cases.append(
            _eager_case(
                bench,
                "Keras layer x*0.5 (floor)",
                lambda: _floor(bench, images),
                calls,
                len(images),
            )
        )
        cases.append(
            _eager_case(
                bench,
                "copy x*0.5",
                lambda: lambda: images * 0.5,
                calls,
                len(images),
            )
        )
    return cases


def _torch_workloads(args, bench):
    batch, size, calls = (8, 8, 2) if args.quick else (128, 32, 200)
    calls = max(1, int(calls * args.scale))
    tensors = _batch_tensors(bench, batch, size)
    shape = f"batch {batch} of {size}x{size}x3"
    names = {"batch": "per batch", "elem": "per example"}
    workloads = [
        bench.Workload(
            "anchors",
            f"{kind_name} {names[mode]}, {shape}",
            _torch_workload(bench, kind, mode, tensors, calls),
            batch=batch,
        )
        for kind, kind_name in (("mixup", "mixup"), ("cutmix", "CutMix"))
        for mode in ("batch", "elem")
    ]
    return workloads + [_bandwidth_workload(args, bench)]


def _bandwidth_workload(args, bench):
    """The blend of `MixupLayer` (partners gathered, then blended: two
    passes) against a copy of the same tensor, the device's practical peak;
    the note gives each as GB/s, counting a copy as 2 and a blend as 3
    tensor sizes moved (read the batch and its partners, write the
    result: what a one-pass blend would move)."""
    import numpy as np

    keras, blending = bench.keras, bench.blending
    batch, size, calls = (8, 8, 2) if args.quick else (256, 64, 50)
    if "cuda" in bench.default_device():
        size = 224
    calls = max(1, int(calls * args.scale))
    rng = np.random.default_rng(0)
    x = keras.ops.convert_to_tensor(
        rng.uniform(0, 1, (batch, size, size, 3)).astype("float32")
    )
    lam = keras.ops.convert_to_tensor(rng.uniform(0, 1, batch), "float32")
    index = keras.ops.convert_to_tensor(rng.permutation(batch), "int32")
    copy = _eager_case(
        bench, "copy (peak)", lambda: lambda: x * 1.0, calls, batch
    )
    blend = _eager_case(
        bench,
        "MixupLayer blend",
        lambda: lambda: blending.blend_tensor(x, lam, index),
        calls,
        batch,
    )
    bytes_ = 4 * size * size * 3  # per example
    return bench.Workload(
        "anchors",
        f"blend bandwidth, batch {batch} of {size}x{size}x3",
        [copy, blend],
        batch=batch,
        traffic={"copy (peak)": 2 * bytes_, "MixupLayer blend": 3 * bytes_},
    )


def _resnet_workload(args, bench):
    """The GPU target's workload: a ResNet-50 training step at batch 256
    (224x224x3, 1000 classes, no pretrained weights), against what
    `MixupLayer` adds to it (its draw and blend, on the dict element).
    Runs on a GPU only (a CPU step takes minutes)."""
    import numpy as np

    keras = bench.keras
    batch, shape, calls = 256, (224, 224, 3), max(1, int(10 * args.scale))
    names = ("plain ResNet-50 step", "MixupLayer: mixing alone")
    device = bench.default_device()
    title = f"ResNet-50 step, batch {batch} of 224x224x3"
    if "cuda" not in device and "gpu" not in device or args.quick:
        reason = "--quick" if args.quick else f"needs a GPU (device {device})"
        cases = [bench.Case(name, skip=reason) for name in names]
        return bench.Workload("anchors", title, cases, batch=batch)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (batch, *shape)).astype("float32")
    y = np.eye(1000, dtype="float32")[rng.integers(0, 1000, batch)]
    resnet = lambda: keras.applications.ResNet50(  # noqa: E731
        weights=None, input_shape=shape, classes=1000
    )
    labels = keras.ops.convert_to_tensor(rng.integers(0, 1000, batch))

    def mixing():
        layer = bench.keras_mixup.MixupLayer(alpha=0.2, num_classes=1000)
        fn = lambda x, y: layer({"images": x, "labels": y})  # noqa: E731
        return fn, (keras.ops.convert_to_tensor(x), labels)

    cases = [
        bench._loop_case(
            names[0],
            lambda: bench._plain_step(shape, x, y, build=resnet),
            calls,
            batch,
        ),
        bench._loop_case(names[1], mixing, calls, batch),
    ]
    return bench.Workload("anchors", title, cases, batch=batch)


def anchors_section(args, bench):
    """The anchors section's workloads for the backend (torch or jax)."""
    backend = bench.keras.backend.backend()
    if backend == "torch":
        workloads = _torch_workloads(args, bench)
    elif backend == "jax":
        workloads = _jax_workloads(args, bench)
    else:
        return []
    return workloads + [_resnet_workload(args, bench)]


def _jax_mixup(key, x, y):
    """mixup written by hand in JAX: lam ~ Beta(0.2, 0.2) per example, a
    random permutation, one-hot labels, both blended."""
    import jax

    lam_key, partner_key = jax.random.split(key)
    lam = jax.random.beta(lam_key, 0.2, 0.2, (x.shape[0],))
    partners = jax.random.permutation(partner_key, x.shape[0])
    labels = jax.nn.one_hot(y, 10)

    def blend(t):
        weight = lam.reshape((-1,) + (1,) * (t.ndim - 1))
        return weight * t + (1 - weight) * t[partners]

    return blend(x), blend(labels)


def _jax_loop_with_key(bench, fn, args, calls):
    """`calls` calls of `fn(key, *args)`, each one `jax.jit` call that
    splits the key it carries."""
    import jax

    @jax.jit
    def call(key, total, args):
        key, draw = jax.random.split(key)
        return key, bench._feed(total, fn(draw, *args))

    def run():
        key, total = jax.random.key(0), bench.keras.ops.zeros((), "float32")
        for _ in range(calls):
            key, total = call(key, total, args)
        return total

    return run


def _jax_workloads(args, bench):
    """A hand-written `jax.jit` mixup against `MixupLayer` and
    `MixupModel.mix`, each call one jitted function (see `_jax_loop`)."""
    keras = bench.keras
    batch, size, calls = (8, 8, 2) if args.quick else (128, 32, 200)
    calls = max(1, int(calls * args.scale))
    images, labels, _ = _batch_tensors(bench, batch, size)
    labels = keras.ops.cast(labels, "int32")

    def hand_written():
        loop = _jax_loop_with_key(bench, _jax_mixup, (images, labels), calls)
        return (lambda: keras.ops.convert_to_numpy(loop())), calls * batch

    layer, model = _ours(bench, "elem", images.shape[1:])
    cases = [bench.Case("hand-written jax.jit mixup", hand_written)]
    for name, build in (("MixupLayer", layer), ("MixupModel.mix", model)):
        cases.append(
            bench._loop_case(
                name,
                lambda build=build: (build(), (images, labels)),
                calls,
                batch,
            )
        )
    return [
        bench.Workload(
            "anchors",
            f"mixup per example (jit), batch {batch} of {size}x{size}x3",
            cases,
            batch=batch,
        )
    ]
