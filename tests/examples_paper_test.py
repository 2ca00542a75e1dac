"""The ablation (Table 5) and speech commands (Figure 4) examples end to end
in `--quick` mode, and the speech pipeline's features and mixup schedule.

The speech example runs on `tfds.testing.mock_data`, which works offline:
TFDS ships `speech_commands`' features, so it builds random waveforms of
the right structure without downloading anything.
"""

import math
import os
import sys

import numpy as np
import pytest
import tensorflow as tf
from example_runs import quick_results, quick_value

import keras_mixup

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "examples")
sys.path.insert(0, EXAMPLES)

import ablation  # noqa: E402
import speech_commands  # noqa: E402

#: The quick runs, in a background process (`example_runs.GROUPS`).
quick = quick_results("examples:paper")


def assert_error_cells(cells):
    """Every cell is an error in percent (mean, or mean ± std)."""
    for cell in cells:
        values = [float(part) for part in str(cell).split(" ± ")]
        assert all(math.isfinite(v) for v in values), cell
        assert 0.0 <= values[0] <= 100.0, cell


@pytest.mark.slow
def test_ablation_quick(quick):
    run = quick_value(quick, "ablation")
    result = run["result"]
    assert result["headers"] == [
        "method",
        "specification",
        "weight decay 0.0005",
    ]
    assert [tuple(row[:2]) for row in result["rows"]] == [
        ("ERM", "-"),
        ("mixup", "AC + RP"),
        ("mixup", "AC + KNN"),
        ("mixup", "SC + RP"),
        ("mixup", "SC + KNN"),
        ("mix latent + labels (AC + RP)", "hidden layer 1"),
        ("mix latent + labels (AC + RP)", "hidden layer 2"),
        ("mix inputs only", "AC + RP"),
        ("label smoothing", "ε = 0.05"),
        ("mix inputs + label smoothing", "ε = 0.05"),
        ("Gaussian input noise", "σ = 0.05"),
    ]
    for row in result["rows"]:
        assert_error_cells(row[2:])
    for runs in result["curves"].values():
        assert len(runs) == 1 and len(runs[0]) == 1  # one seed, one epoch
    assert "| mixup" in run["out"]


def test_ablation_methods_with_two_weight_decays_by_default():
    args = ablation.build_parser().parse_args([])
    args.pairings, args.hidden = ablation.PAIRINGS, [8, 8, 8]
    args.epsilons, args.sigmas = [0.05, 0.1, 0.2], [0.05, 0.1, 0.2]
    rows = ablation.methods(args)
    # ERM, 4 pairings, 3 hidden layers, inputs only, 3 + 3 smoothing, 3
    # noise levels.
    assert len(rows) == 1 + 4 + 3 + 1 + 3 + 3 + 3
    assert rows[5][2] == {"layer": 1}


def test_only_the_hidden_layer_methods_train_with_mixup_layers():
    # Under plain `fit` a MixupLayer mixes its inputs: a network with them
    # would mix the hidden features of the ERM, pairing, smoothing and
    # noise rows too.

    args = ablation.build_parser().parse_args([])
    args.hidden = [8, 8]
    plain = ablation.network((4,), 3, args, 0.0, mix_points=False)
    assert not any(isinstance(x, keras_mixup.MixupLayer) for x in plain.layers)
    x = np.arange(24, dtype="float32").reshape(6, 4) / 24
    np.testing.assert_allclose(
        plain(x, training=True), plain(x, training=False), atol=1e-6
    )
    points = ablation.network((4,), 3, args, 0.0, mix_points=True)
    names = [x.name for x in points.layers]
    assert names.count(ablation.mix_layer_name(1)) == 1
    assert ablation.mix_layer_name(2) in names


@pytest.mark.slow
def test_speech_commands_quick_on_mock_data(quick):
    run = quick_value(quick, "speech_commands")
    result = run["result"]
    assert [row[1] for row in result["rows"]] == ["ERM", "mixup α=0.2"]
    for row in result["rows"]:
        assert row[0] == "lenet"
        assert_error_cells(row[2:])
    assert len(result["curves"]["mixup α=0.2"][0]) == 6
    # MixupSchedule(start_epoch=5): epochs 0-4 unmixed, epoch 5 mixed.
    assert result["mixing"]["mixup α=0.2"] == [[False] * 5 + [True]]
    assert result["mixing"]["ERM"] == [[]]
    assert "| lenet" in run["out"]


def test_log_mel_spectrogram_pads_crops_and_is_finite():
    short = np.zeros(8000, np.int16)  # silence: log of the floor
    long = (np.sin(np.arange(20_000) / 5.0) * 10_000).astype(np.int16)
    for audio in (short, long, long.astype(np.float32) / 32768.0):
        features = speech_commands.log_mel_spectrogram(audio)
        assert features.shape == (98, 40, 1)
        assert np.all(np.isfinite(features.numpy()))
    assert speech_commands.num_frames() == 98
    # int16 audio is scaled to [-1, 1] before the transform.
    np.testing.assert_allclose(
        speech_commands.log_mel_spectrogram(long).numpy(),
        speech_commands.log_mel_spectrogram(long / 32768.0).numpy(),
        rtol=1e-4,
        atol=1e-4,
    )


def synthetic_speech(count, num_classes=3, seed=0):
    """Sine waves of a class-dependent pitch, of varied lengths (the speech
    pipeline's `(int16 audio, label)` without TFDS)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % num_classes
    waves = []
    for label in labels:
        t = np.arange(int(rng.integers(12_000, 17_000))) / 16_000
        wave = np.sin(2 * np.pi * 300 * (label + 1) * t)
        waves.append((wave * 8000).astype(np.int16))
    ds = tf.data.Dataset.from_generator(
        lambda: zip(waves, labels, strict=True),
        output_signature=(
            tf.TensorSpec([None], tf.int16),
            tf.TensorSpec([], tf.int64),
        ),
    )
    return ds


def test_speech_pipeline_is_unmixed_before_start_epoch_and_mixed_after():
    args = speech_commands.build_parser().parse_args(
        ["--alpha", "1.0", "--batch-size", "16"]
    )
    data = {
        "train": synthetic_speech(32),
        "test": synthetic_speech(8, seed=1),
        "num_classes": 3,
    }
    train, _, mixup = speech_commands.datasets(args, 1.0, seed=0, **data)
    schedule = keras_mixup.MixupSchedule(mixup, start_epoch=5)
    for epoch in range(4):
        schedule.on_epoch_begin(epoch)
        for x, y in train:
            # One-hot labels: nothing mixed.
            assert set(np.unique(y.numpy())) <= {0.0, 1.0}
            assert x.shape[1:] == (98, 40, 1)
    schedule.on_epoch_begin(5)
    labels = np.concatenate([y.numpy() for _, y in train])
    fractional = (labels > 0.01) & (labels < 0.99)
    assert fractional.any(axis=1).mean() > 0.3
    np.testing.assert_allclose(labels.sum(axis=1), 1.0, atol=1e-5)
