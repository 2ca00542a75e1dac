"""The examples: every script end to end in `--quick` mode, their command
line, and the shared helpers of `examples/` on hand-built inputs.

The TFDS examples (CIFAR, ImageNet) run on `tfds.testing.mock_data`, which
works offline: its default policy builds random examples from the
dataset's code when no metadata files are shipped. Every quick run checks
that `examples/figures/` (the docs' figures) is left unchanged.
"""

import importlib
import math
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from example_runs import (
    check_and_remove_quick_figures,
    quick_results,
    quick_value,
)

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "examples")
sys.path.insert(0, EXAMPLES)

import adversarial  # noqa: E402
import command_line  # noqa: E402
import images  # noqa: E402
import plots  # noqa: E402
import tables  # noqa: E402
import tabular  # noqa: E402
import training  # noqa: E402

#: Every example script.
SCRIPTS = (
    "ablation",
    "adversarial",
    "beta_distribution",
    "calibration",
    "cifar",
    "corrupted_labels",
    "cutmix_digits",
    "family",
    "gan_toy",
    "imagenet",
    "quickstart",
    "regression",
    "speech_commands",
    "spoken_words",
    "tokens",
    "uci_tabular",
)


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

#: The quick runs, in a background process (`example_runs.GROUPS`).
quick = quick_results("examples:images")


@pytest.mark.slow
def test_beta_distribution_quick(quick):
    run = quick_value(quick, "beta_distribution")
    result = run["result"]
    rows = result["rows"]
    assert [row[0] for row in rows] == ["0.1", "0.2", "0.4", "1", "8", "32"]
    for row in rows:
        values = row[1:]
        assert all(math.isfinite(v) for v in values)
        std_exact, std_drawn = values[0], values[1]
        assert abs(std_drawn - std_exact) < 0.03  # 2000 draws
        assert 0.0 <= values[-1] < 0.1  # KS distance
    check_and_remove_quick_figures(
        result["figures"], ["beta_densities.png", "mixed_digits.png"]
    )
    assert "| alpha" in run["out"]


@pytest.mark.slow
def test_cutmix_digits_quick(quick):
    run = quick_value(quick, "cutmix_digits")
    result = run["result"]
    assert [row[0] for row in result["rows"]] == [
        "ERM",
        "mixup (α=0.8)",
        "CutMix (α=1)",
        "switch (p=0.5)",
    ]
    for row in result["rows"]:
        assert_error_cells(row[1:])
    check_and_remove_quick_figures(result["figures"], ["cutmix_digits.png"])
    assert "| CutMix (α=1)" in run["out"]


@pytest.mark.slow
def test_uci_tabular_quick(quick):
    run = quick_value(quick, "uci_tabular")
    result = run["result"]
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
    assert "| iris" in run["out"]


@pytest.mark.slow
def test_corrupted_labels_quick(quick):
    result = quick_value(quick, "corrupted_labels")["result"]
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
    saved = plots.load_results(result["figures"][0])
    assert list(
        saved["panels"][
            "50% corrupted labels\ndropout p=0.8; mixup + dropout α=8, p=0.3"
        ]
    ) == [
        "ERM",
        "ERM + dropout",
        "mixup (α=8)",
        "mixup + dropout",
    ]
    check_and_remove_quick_figures(result["figures"], ["corrupted_labels.png"])


@pytest.mark.slow
def test_adversarial_quick(quick):
    result = quick_value(quick, "adversarial")["result"]
    assert [row[0] for row in result["rows"]] == ["ERM", "mixup (α=0.2)"]
    for row in result["rows"]:
        assert len(row) == 6
        assert_error_cells(row[1:])
    assert len(result["curves"]["ERM"][0]) == 2  # two curve epsilons
    check_and_remove_quick_figures(result["figures"], ["adversarial.png"])


@pytest.mark.slow
def test_cifar_quick_on_mock_data_distributed(quick):
    result = quick_value(quick, "cifar")["result"]
    assert [row[2] for row in result["rows"]] == ["ERM", "mixup (α=1)"]
    for row in result["rows"]:
        assert row[:2] == ["cifar10", "preact_resnet18"]
        assert_error_cells(row[3:])
    check_and_remove_quick_figures(
        result["figures"], ["cifar10_preact_resnet18.png"]
    )


