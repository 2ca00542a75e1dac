"""Runs benchmarks/throughput.py in `--quick` mode: it runs and prints its
table, and its train section runs on every backend (each in its own
process) and writes `--json`. Timings are not checked."""

import contextlib
import importlib.util
import io
import json
import os
import pathlib
import subprocess
import sys

import pytest
from conftest import BACKENDS, finish_processes

SCRIPT = pathlib.Path(__file__).parents[1] / "benchmarks" / "throughput.py"


@pytest.fixture(scope="module")
def throughput():
    spec = importlib.util.spec_from_file_location("throughput", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_run_prints_the_table(throughput, capsys):
    rows = throughput.main(["--quick", "--sections", "data", "pairing"])
    out = capsys.readouterr().out
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
    data = [row for row in rows if row.section == "data"]
    assert len(data) == 18  # 9 cases x 2 dtypes
    for row in data:
        assert row.rate > 0 and row.note == "", row
    assert {row.ratio for row in data if row.case == "copy x*s"} == {1.0}


#: The train section's workloads and cases in `--quick` mode.
TRAIN_CASES = {
    "CNN step, batch 8 of 8x8x3": [
        "plain CNN",
        "MixupLayer",
        "MixupModel input",
        "MixupModel latent",
    ],
    "mixing alone vs the step, batch 8 of 8x8x3": [
        "plain CNN step",
        "MixupLayer: mixing alone",
        "MixupModel input: mixing alone",
        "MixupModel hidden: mixing alone (fwd+bwd)",
    ],
}


def _start_quick_run(backend, folder):
    """`throughput.py --backend B --quick --json FOLDER/B.json`, its output
    to `FOLDER/B.out`, with KERAS_BACKEND naming another backend: the flag
    decides."""
    other = BACKENDS[(BACKENDS.index(backend) + 1) % len(BACKENDS)]
    env = dict(os.environ, KERAS_BACKEND=other, TF_CPP_MIN_LOG_LEVEL="3")
    command = [sys.executable, str(SCRIPT), "--backend", backend]
    command += ["--quick", "--json", str(folder / f"{backend}.json")]
    with open(folder / f"{backend}.out", "w") as out:
        return subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.PIPE, text=True
        )


@pytest.fixture(scope="module")
def quick_runs(throughput, tmp_path_factory):
    """The quick run of the train section on every backend: JAX and PyTorch
    in their own processes (their default sections), TensorFlow in this
    one (which imported Keras with it) meanwhile. Returns `{backend:
    (stdout, the JSON record)}`."""
    folder = tmp_path_factory.mktemp("throughput")
    others = [b for b in BACKENDS if b != "tensorflow"]
    processes = [_start_quick_run(backend, folder) for backend in others]
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            throughput.main(
                ["--quick", "--sections", "train", "--json"]
                + [str(folder / "tensorflow.json")]
            )
    finally:
        finish_processes(processes, timeout=240)
    (folder / "tensorflow.out").write_text(out.getvalue())
    return {
        backend: (
            (folder / f"{backend}.out").read_text(),
            json.loads((folder / f"{backend}.json").read_text()),
        )
        for backend in BACKENDS
    }


@pytest.mark.parametrize("backend", BACKENDS)
def test_quick_train_run_on_each_backend(quick_runs, backend):
    out, record = quick_runs[backend]
    assert f"backend: {backend}" in out and "device: " in out
    assert record["backend"] == backend == record["environment"]["backend"]
    assert record["device"] and record["device"] in out
    # Off TensorFlow the train section is the default, and TensorFlow is
    # never imported.
    assert record["options"]["sections"] == ["train"]
    assert record["tensorflow_imported"] == (backend == "tensorflow")
    train = [row for row in record["rows"] if row["section"] == "train"]
    cases = {}
    for row in train:
        cases.setdefault(row["workload"], []).append(row["case"])
    assert cases == TRAIN_CASES
    for row in train:
        assert row["rate"] > 0 and row["note"] == "", row
        if row["case"].startswith("plain"):  # the baselines
            assert row["ratio"] == 1.0, row


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
