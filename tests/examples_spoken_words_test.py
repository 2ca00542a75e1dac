"""examples/spoken_words.py: its `--quick` run on the committed set, and
its frames (zero exactly where a frame reaches past the utterance)."""

import os
import sys

import numpy as np
import pytest
from example_runs import quick_results, quick_value

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "examples")
sys.path.insert(0, EXAMPLES)

import spoken_words  # noqa: E402

import keras_mixup  # noqa: E402

#: The quick runs, in a background process (`example_runs.GROUPS`).
quick = quick_results("examples:paper")


@pytest.mark.slow
def test_spoken_words_quick(quick):
    run = quick_value(quick, "spoken_words")
    result, out = run["result"], run["out"]
    names = ["ERM", "mixup α=0.2"]
    if "mask_rule" in keras_mixup.options.OPTIONS:
        names.append("mixup α=0.2, union")
    else:
        assert "note: skipping mask_rule='union'" in out
    assert [row[0] for row in result["rows"]] == names
    for name, (curve,) in result["errors"].items():
        assert len(curve) == 1 and 0.0 <= curve[0] <= 100.0, name


def test_frames_are_zero_past_each_utterance():
    rng = np.random.default_rng(0)
    waves = rng.uniform(-0.5, 0.5, (3, 1024)).astype("float32")
    lengths = np.array([1024, 600, 384])
    waves[np.arange(1024)[None] >= lengths[:, None]] = 0.0
    frames = spoken_words.frames(waves, lengths)
    # Frames of 256 every 128: 7 in 1024 samples; frame k ends at
    # 128 k + 256, valid while that is within the length.
    assert frames.shape == (3, 7, 32)
    valid = (frames != 0).any(-1)
    ends = np.arange(7) * 128 + 256
    np.testing.assert_array_equal(valid, ends[None] <= lengths[:, None])
    assert (frames >= 0).all()


def test_mask_rule_inputs_hold_the_masking_layers_mask():
    x = np.zeros((2, 3, 2), "float32")
    x[0, :2] = 1.0
    x[1, 0, 1] = 0.5
    assert spoken_words.model_inputs(x, {}) is x
    inputs = spoken_words.model_inputs(x, {"mask_rule": "anchor"})
    assert inputs["frames"] is x
    np.testing.assert_array_equal(
        inputs["padding_mask"], [[True, True, False], [True, False, False]]
    )
