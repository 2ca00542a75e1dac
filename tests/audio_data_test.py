"""The committed spoken-words set and its loader (no system package:
espeak-ng and sox made the set, NumPy alone reads it)."""

import os
import sys

import numpy as np
import pytest

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "examples")
sys.path.insert(0, EXAMPLES)

import audio_data  # noqa: E402


@pytest.fixture(scope="module")
def stored():
    with np.load(audio_data.DATA) as data:
        return dict(data)


def test_the_set_is_small_and_complete(stored):
    assert audio_data.DATA.stat().st_size < 5 * 2**20
    assert list(stored["words"]) == [
        *"yes no up down left right on off stop go".split()
    ]
    assert len(stored["voice_names"]) == 15 and stored["sample_rate"] == 8000
    # Every word by every voice, 4 takes each.
    counts = np.zeros((15, 10), int)
    np.add.at(counts, (stored["voices"], stored["labels"]), 1)
    assert (counts == 4).all()
    lengths = stored["lengths"]
    assert lengths.sum() == stored["waveforms"].size
    assert stored["waveforms"].dtype == np.int16
    # Lengths vary (0.2 to 0.65 s at 8 kHz), and so do speeds and pitches.
    assert 1000 < lengths.min() and lengths.max() < 6000
    assert lengths.std() > 400
    assert len(np.unique(stored["speeds"])) > 50
    assert len(np.unique(stored["pitches"])) > 40


def test_loader_pads_masks_and_splits_by_voice(stored):
    data = audio_data.load_spoken_words()
    (x, mask, y, voices), test = data["train"], data["test"]
    longest = stored["lengths"].max()
    assert x.shape == mask.shape == (480, longest) and x.dtype == np.float32
    assert test[0].shape == (120, longest) and mask.dtype == bool
    names = data["voice_names"]
    held_out = {names.index(v) for v in audio_data.TEST_VOICES}
    assert set(test[3]) == held_out and not held_out & set(voices)
    # Each row is its utterance, scaled to [-1, 1], then zeros.
    lengths = stored["lengths"]
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    train_rows = np.flatnonzero(~np.isin(stored["voices"], list(held_out)))
    for row in (0, 17, 479):
        n = train_rows[row]
        clip = stored["waveforms"][starts[n] : starts[n] + lengths[n]]
        np.testing.assert_array_equal(x[row, : lengths[n]], clip / 32768.0)
        assert (x[row, lengths[n] :] == 0).all()
        np.testing.assert_array_equal(
            mask[row], np.arange(longest) < lengths[n]
        )
        assert y[row] == stored["labels"][n]
    assert data["words"][y[0]] == str(stored["words"][stored["labels"][0]])


def test_loader_cuts_to_max_length_and_takes_other_test_voices():
    data = audio_data.load_spoken_words(
        max_length=2000, test_voices=["en+m1", "en+m2"]
    )
    x, mask, y, voices = data["test"]
    assert x.shape == (80, 2000) and mask[:, -1].any() and mask[:, 0].all()
    assert set(voices) == {0, 1}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"test_voices": ["en+m9"]}, "`test_voices` must be a non-empty"),
        ({"test_voices": []}, "received \\[\\]"),
        ({"max_length": 0}, "`max_length` must be None or a positive int"),
        ({"max_length": 2.5}, "received 2.5"),
    ],
)
def test_loader_refuses_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        audio_data.load_spoken_words(**kwargs)
