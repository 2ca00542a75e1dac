"""The examples: every script end to end in `--quick` mode, and the shared
helpers of `examples/common.py` on hand-built inputs.

The TFDS examples (CIFAR, ImageNet) run on `tfds.testing.mock_data`, which
works offline: its default policy builds random examples from the
dataset's code when no metadata files are shipped.
"""

import math
import os
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "examples")
sys.path.insert(0, EXAMPLES)

import adversarial  # noqa: E402
import beta_distribution  # noqa: E402
import cifar  # noqa: E402
import common  # noqa: E402
import corrupted_labels  # noqa: E402
import imagenet  # noqa: E402
import uci_tabular  # noqa: E402


def numbers(cell):
    """The numbers of a table cell such as '12.3 ± 4.5' or '7.0'."""
    return [float(part) for part in str(cell).split(" ± ")]


def assert_error_cells(cells):
    """Every cell is an error in percent (mean, or mean ± std)."""
    for cell in cells:
        values = numbers(cell)
        assert all(math.isfinite(v) for v in values), cell
        assert 0.0 <= values[0] <= 100.0, cell


# ---------------------------------------------------------------------------
# The scripts, end to end
# ---------------------------------------------------------------------------


@pytest.mark.slow
def test_beta_distribution_quick(tmp_path, capsys):
    rows = beta_distribution.main(["--quick", "--figures", str(tmp_path)])
    assert [row[0] for row in rows] == ["0.1", "0.2", "0.4", "1", "8", "32"]
    for row in rows:
        values = row[1:]
        assert all(math.isfinite(v) for v in values)
        std_exact, std_drawn = values[0], values[1]
        assert abs(std_drawn - std_exact) < 0.03  # 2000 draws
        assert 0.0 <= values[-1] < 0.1  # KS distance
    assert (tmp_path / "beta_densities.png").stat().st_size > 0
    assert (tmp_path / "mixed_digits.png").stat().st_size > 0
    assert "| alpha" in capsys.readouterr().out


@pytest.mark.slow
def test_uci_tabular_quick(tmp_path, capsys):
    result = uci_tabular.main(["--quick", "--figures", str(tmp_path)])
    assert result["headers"][:3] == ["data set", "ERM", "mixup α=1"]
    assert [row[0] for row in result["rows"]] == ["iris", "wine"]
    for row in result["rows"]:
        assert_error_cells(row[1:3])
    assert result["rows"][0][3] == "21.3 / 17.3"  # the paper's Iris
    assert set(result["errors"]) == {
        ("iris", "ERM"),
        ("iris", "mixup α=1"),
        ("wine", "ERM"),
        ("wine", "mixup α=1"),
    }
    assert "| iris" in capsys.readouterr().out


@pytest.mark.slow
def test_corrupted_labels_quick(tmp_path):
    result = corrupted_labels.main(["--quick", "--figures", str(tmp_path)])
    assert [row[1] for row in result["rows"]] == [
        "ERM",
        "ERM + dropout (p=0.8)",
        "mixup (α=8)",
        "mixup + dropout (α=8, p=0.3)",
    ]
    for row in result["rows"]:
        assert row[0] == "50%"
        assert_error_cells(row[2:])
    for values in result["results"].values():
        assert values["best"][0] <= values["last"][0]
    for curves in result["curves"].values():
        assert len(curves[0]) == 2  # one test error per epoch
    assert (tmp_path / "corrupted_labels.png").stat().st_size > 0


@pytest.mark.slow
def test_adversarial_quick(tmp_path):
    result = adversarial.main(["--quick", "--figures", str(tmp_path)])
    assert [row[0] for row in result["rows"]] == ["ERM", "mixup (α=0.2)"]
    for row in result["rows"]:
        assert len(row) == 6
        assert_error_cells(row[1:])
    assert len(result["curves"]["ERM"][0]) == 2  # two curve epsilons
    assert (tmp_path / "adversarial.png").stat().st_size > 0


@pytest.mark.slow
def test_cifar_quick_on_mock_data_distributed(tmp_path):
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=64):
        result = cifar.main(
            ["--quick", "--distribute", "--figures", str(tmp_path)]
        )
    assert [row[2] for row in result["rows"]] == ["ERM", "mixup (α=1)"]
    for row in result["rows"]:
        assert row[:2] == ["cifar10", "preact_resnet18"]
        assert_error_cells(row[3:])
    assert (tmp_path / "cifar10_preact_resnet18.png").stat().st_size > 0


@pytest.mark.slow
def test_imagenet_quick_on_mock_data_mixed_precision(tmp_path):
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=64):
        result = imagenet.main(
            ["--quick", "--mixed-precision", "--figures", str(tmp_path)]
        )
    # The dtype policy is restored after the run.
    assert keras.config.dtype_policy().name == "float32"
    assert [row[1] for row in result["rows"]] == ["ERM", "mixup (α=0.2)"]
    for row in result["rows"]:
        assert_error_cells(row[3:])
    for runs in result["curves"].values():
        assert set(runs[0]) == {"top1", "top5", "loss"}
        assert runs[0]["top5"][0] <= runs[0]["top1"][0]


# ---------------------------------------------------------------------------
# Shared helpers
# ---------------------------------------------------------------------------


def test_corrupt_labels_replaces_the_fraction_asked():
    y = np.arange(1000) % 10
    noisy, corrupted = common.corrupt_labels(y, 0.5, 10, seed=0)
    assert corrupted.sum() == 500
    np.testing.assert_array_equal(noisy[~corrupted], y[~corrupted])
    # Replacements are uniform over all 10 classes: about 1 in 10 keeps
    # its label (binomial(500, 0.1): 50 +- 6.7).
    kept = np.sum(noisy[corrupted] == y[corrupted])
    assert 25 <= kept <= 75
    assert set(np.unique(noisy)) <= set(range(10))


