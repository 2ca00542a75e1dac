"""The spoken-words set: ten command words synthesised by espeak-ng.

`examples/data/spoken_words.npz` holds 600 utterances of yes, no, up,
down, left, right, on, off, stop and go by 15 voices, 4 takes each at
their own speed and pitch, 8 kHz mono 16-bit, silence trimmed, so lengths
vary (0.2 to 0.65 s). `examples/data/make_spoken_words.py` made it (with
espeak-ng and sox); loading it needs NumPy alone.

`load_spoken_words` returns the waveforms padded to one length, padding
masks (True where valid) and labels, split by voice: the test voices are
never heard in training.
"""

import pathlib

import numpy as np

__all__ = ["DATA", "TEST_VOICES", "load_spoken_words"]

DATA = pathlib.Path(__file__).resolve().parent / "data" / "spoken_words.npz"

#: The voices held out for testing by default: two variants of the base
#: English voice, one accent, one female and one male each.
TEST_VOICES = ("en+m3", "en+f2", "en-us+f3")


def _split(voice_names, voices, test_voices):
    unknown = sorted(set(test_voices) - set(voice_names))
    if unknown or not test_voices:
        raise ValueError(
            f"`test_voices` must be a non-empty subset of {list(voice_names)}"
            f"; received {list(test_voices)!r}."
        )
    held_out = np.isin(voices, [voice_names.index(v) for v in test_voices])
    return np.flatnonzero(~held_out), np.flatnonzero(held_out)


def load_spoken_words(*, test_voices=TEST_VOICES, max_length=None, path=DATA):
    """Loads the spoken-words set, padded, masked and split by voice.

    Args:
        test_voices: the voices of the test split (names of
            `voice_names`); the others are the training split. Defaults to
            `TEST_VOICES`.
        max_length: the padded length in samples; longer utterances are
            cut. `None` pads to the longest. Defaults to `None`.
        path: the `.npz` file. Defaults to `DATA`.

    Returns:
        A dict: `"train"` and `"test"`, each `(waveforms, mask, labels,
        voices)` with waveforms float32 `[N, T]` in [-1, 1] (zeros past
        each length), `mask` bool `[N, T]` (True where valid), labels and
        voice ids int32 `[N]`; `"words"` and `"voice_names"` (lists) and
        `"sample_rate"` (8000).

    Raises:
        ValueError: for a `test_voices` that names no voice of the set, or
            a `max_length` that is not a positive int.

    Example:

    ```python
    data = load_spoken_words()
    x, mask, y, voices = data["train"]
    assert x.shape == mask.shape and len(y) == len(x) == 480
    ```
    """
    with np.load(path) as stored:
        stored = dict(stored)
    lengths = stored["lengths"].astype("int64")
    longest = int(lengths.max())
    if max_length is None:
        max_length = longest
    if (
        isinstance(max_length, bool)
        or not isinstance(max_length, int)
        or max_length < 1
    ):
        raise ValueError(
            f"`max_length` must be None or a positive int; received "
            f"{max_length!r}."
        )
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    steps = np.arange(max_length)
    mask = steps < lengths[:, None]
    index = np.minimum(starts[:, None] + steps, len(stored["waveforms"]) - 1)
    waves = np.where(mask, stored["waveforms"][index] / 32768.0, 0.0)
    waves = waves.astype("float32")
    voice_names = [str(v) for v in stored["voice_names"]]
    voices = stored["voices"].astype("int32")
    labels = stored["labels"].astype("int32")
    train, test = _split(voice_names, voices, tuple(test_voices))
    return {
        **{
            name: (waves[i], mask[i], labels[i], voices[i])
            for name, i in (("train", train), ("test", test))
        },
        "words": [str(w) for w in stored["words"]],
        "voice_names": voice_names,
        "sample_rate": int(stored["sample_rate"]),
    }
