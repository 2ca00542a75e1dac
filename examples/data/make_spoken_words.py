"""Synthesises the spoken-words set (`spoken_words.npz`) with espeak-ng.

Ten command words (those of Google's speech commands: yes no up down left
right on off stop go) spoken by 15 espeak-ng voices (the English variants
`en+m1` ... `en+m7`, `en+f1` ... `en+f4` and four accents with a variant),
`--takes` times each, every take at its own speed (words per minute,
uniform in [120, 200]) and pitch (uniform in [25, 75]), drawn with a fixed
seed, so lengths vary by word, voice and speed. Each utterance is
resampled to 8 kHz mono 16-bit by sox, its leading and trailing silence
trimmed (sox `silence`, below 0.3% of full scale: 1% cut the "f" of
"off"), and the set is saved as one compressed `.npz`:

- `waveforms`: int16 `[total samples]`, every utterance one after another;
- `lengths`: int32 `[N]`, each utterance's samples (its offset is the sum
  of the lengths before it);
- `labels`: int32 `[N]`, the word's index in `words`;
- `voices`: int32 `[N]`, the voice's index in `voice_names`;
- `speeds`, `pitches`: int32 `[N]`, espeak-ng's `-s` and `-p`;
- `words`, `voice_names`: the names; `sample_rate`: 8000.

`examples/audio_data.py` loads it (`load_spoken_words`) with NumPy alone:
the tests and CI need neither espeak-ng nor sox. Needs the Debian packages
`espeak-ng` and `sox` (`apt-get install espeak-ng sox`).

Run from the repository root (about a minute):

    python examples/data/make_spoken_words.py

which rewrites `examples/data/spoken_words.npz` (`--out` to write elsewhere).
"""

import argparse
import os
import pathlib
import shutil
import subprocess
import tempfile
import wave

import numpy as np

__all__ = ["SAMPLE_RATE", "VOICES", "WORDS", "main", "synthesise"]

WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
VOICES = (
    *(f"en+m{i}" for i in range(1, 8)),
    *(f"en+f{i}" for i in range(1, 5)),
    "en-us+m2",
    "en-us+f3",
    "en-gb-scotland+m4",
    "en-029+f1",
)
SAMPLE_RATE = 8000
OUT = pathlib.Path(__file__).resolve().parent / "spoken_words.npz"


def synthesise(word, voice, speed, pitch, workdir):
    """One utterance as int16 samples at `SAMPLE_RATE`, silence trimmed.

    Raises:
        RuntimeError: if espeak-ng or sox fails, or the result is empty.
    """
    raw = os.path.join(workdir, "raw.wav")
    out = os.path.join(workdir, "out.wav")
    speak = ["espeak-ng", "-w", raw, "-v", voice, "-s", str(speed)]
    subprocess.run([*speak, "-p", str(pitch), word], check=True)
    trim = ["silence", "1", "0.005", "0.3%", "reverse"]
    subprocess.run(
        ["sox", raw, "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", out]
        + trim * 2,
        check=True,
    )
    with wave.open(out, "rb") as f:
        samples = np.frombuffer(f.readframes(f.getnframes()), "<i2")
    if samples.size == 0:
        raise RuntimeError(f"{word!r} in voice {voice!r} came out empty")
    return samples


def main(argv=None):
    """Synthesises the set and writes it; returns the output path."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--takes", type=int, default=4, help="takes a word")
    parser.add_argument("--seed", type=int, default=0, help="speeds, pitches")
    parser.add_argument("--out", default=str(OUT), help="the .npz written")
    args = parser.parse_args(argv)
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed (apt-get install it)")
    rng = np.random.default_rng(args.seed)
    columns = {k: [] for k in ("labels", "voices", "speeds", "pitches")}
    clips = []
    with tempfile.TemporaryDirectory() as workdir:
        for v, voice in enumerate(VOICES):
            for w, word in enumerate(WORDS):
                for _ in range(args.takes):
                    speed = int(rng.integers(120, 201))
                    pitch = int(rng.integers(25, 76))
                    clips.append(synthesise(word, voice, speed, pitch, workdir))
                    for key, value in zip(
                        columns, (w, v, speed, pitch), strict=True
                    ):
                        columns[key].append(value)
    np.savez_compressed(
        args.out,
        waveforms=np.concatenate(clips),
        lengths=np.array([len(c) for c in clips], "int32"),
        **{k: np.array(v, "int32") for k, v in columns.items()},
        words=np.array(WORDS),
        voice_names=np.array(VOICES),
        sample_rate=np.int32(SAMPLE_RATE),
    )
    print(f"wrote {len(clips)} utterances to {args.out}")
    return args.out


if __name__ == "__main__":
    main()
