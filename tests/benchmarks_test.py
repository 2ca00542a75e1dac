"""Runs benchmarks/throughput.py in `--quick` mode: it runs and prints its
table, and its train section runs on every backend (each in its own
process) and writes `--json`. Timings are not checked."""

import importlib.util
import re
import sys

import pytest
from benchmark_runs import jax_and_torch_runs, load_throughput, tensorflow_runs
from conftest import BACKENDS

#: The quick runs, in background processes (`benchmark_runs`).
tensorflow_quick = tensorflow_runs()
jax_and_torch_quick = jax_and_torch_runs()


@pytest.fixture(scope="module")
def throughput():
    return load_throughput()


def test_quick_run_prints_the_table(tensorflow_quick):
    out, record = tensorflow_quick["table"]
    for text in (
        "tensorflow: ",
        "cpus: ",
        "xla: ",
        "x baseline",
        "copy x*s",
        "keras.layers.MixUp",
        "Mixup fused XLA",
        "Mixup fallback",
        "blend only (XLA)",
        "keras.layers.CutMix",
        "CutMix fused XLA",
        "CutMix fallback",
        "Mixup+CutMix switch",
        "float32 16x8x8x3",
        "uint8 16x8x8x3",
        "random",
    ):
        assert text in out
    data = [row for row in record["rows"] if row["section"] == "data"]
    assert len(data) == 18  # 9 cases x 2 dtypes
    for row in data:
        assert row["rate"] > 0 and row["note"] == "", row
    assert {row["ratio"] for row in data if row["case"] == "copy x*s"} == {1.0}


#: The train section's workloads and cases in `--quick` mode.
TRAIN_CASES = {
    "CNN step, batch 8 of 8x8x3": [
        "plain CNN",
        "MixupLayer",
        "MixupModel input",
        "MixupModel latent",
        "MixupModel input, CutMix",
    ],
    "mixing alone vs the step, batch 8 of 8x8x3": [
        "plain CNN step",
        "MixupLayer: mixing alone",
        "MixupModel input: mixing alone",
        "MixupModel hidden: mixing alone (fwd+bwd)",
    ],
}


@pytest.fixture(scope="module")
def quick_runs(tensorflow_quick, jax_and_torch_quick):
    """The quick run of the train section on every backend, each in its
    own process (JAX's and PyTorch's their default sections): `{backend:
    (stdout, the JSON record)}`."""
    return {"tensorflow": tensorflow_quick["tensorflow"], **jax_and_torch_quick}


@pytest.mark.parametrize("backend", BACKENDS)
def test_quick_train_run_on_each_backend(quick_runs, backend):
    out, record = quick_runs[backend]
    assert f"backend: {backend}" in out and "device: " in out
    assert record["backend"] == backend == record["environment"]["backend"]
    assert record["device"] and record["device"] in out
    # Off TensorFlow the train and anchors sections are the default, and
    # TensorFlow is never imported.
    default = ["train"] if backend == "tensorflow" else ["train", "anchors"]
    assert record["options"]["sections"] == default
    assert all(row["device"] == record["device"] for row in record["rows"])
    assert record["tensorflow_imported"] == (backend == "tensorflow")
    train = [row for row in record["rows"] if row["section"] == "train"]
    cases = {}
    for row in train:
        cases.setdefault(row["workload"], []).append(row["case"])
    compiled = "CNN step, jit_compile=True (torch.compile), batch 8 of 8x8x3"
    expected = dict(TRAIN_CASES)
    if backend == "torch":  # measured without --quick only
        expected[compiled] = ["plain CNN", "MixupLayer"]
    assert cases == expected
    for row in train:
        if row["workload"] == compiled:
            assert row["note"].startswith("skipped: --quick"), row
            continue
        assert row["rate"] > 0 and row["note"] == "", row
        if row["case"].startswith("plain"):  # the baselines
            assert row["ratio"] == 1.0, row


#: The anchors section's workloads (`--quick`), each with its cases.
ANCHOR_WORKLOADS = {
    "torch": {
        "mixup per batch, batch 8 of 8x8x3": [
            "torchvision v2.MixUp",
            "timm Mixup",
            "MixupLayer",
            "MixupModel.mix",
            "Keras layer x*0.5 (floor)",
            "copy x*0.5",
        ],
        "mixup per example, batch 8 of 8x8x3": [
            "kornia RandomMixUpV2",
            "timm Mixup",
            "MixupLayer",
            "MixupModel.mix",
        ],
        "CutMix per batch, batch 8 of 8x8x3": [
            "torchvision v2.CutMix",
            "timm Mixup",
            "MixupLayer",
            "MixupModel.mix",
        ],
        "CutMix per example, batch 8 of 8x8x3": [
            "kornia RandomCutMixV2",
            "timm Mixup",
            "MixupLayer",
            "MixupModel.mix",
        ],
        "blend bandwidth, batch 8 of 8x8x3": [
            "copy (peak)",
            "MixupLayer blend",
        ],
    },
    "jax": {
        "mixup per example (jit), batch 8 of 8x8x3": [
            "hand-written jax.jit mixup",
            "MixupLayer",
            "MixupModel.mix",
        ],
    },
}
#: The GPU target's workload, on both (skipped with --quick, and off GPUs).
RESNET = "ResNet-50 step, batch 256 of 224x224x3"
for _workloads in ANCHOR_WORKLOADS.values():
    _workloads[RESNET] = ["plain ResNet-50 step", "MixupLayer: mixing alone"]