@pytest.mark.slow
def test_imagenet_quick_on_mock_data_mixed_precision(quick):
    run = quick_value(quick, "imagenet")  # --figures DIR: run["folder"]
    result, tmp_path = run["result"], pathlib.Path(run["folder"])
    # The dtype policy is restored after the run.
    assert run["policy"] == "float32"
    assert [row[1] for row in result["rows"]] == [
        "ERM",
        "mixup (α=0.2) / CutMix (α=1), switch 0.5",
    ]
    for row in result["rows"]:
        assert_error_cells(row[3:])
    for runs in result["curves"].values():
        assert set(runs[0]) == {"top1", "top5", "loss"}
        assert runs[0]["top5"][0] <= runs[0]["top1"][0]
    # `--figures DIR` is honoured in quick runs too.
    assert result["figures"] == [str(tmp_path / "imagenet_preact_resnet18.png")]
    assert (tmp_path / "imagenet_preact_resnet18.png").stat().st_size > 0


# ---------------------------------------------------------------------------
# The command line
# ---------------------------------------------------------------------------

#: Runs an example with `--help` and reports whether TensorFlow, Keras or
#: keras_mixup was imported by then.
HELP_PROBE = """
import runpy, sys
sys.argv = [sys.argv[1], "--help"]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
except SystemExit as exit:
    code = exit.code
heavy = [m for m in ("tensorflow", "keras", "keras_mixup") if m in sys.modules]
print("EXIT", code, "HEAVY", heavy)
"""


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_answers_before_tensorflow_is_imported(script):
    path = os.path.join(EXAMPLES, f"{script}.py")
    done = subprocess.run(
        [sys.executable, "-c", HELP_PROBE, path],
        capture_output=True,
        text=True,
        check=True,
        cwd=EXAMPLES,
    )
    out = done.stdout
    assert out.rstrip().endswith("EXIT 0 HEAVY []"), out + done.stderr
    for flag in ("--seeds", "--alpha", "--quick", "--figures DIR"):
        assert flag in out, flag
    assert any(f"--{unit}" in out for unit in command_line.LENGTH_HELP)


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_option_has_help_text(script):
    parser = importlib.import_module(script).build_parser()
    for action in parser._actions:
        assert action.help and action.help.strip(), action.option_strings


def test_make_parser_takes_exactly_one_length():
    parser = command_line.make_parser(
        "x", iterations=[1, 5], alpha=0.2, batch_size=4
    )
    args = parser.parse_args(["--iterations", "3", "7", "--seeds", "2"])
    assert args.iterations == [3, 7] and args.seeds == 2
    assert not hasattr(args, "epochs")
    with pytest.raises(ValueError, match="exactly one of"):
        command_line.make_parser("x", alpha=0.2, batch_size=4)
    with pytest.raises(ValueError, match="exactly one of"):
        command_line.make_parser(
            "x", epochs=2, draws=10, alpha=0.2, batch_size=4
        )


def test_figures_go_to_the_documented_output_folder(tmp_path):
    from argparse import Namespace

    quick = Namespace(figures=None, quick=True)
    path = command_line.figure_path(quick, "a.png")
    expected = os.path.join(command_line.OUTPUT_DIR, "quick")
    assert os.path.dirname(path) == quick.figures == expected
    assert os.path.isdir(quick.figures)
    # Not the README's figures, and not a temporary folder left behind:
    # examples/output/quick, beside the scripts (wherever the clone is).
    assert not expected.startswith(command_line.FIGURES_DIR)
    examples = os.path.dirname(os.path.abspath(command_line.__file__))
    assert expected == os.path.join(examples, "output", "quick")
    # The same directory for every figure of the run.
    assert command_line.figure_path(quick, "b.png") == os.path.join(
        quick.figures, "b.png"
    )
    full = Namespace(figures=None, quick=False)
    assert command_line.figure_path(full, "a.png") == os.path.join(
        command_line.OUTPUT_DIR, "a.png"
    )
    none = Namespace(figures="", quick=False)
    assert command_line.figure_path(none, "a.png") is None
    chosen = Namespace(figures=str(tmp_path / "figs"), quick=True)
    path = command_line.figure_path(chosen, "a.png")
    assert path == str(tmp_path / "figs" / "a.png")
    assert (tmp_path / "figs").is_dir()


