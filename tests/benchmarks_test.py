"""Runs benchmarks/throughput.py in `--quick` mode: it runs and prints its
table. Timings are not checked."""

import importlib.util
import pathlib

import pytest

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


def test_train_section_runs_its_baseline(throughput, capsys):
    rows = throughput.main(["--quick", "--sections", "train"])
    assert rows[0].case == "plain CNN" and rows[0].rate > 0
    # Cases of APIs not yet in the package are listed, not failed.
    for row in rows[1:]:
        assert row.rate > 0 or row.note.startswith("skipped"), row
    assert "plain CNN" in capsys.readouterr().out


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
