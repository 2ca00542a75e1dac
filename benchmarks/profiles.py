"""`throughput.py --profile`: the PyTorch ops of one `MixupLayer` call, op by
op.

Under `--backend torch`, `MixupLayer(alpha=0.2, num_classes=10)` on keras's
dict element (the anchors' batch: 128 of 32x32x3, class ids), mixup and
CutMix (`variant="cutmix"`), is called `CALLS` times under `torch.profiler`,
per example and per batch, and every ATen op it runs is listed with its
count and its own time per call (CPU, and the GPU's where there is one).
What is not an op (Keras's layer call, the Python of keras_mixup) is the
rest of the wall time, printed last, with the Python function calls of one
call (counted by `cProfile`, the same on every machine).
"""

import cProfile
import importlib
import pstats
import time

__all__ = ["CALLS", "profile_report"]

#: The profiled calls per mode (after as many unprofiled warm-up calls).
CALLS = 50


def _layer_call(bench, variant, mode, batch, size):
    images, labels, _ = bench.anchors._batch_tensors(bench, batch, size)
    layer = bench.keras_mixup.MixupLayer(
        alpha=0.2, num_classes=bench.NUM_CLASSES, mode=mode, variant=variant
    )
    element = {"images": images, "labels": labels}
    return lambda: layer(element)


def _top_level_ops(profile):
    """`{name: (count, self CPU us, self device us)}` of the ATen ops that
    no other ATen op called (their children's time is in their own)."""
    totals = {}
    for event in profile.events():
        parent = event.cpu_parent
        if not event.name.startswith("aten::"):
            continue
        if parent is not None and parent.name.startswith("aten::"):
            continue
        count, cpu, device = totals.get(event.name, (0, 0.0, 0.0))
        totals[event.name] = (
            count + 1,
            cpu + event.cpu_time_total,
            device + getattr(event, "device_time_total", 0.0),
        )
    return totals


def _python_calls(call, calls):
    """The Python function calls of one `call()` (cProfile over `calls`)."""
    counting = cProfile.Profile()
    counting.enable()
    for _ in range(calls):
        call()
    counting.disable()
    return pstats.Stats(counting).total_calls / calls


def _profile_mode(bench, variant, mode, batch, size, calls):
    torch = importlib.import_module("torch")
    call = _layer_call(bench, variant, mode, batch, size)
    for _ in range(calls):
        call()
    activities = [torch.profiler.ProfilerActivity.CPU]
    if torch.cuda.is_available():
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    start = time.perf_counter()
    for _ in range(calls):
        call()
    bench.anchors._read_back(call(), bench.keras)
    wall = (time.perf_counter() - start) / (calls + 1) * 1e6
    with torch.profiler.profile(activities=activities) as profile:
        for _ in range(calls):
            call()
    return _top_level_ops(profile), wall, _python_calls(call, calls)


def _format(name, totals, wall, calls, python):
    lines = [
        f"{name}: {wall:.0f} us a call (unprofiled), {python:.0f} Python "
        "function calls a call",
        f"  {'op':32s} {'calls':>6s} {'CPU us':>8s} {'GPU us':>8s}",
    ]
    ordered = sorted(totals.items(), key=lambda item: -item[1][1])
    for name, (count, cpu, device) in ordered:
        lines.append(
            f"  {name:32s} {count / calls:6.1f} {cpu / calls:8.1f} "
            f"{device / calls:8.1f}"
        )
    ops = sum(cpu for _, cpu, _ in totals.values()) / calls
    count = sum(c for c, _, _ in totals.values()) / calls
    lines.append(f"  {'all ops':32s} {count:6.1f} {ops:8.1f}")
    lines.append(
        f"  the rest (Keras's layer call, keras_mixup's Python; the "
        f"profiler adds to the ops): about {max(wall - ops, 0):.0f} us"
    )
    return "\n".join(lines)


def profile_report(args, bench):
    """The op-by-op profile of `MixupLayer`, as text (torch only)."""
    if bench.keras.backend.backend() != "torch":
        return "--profile: PyTorch only (run with --backend torch)."
    batch, size, calls = (8, 8, 2) if args.quick else (128, 32, CALLS)
    header = (
        f"Profile: the PyTorch ops of one MixupLayer call on the dict "
        f"element, batch {batch} of {size}x{size}x3, {calls} calls "
        "(count and own time per call):"
    )
    parts = [header]
    for variant in ("mixup", "cutmix"):
        for mode in ("elem", "batch"):
            totals, wall, python = _profile_mode(
                bench, variant, mode, batch, size, calls
            )
            name = f"MixupLayer, variant={variant!r}, mode={mode!r}"
            parts.append(_format(name, totals, wall, calls, python))
    return "\n\n".join(parts)