def _anchor_rows(record):
    rows = {}
    for row in record["rows"]:
        if row["section"] == "anchors":
            rows.setdefault(row["workload"], {})[row["case"]] = row
    return rows


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_quick_anchors_run_ours_beside_the_anchors(quick_runs, backend):
    out, record = quick_runs[backend]
    rows = _anchor_rows(record)
    expected = ANCHOR_WORKLOADS[backend]
    assert {w: list(cases) for w, cases in rows.items()} == expected
    for workload, cases in rows.items():
        for name, row in cases.items():
            if workload == RESNET:
                assert row["note"] == "skipped: --quick", row
                continue
            ours = name.startswith(("Mixup", "hand-written", "copy", "Keras"))
            if ours and "CutMix" not in workload:
                assert row["rate"] > 0 and row["ms_per_batch"] > 0, row
            elif "CutMix" in workload and name.startswith("Mixup"):
                # CutMix in the model on PyTorch: measured once it runs,
                # else listed with the reason.
                assert row["rate"] or "refused" in row["note"], row
    if backend == "torch":
        assert (
            "GB/s"
            in rows["blend bandwidth, batch 8 of 8x8x3"]["MixupLayer blend"][
                "note"
            ]
        )
    assert "Targets (ratios measured in this run):" in out
    assert "GPU target: in the model, mixing at most 1%" in out


@pytest.mark.parametrize("anchor", ["torchvision", "timm", "kornia"])
def test_quick_anchor_rows_run_or_say_the_anchor_is_missing(
    quick_runs, throughput, anchor
):
    rows = _anchor_rows(quick_runs["torch"][1])
    mine = [
        row
        for cases in rows.values()
        for name, row in cases.items()
        if name.split()[0] == anchor
    ]
    assert mine
    if importlib.util.find_spec(anchor) is None:
        for row in mine:
            assert row["note"] == (
                f"skipped: {anchor} is not installed "
                "(pip install 'keras-mixup[bench]')"
            ), row
        pytest.skip(f"{anchor} is not installed (the bench extra)")
    for row in mine:
        assert row["rate"] > 0 and row["note"] == "", row


def test_quick_torch_profile_lists_the_ops_of_a_call(quick_runs):
    out, _ = quick_runs["torch"]
    assert "Profile: the PyTorch ops of one MixupLayer call" in out
    for variant in ("'mixup'", "'cutmix'"):
        for mode in ("'elem'", "'batch'"):
            heading = f"MixupLayer, variant={variant}, mode={mode}: "
            assert heading in out
            line = out.split(heading)[1].split("\n")[0]
            assert re.fullmatch(
                r"\d+ us a call \(unprofiled\), \d+ Python function calls "
                "a call",
                line,
            ), line
    for op in ("aten::lerp", "aten::index_select", "aten::_sample_dirichlet"):
        assert op in out
    assert "aten::clone" in out  # CutMix's one copy of the batch
    assert "aten::eq " not in out  # no equality test over the batch


def test_a_missing_anchor_is_a_skipped_case(throughput):
    anchors = sys.modules["anchors"]
    assert anchors.import_anchor("keras_mixup_no_such_anchor") is None
    case = anchors.anchor_case(
        lambda label, build, skip="": throughput.Case(label, build, skip=skip),
        "keras_mixup_no_such_anchor",
        "an anchor",
        lambda: None,
    )
    (row,) = throughput.time_workload(
        throughput.Workload("anchors", "w", [case]), repeats=1
    )
    assert row.note == (
        "skipped: keras_mixup_no_such_anchor is not installed "
        "(pip install 'keras-mixup[bench]')"
    )


def test_targets_are_ratios_of_rows_of_one_run(throughput):
    anchors = sys.modules["anchors"]
    workload = "mixup per batch, batch 8 of 8x8x3"
    row = throughput.Row
    rows = [
        row("anchors", workload, "torchvision v2.MixUp", rate=300.0),
        row("anchors", workload, "MixupLayer", rate=250.0),
        row("anchors", "mixup per example, w", "kornia RandomMixUpV2", 100.0),
        row("anchors", "mixup per example, w", "MixupLayer", rate=50.0),
        row("anchors", "CutMix per batch, w", "torchvision v2.CutMix", 9.0),
        row("anchors", "CutMix per batch, w", "MixupLayer", note="skipped: x"),
    ]
    lines = anchors.check_targets(rows)
    assert (
        f"CPU target, {workload}: MixupLayer <= 1.5x torchvision v2.MixUp: "
        "1.20x (met)"
    ) in lines
    assert (
        "CPU target, mixup per example, w: MixupLayer <= 1x kornia "
        "RandomMixUpV2: 2.00x (MISSED)"
    ) in lines
    assert any(
        line.endswith("v2.CutMix: not measured (skipped: x)") for line in lines
    )
    assert sum(line.startswith("GPU target:") for line in lines) == 2


def test_tf_data_sections_need_the_tensorflow_backend(throughput, capsys):
    for backend in ("jax", "torch"):
        with pytest.raises(SystemExit):
            throughput.parse_args(["--backend", backend, "--sections", "data"])
        assert "run them with --backend tensorflow" in capsys.readouterr().err


def test_another_backend_needs_a_new_process(throughput):
    # This process imported Keras with TensorFlow (conftest).
    with pytest.raises(SystemExit, match="in a new process"):
        throughput.main(["--backend", "jax", "--quick"])


def test_a_failing_case_is_reported_not_raised(throughput):
    def broken():
        raise RuntimeError("boom")

    workload = throughput.Workload(
        "data",
        "w",
        [
            throughput.Case("ok", lambda: (lambda: None, 1)),
            throughput.Case("bad", broken),
        ],
    )
    ok, bad = throughput.time_workload(workload, repeats=1)
    assert ok.rate > 0 and ok.ratio == 1.0
    assert bad.note.startswith("failed: RuntimeError: boom")
    table = throughput.format_table([ok, bad])
    assert "failed: RuntimeError: boom" in table
