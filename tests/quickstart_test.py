"""The README's main example runs end to end and learns."""

import importlib.util
import pathlib
import sys

from example_runs import quick_run

EXAMPLE = pathlib.Path(__file__).parents[1] / "examples" / "quickstart.py"
# The example imports its neighbours (command_line, tables, ...).
sys.path.insert(0, str(EXAMPLE.parent))


def load_example():
    spec = importlib.util.spec_from_file_location("quickstart", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quickstart_trains_both_models_and_prints_their_errors(capsys):
    with quick_run():
        errors = load_example().main(["--quick"])
    assert list(errors) == ["ERM", "mixup alpha=0.2"]
    # Two epochs on digits already beat chance (90% error) by far.
    assert all(0.0 <= e[0] < 0.3 for e in errors.values())
    printed = capsys.readouterr().out
    assert "ERM" in printed and "mixup alpha=0.2" in printed
    assert "test error" in printed and "seed 0" in printed


def test_quickstart_prints_the_same_table_on_every_run(capsys):
    example = load_example()
    first = example.main(["--quick"])
    table = capsys.readouterr().out
    assert example.main(["--quick"]) == first
    assert capsys.readouterr().out == table