def test_encode_labels_one_hot_and_smoothing():
    x = tf.zeros([2, 3])
    _, y = common.encode_labels(4)(x, tf.constant([1, 3]))
    np.testing.assert_array_equal(y, [[0, 1, 0, 0], [0, 0, 0, 1]])
    _, y = common.encode_labels(4, label_smoothing=0.2)(x, tf.constant([0, 0]))
    np.testing.assert_allclose(y[0], [0.85, 0.05, 0.05, 0.05], atol=1e-6)


def test_train_dataset_mixes_with_keras_mixup():
    import keras_mixup

    x = np.eye(8, dtype="float32")
    y = np.arange(8) % 2
    ds = common.train_dataset(
        x,
        y,
        batch_size=8,
        num_classes=2,
        mixup=keras_mixup.Mixup(1.0, num_classes=2, seed=0),
    )
    images, labels = next(iter(ds))
    assert labels.shape == (8, 2)
    np.testing.assert_allclose(tf.reduce_sum(labels, -1), 1.0, atol=1e-6)
    # Mixed rows: each image is a convex combination of two one-hot rows.
    np.testing.assert_allclose(tf.reduce_sum(images, -1), 1.0, atol=1e-6)
    assert np.sum(np.max(images, -1) < 1.0) > 0


def test_format_table_and_mean_std():
    text = common.format_table(["a", "bb"], [["x", 1.5], ["yy", float("nan")]])
    assert text.splitlines() == [
        "| a  | bb   |",
        "| -- | ---- |",
        "| x  | 1.50 |",
        "| yy | nan  |",
    ]
    assert common.format_mean_std([1.0, 3.0]) == "2.0 ± 1.0"
    assert common.format_mean_std([2.0]) == "2.0"
    assert common.median_of_last([9, 1, 2, 3], 3) == 2.0


def test_warmup_step_decay():
    schedule = common.WarmupStepDecay(0.4, 10, [2, 4], warmup_epochs=1)
    rates = [float(schedule(step)) for step in (0, 5, 10, 19, 20, 40, 99)]
    np.testing.assert_allclose(
        rates, [0.4e-3, 0.2004, 0.4, 0.4, 0.04, 0.004, 0.004], rtol=1e-4
    )
    assert common.WarmupStepDecay(**schedule.get_config()).boundaries == [2, 4]


def test_image_augmentations_keep_shapes_and_range():
    tf.random.set_seed(0)
    image = tf.cast(tf.random.uniform([40, 60, 3], 0, 256, tf.int32), tf.uint8)
    crop = common.random_resized_crop(image, 24)
    assert crop.shape == (24, 24, 3) and crop.dtype == tf.uint8
    center = common.center_crop(image, 24)
    assert center.shape == (24, 24, 3)
    # The central crop of the resized image: no flip, no randomness.
    np.testing.assert_array_equal(center, common.center_crop(image, 24))
    small = image[:32, :32]
    padded = common.pad_crop_flip(small)
    assert padded.shape == (32, 32, 3)
    normalized = common.normalize(small, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    assert normalized.dtype == tf.float32
    assert -1.0 <= float(tf.reduce_min(normalized))
    assert float(tf.reduce_max(normalized)) <= 1.0


def test_add_weight_decay_penalises_kernels_only():
    model = common.mlp((3,), 2, hidden=(4,), weight_decay=0.2)
    kernels = [w for w in model.trainable_weights if w.path.endswith("kernel")]
    expected = sum(0.1 * float(tf.reduce_sum(k**2)) for k in kernels)
    assert len(model.losses) == 2
    np.testing.assert_allclose(float(sum(model.losses)), expected, rtol=1e-5)


def test_image_models_output_logits_of_the_right_shape():
    x = np.zeros((2, 32, 32, 3), "float32")
    for name in common.IMAGE_MODELS:
        if name == "resnet50":
            continue  # 24M weights: too slow to build here
        model = common.build_image_model(name, (32, 32, 3), 7, quick=True)
        assert model(x).shape == (2, 7)
    with pytest.raises(ValueError, match="`--model` must be one of"):
        common.build_image_model("vgg", (32, 32, 3), 7)


def test_fgsm_stays_in_the_epsilon_ball_and_the_pixel_range():
    model = common.mlp((6,), 3, hidden=(8,))
    x = np.random.default_rng(0).uniform(0, 1, (5, 6)).astype("float32")
    y = np.array([0, 1, 2, 0, 1])
    for steps in (1, 4):
        adversarial_x = adversarial.attack(
            model, x, y, 3, epsilon=0.1, steps=steps
        )
        assert np.max(np.abs(adversarial_x - x)) <= 0.1 + 1e-6
        assert adversarial_x.min() >= 0.0 and adversarial_x.max() <= 1.0
    # One FGSM step moves every pixel not clipped by exactly epsilon.
    step = adversarial.attack(model, x, y, 3, epsilon=0.1) - x
    inside = (x > 0.1) & (x < 0.9)
    np.testing.assert_allclose(np.abs(step[inside]), 0.1, atol=1e-6)


def test_figure_path_quick_runs_save_no_figure_by_default(tmp_path):
    from argparse import Namespace

    assert (
        common.figure_path(Namespace(figures=None, quick=True), "a.png") is None
    )
    assert (
        common.figure_path(Namespace(figures="", quick=False), "a.png") is None
    )
    default = common.figure_path(Namespace(figures=None, quick=False), "a.png")
    assert default == os.path.join(common.FIGURES_DIR, "a.png")
    chosen = tmp_path / "figs"
    path = common.figure_path(
        Namespace(figures=str(chosen), quick=True), "a.png"
    )
    assert path == str(chosen / "a.png") and chosen.is_dir()