def test_the_output_folder_is_ignored_by_git():
    done = subprocess.run(
        ["git", "check-ignore", "-q", command_line.OUTPUT_DIR + "/x.png"],
        cwd=EXAMPLES,
    )
    assert done.returncode == 0


def test_help_shows_the_defaults_and_runs_show_progress_unless_quiet():
    parser = command_line.make_parser("x", epochs=7, alpha=0.3, batch_size=4)
    text = parser.format_help()
    assert "training epochs (default: 7)" in text
    assert "(default: 0.3)" in text and "--out DIR, --figures DIR" in text
    assert parser.parse_args([]).verbose == 1  # Keras's progress bar
    assert parser.parse_args(["--quiet"]).verbose == 0
    assert parser.parse_args(["--verbose", "2"]).verbose == 2
    assert parser.parse_args(["--out", "d"]).figures == "d"


def test_tensorflow_start_up_logs_never_reach_stderr(quick):
    stdout, stderr = quick_value(quick, "start_up_logs")
    assert "3" in stdout
    assert stderr == "", stderr


def test_image_model_names_on_the_command_line_are_the_built_ones():
    assert sorted(command_line.IMAGE_MODEL_NAMES) == sorted(images.IMAGE_MODELS)


# ---------------------------------------------------------------------------
# Shared helpers
# ---------------------------------------------------------------------------


def test_corrupt_labels_replaces_the_fraction_asked():
    y = np.arange(1000) % 10
    noisy, corrupted = tabular.corrupt_labels(y, 0.5, 10, seed=0)
    assert corrupted.sum() == 500
    np.testing.assert_array_equal(noisy[~corrupted], y[~corrupted])
    # Replacements are uniform over all 10 classes: about 1 in 10 keeps
    # its label (binomial(500, 0.1): 50 +- 6.7).
    kept = np.sum(noisy[corrupted] == y[corrupted])
    assert 25 <= kept <= 75
    assert set(np.unique(noisy)) <= set(range(10))


def test_encode_labels_one_hot_and_smoothing():
    x = tf.zeros([2, 3])
    _, y = training.encode_labels(4)(x, tf.constant([1, 3]))
    np.testing.assert_array_equal(y, [[0, 1, 0, 0], [0, 0, 0, 1]])
    encode = training.encode_labels(4, label_smoothing=0.2)
    _, y = encode(x, tf.constant([0, 0]))
    np.testing.assert_allclose(y[0], [0.85, 0.05, 0.05, 0.05], atol=1e-6)


def test_train_dataset_mixes_with_keras_mixup():
    import keras_mixup

    x = np.eye(8, dtype="float32")
    y = np.arange(8) % 2
    ds = tabular.train_dataset(
        x,
        y,
        batch_size=8,
        num_classes=2,
        mixup=keras_mixup.Mixup(1.0, num_classes=2, seed=0),
    )
    inputs, labels = next(iter(ds))
    assert labels.shape == (8, 2)
    np.testing.assert_allclose(tf.reduce_sum(labels, -1), 1.0, atol=1e-6)
    # Mixed rows: each input is a convex combination of two one-hot rows.
    np.testing.assert_allclose(tf.reduce_sum(inputs, -1), 1.0, atol=1e-6)
    assert np.sum(np.max(inputs, -1) < 1.0) > 0


def test_format_table_and_mean_std():
    text = tables.format_table(["a", "bb"], [["x", 1.5], ["yy", float("nan")]])
    assert text.splitlines() == [
        "| a  | bb   |",
        "| -- | ---- |",
        "| x  | 1.50 |",
        "| yy | nan  |",
    ]
    assert tables.format_table(["a"], [], title="T").splitlines() == [
        "T",
        "",
        "| a |",
        "| - |",
    ]
    assert tables.format_mean_std([1.0, 3.0]) == "2.0 ± 1.0"
    assert tables.format_mean_std([2.0]) == "2.0"
    assert tables.median_of_last([9, 1, 2, 3], 3) == 2.0


def test_plot_curves_saves_what_replot_curves_redraws(tmp_path):
    path = str(tmp_path / "curves.png")
    panels = {"a": {"ERM": [[3.0, 2.0], [5.0, 4.0]]}, "b": {"ERM": [[1, 1]]}}
    plots.plot_curves(panels, path, xlabel="epoch", ylabel="error", x=[1, 2])
    saved = plots.load_results(path)
    assert saved["panels"] == panels and saved["x"] == [1, 2]
    os.remove(path)
    plots.replot_curves(path)
    assert os.path.getsize(path) > 0


