"""The README's main example runs end to end and learns."""

import contextlib
import importlib.util
import io
import pathlib
import sys

import pytest
from example_runs import quick_run

EXAMPLE = pathlib.Path(__file__).parents[1] / "examples" / "quickstart.py"
# The example imports its neighbours (command_line, tables, ...).
sys.path.insert(0, str(EXAMPLE.parent))


def load_example():
    spec = importlib.util.spec_from_file_location("quickstart", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def two_runs():
    """Two `--quick` runs of one loaded example (the tests share them):
    `[(returned errors, printed text)]`."""
    example = load_example()
    runs = []
    for _ in range(2):
        printed = io.StringIO()
        with quick_run(), contextlib.redirect_stdout(printed):
            runs.append((example.main(["--quick"]), printed.getvalue()))
    return runs


def test_quickstart_trains_both_models_and_prints_their_errors(two_runs):
    errors, printed = two_runs[0]
    assert list(errors) == ["ERM", "mixup alpha=0.2"]
    # Two epochs on digits already beat chance (90% error) by far.
    assert all(0.0 <= e[0] < 0.3 for e in errors.values())
    assert "ERM" in printed and "mixup alpha=0.2" in printed
    assert "test error" in printed and "seed 0" in printed


def test_quickstart_prints_the_same_table_on_every_run(two_runs):
    (first, table), (again, table_again) = two_runs
    assert again == first
    assert table_again == table
