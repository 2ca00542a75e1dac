"""The family section of benchmarks/throughput.py in `--quick` mode: every
variant named beside the copy and KerasCV's layers in `tf.data`, and at the
input of a model; its targets are ratios of the run's
rows. Timings are not checked."""

import importlib.util
import sys
import types

import pytest
from benchmark_runs import load_throughput, tensorflow_runs

KERAS_CV = ["KerasCV FourierMix", "KerasCV GridMask", "KerasCV Mosaic"]
MODEL = "mixing at the input vs the step, batch 8 of 8x8x3"

#: The quick runs on TensorFlow, in a background process (`benchmark_runs`).
tensorflow_quick = tensorflow_runs()


@pytest.fixture(scope="module")
def throughput():
    return load_throughput()


@pytest.fixture(scope="module")
def quick_run(tensorflow_quick):
    """`--quick --sections family --variants cutmix,nosuch` on
    TensorFlow: the JSON record. (The model workload's loop is the train
    section's, run on every backend by benchmarks_test.)"""
    return tensorflow_quick["family"][1]


def _cases(record):
    cases = {}
    for row in record["rows"]:
        cases.setdefault((row["section"], row["workload"]), {})[row["case"]] = (
            row
        )
    return cases


def test_quick_family_run_names_every_variant(quick_run):
    cases = _cases(quick_run)
    data = ["copy x*s", "cutmix", "nosuch"]
    model = ["plain CNN step", *(f"{c}: mixing alone" for c in data[1:])]
    expected = {
        ("family data", "float32 8x32x32x3"): data + KERAS_CV,
        ("family model", MODEL): model,
    }
    assert {k: list(v) for k, v in cases.items()} == expected
    for rows in cases.values():
        for name, row in rows.items():
            if name.startswith("nosuch"):
                assert row["note"] == (
                    "skipped: not registered in this keras_mixup"
                ), row
            elif name.startswith("KerasCV") and not importlib.util.find_spec(
                "keras_cv"
            ):
                assert "keras_cv is not installed" in row["note"], row
            else:
                assert row["rate"] > 0 and row["note"] == "", row
    assert quick_run["device"]


def test_family_targets_are_ratios_of_rows_of_one_run(throughput):
    family = sys.modules["variant_family"]
    row, large = throughput.Row, family.LARGE
    rows = [
        row("family data", large, "copy x*s", rate=100.0, ratio=1.0),
        row("family data", large, "mixup", rate=80.0, ratio=1.25),
        row("family data", large, "fmix", rate=50.0, ratio=2.0),
        row("family data", large, "nosuch", note="skipped: not registered"),
        row("family data", large, "KerasCV FourierMix", rate=20.0),
        row("family data", large, "KerasCV GridMask", rate=30.0),
        row("family data", large, "KerasCV Mosaic", rate=40.0),
        row("family data", "float32 128x32x32x3", "mixup", rate=1.0),
        row("family model", "w", "plain CNN step", rate=10.0, ratio=1.0),
        row("family model", "w", "mixup: mixing alone", 1.0, ratio=0.015),
    ]
    lines = family.check_targets(rows)
    what = f"family target, {large}"
    assert lines == [
        f"{what}: mixup <= 1.5x the copy's time: 1.25x (met)",
        # mixup has no KerasCV counterpart: the fastest KerasCV layer.
        f"{what}: mixup >= 2x KerasCV Mosaic's throughput: 2.00x (met)",
        f"{what}: fmix <= 1.5x the copy's time: 2.00x (MISSED)",
        f"{what}: fmix >= 2x KerasCV FourierMix's throughput: 2.50x (met)",
        f"{what}: nosuch: not measured (skipped: not registered)",
        "family target, w: mixup: mixing alone <= 2% of the step: 1.5% (met)",
    ]


def test_variants_default_to_the_registry_with_a_choice_of_all(throughput):
    import keras_mixup

    family = sys.modules["variant_family"]
    bench = types.SimpleNamespace(keras_mixup=keras_mixup)
    registered = list(keras_mixup.variants.REGISTRY)
    args = types.SimpleNamespace(variants=None)
    specs = family._variant_specs(args, bench)
    share = 1.0 / len(registered)
    assert specs == [(n, n, "") for n in registered] + [
        (f"choice of {len(registered)}", dict.fromkeys(registered, share), "")
    ]
    args.variants = " mixup, nosuch,"
    assert family.variant_names(args, bench) == (["mixup"], ["nosuch"])
    assert family._variant_specs(args, bench) == [
        ("mixup", "mixup", ""),
        ("nosuch", None, "not registered in this keras_mixup"),
    ]
