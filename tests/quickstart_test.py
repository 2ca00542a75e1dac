"""The README's main example runs end to end and learns."""

import pytest
from example_runs import quick_results, quick_value

#: Two `--quick` runs of one loaded example, in a background process
#: (`example_runs.GROUPS`; the tests share them): `[(returned errors,
#: printed text)]`.
quick = quick_results("examples:others")


@pytest.fixture(scope="module")
def two_runs(quick):
    return quick_value(quick, "quickstart")


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
