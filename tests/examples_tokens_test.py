"""examples/tokens.py: its data (token chunks of standard-library
packages, split by file) on hand-checked properties, and a `--quick` run."""

import importlib.util
import pathlib
import sys

import numpy as np
import pytest
from example_runs import quick_results, quick_value

EXAMPLE = pathlib.Path(__file__).parents[1] / "examples" / "tokens.py"
# The example imports its neighbours (command_line, tables, ...).
sys.path.insert(0, str(EXAMPLE.parent))


@pytest.fixture(scope="module")
def tokens():
    spec = importlib.util.spec_from_file_location("tokens", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_chunks_are_split_by_file_and_encoded_with_the_training_vocabulary(
    tokens,
):
    split = tokens.load_chunks(["json"], chunk_length=16)
    files = tokens.package_files("json")
    test_files = [f for i, f in enumerate(files) if i % 4 == 3]
    test_tokens = sum(len(tokens._tokens(f)) // 16 for f in test_files)
    assert len(split["test"][0]) == test_tokens > 0
    assert all(len(chunk) == 16 for chunk in split["train"][0])
    assert set(split["train"][1]) == {0}
    data = tokens.encode(split, vocab_size=50)
    x_train, y_train = data["train"]
    assert x_train.shape == (len(split["train"][0]), 16)
    assert x_train.dtype == np.int32 and y_train.dtype == np.int32
    assert x_train.min() == tokens.UNKNOWN and x_train.max() == 50
    # The most frequent training token gets id 1.
    first = max(
        set(t for c in split["train"][0] for t in c),
        key=lambda t: sum(c.count(t) for c in split["train"][0]),
    )
    position = [c.index(first) for c in split["train"][0] if first in c][0]
    row = [i for i, c in enumerate(split["train"][0]) if first in c][0]
    assert x_train[row, position] == 1


def test_padded_chunks_keep_a_prefix_of_their_own_length(tokens):
    x = np.arange(1, 13, dtype="int32").reshape(3, 4) % 5  # 0: unknown
    data = tokens.pad_chunks({"train": (x, np.arange(3))}, 2, 4)
    padded, labels = data["train"]
    lengths = (padded != tokens.PADDING).sum(1)
    assert set(lengths) <= {2, 3, 4}
    for row, length in zip(padded, lengths, strict=True):
        assert (row[length:] == tokens.PADDING).all()  # padding at the end
    valid = padded != tokens.PADDING
    np.testing.assert_array_equal(padded[valid], (x + 1)[valid])  # ids + 1
    np.testing.assert_array_equal(labels, np.arange(3))
    again = tokens.pad_chunks({"train": (x, np.arange(3))}, 2, 4)
    np.testing.assert_array_equal(again["train"][0], padded)  # fixed draw
    args = tokens.build_parser().parse_args(["--padded"])
    assert list(tokens.methods(args))[2:] == [
        "wordMixup (α=1), union",
        "wordMixup (α=1), intersection",
        "wordMixup (α=1), anchor",
    ]


def test_an_unknown_package_is_refused(tokens):
    with pytest.raises(ValueError, match=r"`--packages` names 'nope'"):
        tokens.package_files("nope")


#: The quick runs, in a background process (`example_runs.GROUPS`).
quick = quick_results("examples:others")


@pytest.mark.slow
def test_quick_run_prints_the_three_methods(quick):
    run = quick_value(quick, "tokens")
    result = run["result"]
    assert [row[0] for row in result["rows"]] == [
        "ERM",
        "senMixup (α=1)",
        "wordMixup (α=1)",
    ]
    for curves in result["errors"].values():
        assert all(0.0 <= e <= 100.0 for c in curves for e in c)
    assert result["sizes"]["train"] > 0 and result["sizes"]["test"] > 0
    assert "| wordMixup (α=1)" in run["out"]