def test_warmup_step_decay():
    schedule = images.WarmupStepDecay(0.4, 10, [2, 4], warmup_epochs=1)
    rates = [float(schedule(step)) for step in (0, 5, 10, 19, 20, 40, 99)]
    np.testing.assert_allclose(
        rates, [0.4e-3, 0.2004, 0.4, 0.4, 0.04, 0.004, 0.004], rtol=1e-4
    )
    assert images.WarmupStepDecay(**schedule.get_config()).boundaries == [2, 4]


def test_dtype_policy_is_set_in_the_block_and_restored_after_an_error():
    keras.config.set_dtype_policy("float32")
    with pytest.raises(RuntimeError, match="inside"):
        with images.dtype_policy("mixed_bfloat16"):
            assert keras.config.dtype_policy().name == "mixed_bfloat16"
            raise RuntimeError("inside")
    assert keras.config.dtype_policy().name == "float32"


def test_center_crop_resizes_the_shorter_side_then_takes_the_centre():
    # 2x2 blocks of constant value 10 * row + column: halving the size
    # (bilinear) gives back exactly the block values.
    blocks = 10 * np.arange(4)[:, None] + np.arange(6)[None, :]
    image = np.kron(blocks, np.ones((2, 2)))[..., None].repeat(3, -1)
    image = tf.constant(image, tf.uint8)  # [8, 12, 3]
    # Shorter side 8 -> 2 * 2 = 4: the image becomes the 4x6 blocks, and
    # the central 2x2 of those is rows 1-2, columns 2-3.
    crop = images.center_crop(image, 2, resize_ratio=2.0)
    assert crop.shape == (2, 2, 3) and crop.dtype == tf.uint8
    np.testing.assert_array_equal(crop[..., 0], [[12, 13], [22, 23]])
    np.testing.assert_array_equal(crop[..., 2], crop[..., 0])
    # Shorter side 8 = 4 * 2: no resize, the central 4x4 of the image
    # (rows 2-5, columns 4-7).
    crop = images.center_crop(image, 4, resize_ratio=2.0)
    np.testing.assert_array_equal(crop[..., 1], image[2:6, 4:8, 1])
    np.testing.assert_array_equal(
        crop[..., 1],
        [
            [12, 12, 13, 13],
            [12, 12, 13, 13],
            [22, 22, 23, 23],
            [22, 22, 23, 23],
        ],
    )


def test_image_augmentations_keep_shapes_and_range():
    tf.random.set_seed(0)
    image = tf.cast(tf.random.uniform([40, 60, 3], 0, 256, tf.int32), tf.uint8)
    crop = images.random_resized_crop(image, 24)
    assert crop.shape == (24, 24, 3) and crop.dtype == tf.uint8
    small = image[:32, :32]
    padded = images.pad_crop_flip(small)
    assert padded.shape == (32, 32, 3)
    normalized = images.normalize(small, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    assert normalized.dtype == tf.float32
    assert -1.0 <= float(tf.reduce_min(normalized))
    assert float(tf.reduce_max(normalized)) <= 1.0


def test_add_weight_decay_penalises_kernels_only():
    model = tabular.mlp((3,), 2, hidden=(4,), weight_decay=0.2)
    kernels = [w for w in model.trainable_weights if w.path.endswith("kernel")]
    expected = sum(0.1 * float(tf.reduce_sum(k**2)) for k in kernels)
    assert len(model.losses) == 2
    np.testing.assert_allclose(float(sum(model.losses)), expected, rtol=1e-5)


def test_image_models_output_logits_of_the_right_shape():
    x = np.zeros((2, 32, 32, 3), "float32")
    for name in images.IMAGE_MODELS:
        if name == "resnet50":
            continue  # 24M weights: too slow to build here
        model = images.build_image_model(name, (32, 32, 3), 7, quick=True)
        assert model(x).shape == (2, 7)
    with pytest.raises(ValueError, match="`--model` must be one of"):
        images.build_image_model("vgg", (32, 32, 3), 7)


def test_fgsm_stays_in_the_epsilon_ball_and_the_pixel_range():
    model = tabular.mlp((6,), 3, hidden=(8,))
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
