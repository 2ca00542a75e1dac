"""ResizeMix and Mosaic read back on one Keras backend, a scenario of the
shared per-backend process (conftest.py's `SHARED`):

    KERAS_BACKEND=torch python tests/scenario_runner.py \
        variant_backend_scenarios.py:resize_and_tile

returns how far ResizeMix's pasted regions are from the partner resized
by `keras.ops.image.resize` on that backend, Mosaic's tiles and CutMix's
pastes (per batch and per example) from the crops written out by hand,
and on PyTorch CutMix's boxes in torch ops from those in Keras ops.
"""

import keras
import numpy as np

from keras_mixup.engine import MixingEngine

B, H, W = 6, 20, 24


def _numpy(t):
    return np.asarray(keras.ops.convert_to_numpy(t))


def _resize_error(x):
    engine = MixingEngine(variant="resizemix", num_classes=B, seed=3)
    draw = engine.draw(B, x)
    mixed, labels, _ = engine.apply(draw, x, np.arange(B))
    mixed, labels = _numpy(mixed), _numpy(labels)
    lows, highs = _numpy(draw.params["lows"]), _numpy(draw.params["highs"])
    partner = _numpy(draw.partner_index)
    error = 0.0
    for i in range(B):
        (y0, x0), (y1, x1) = lows[i], highs[i]
        resized = keras.ops.image.resize(
            x[partner[i]], (int(y1 - y0), int(x1 - x0)), antialias=False
        )
        error = max(
            error,
            float(np.abs(mixed[i, y0:y1, x0:x1] - _numpy(resized)).max()),
        )
        kept = 1 - (y1 - y0) * (x1 - x0) / (H * W)
        if partner[i] != i:
            error = max(error, abs(float(labels[i, i]) - kept))
    return error


def _tile_error(x):
    engine = MixingEngine(variant="mosaic", num_classes=B, seed=3)
    draw = engine.draw(B, x)
    mixed = _numpy(engine.apply(draw, x, np.arange(B))[0])
    centre, partners = (
        _numpy(draw.params["centre"]),
        _numpy(draw.partner_index),
    )
    error = 0.0
    for i in range(B):
        cy, cx = centre[i]
        s = [i, *partners[i]]
        tiles = [x[k, ..., 0] for k in s]
        expected = np.block(
            [
                [tiles[0][H - cy :, W - cx :], tiles[1][H - cy :, : W - cx]],
                [tiles[2][: H - cy, W - cx :], tiles[3][: H - cy, : W - cx]],
            ]
        )
        error = max(error, float(np.abs(mixed[i, ..., 0] - expected).max()))
    return error


def _cut_error(x, mode):
    """How far CutMix's images and label weights are from the partner's
    box pasted by hand (each example's box read from the draw)."""
    engine = MixingEngine(variant="cutmix", num_classes=B, seed=3, mode=mode)
    draw = engine.draw(B, x)
    mixed, labels, _ = engine.apply(draw, x, np.arange(B))
    mixed, labels = _numpy(mixed), _numpy(labels)
    lows, highs = _numpy(draw.params["lows"]), _numpy(draw.params["highs"])
    lows, highs = np.broadcast_to(lows, (B, 2)), np.broadcast_to(highs, (B, 2))
    partner, x = _numpy(draw.partner_index), _numpy(x)
    error, label_error = 0.0, 0.0
    for i in range(B):
        (y0, x0), (y1, x1) = lows[i], highs[i]
        expected = x[i].copy()
        expected[y0:y1, x0:x1] = x[partner[i], y0:y1, x0:x1]
        error = max(error, float(np.abs(mixed[i] - expected).max()))
        kept = 1 - (y1 - y0) * (x1 - x0) / (H * W)
        if partner[i] != i:
            label_error = max(label_error, abs(float(labels[i, i]) - kept))
    return error, label_error


def _numpy_bounds(sides, place, inside):
    """`spatial.box_bounds`'s rule written in NumPy (float32)."""
    size = np.array([[H, W]], "float32")
    if not inside:
        lengths = np.round(sides[:, None] * size)
        start = np.floor(place * size) - np.floor(lengths / 2)
        lows = np.minimum(np.maximum(start, 0), size)
        highs = np.minimum(np.maximum(start + lengths, 0), size)
    else:
        lengths = np.round(sides * size)
        lows = np.floor(place * (size - lengths + 1))
        highs = lows + lengths
    kept = 1 - np.prod(highs - lows, axis=1) / (H * W)
    return lows.astype("int32"), highs.astype("int32"), kept


def _bounds_error():
    """How far the boxes of `spatial.box_bounds` on this backend, and the
    one-box scalar form of PyTorch's host path (`spatial._scalar_bounds`),
    are from the rule written in NumPy, on the same draws: `[bounds, kept,
    scalar bounds, scalar kept]`."""
    from keras_mixup import spatial

    rng = np.random.default_rng(1)
    place = rng.random((64, 2)).astype("float32")
    side = rng.random(64).astype("float32")
    errors = [0.0] * 4
    for inside, sides in ((False, side), (True, 1.0 - place)):
        ours = spatial.box_bounds(
            (H, W),
            keras.ops.convert_to_tensor(sides),
            keras.ops.convert_to_tensor(place),
            inside=inside,
        )
        theirs = _numpy_bounds(sides, place, inside)
        for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            part = min(i, 1)  # lows and highs, then kept
            error = float(np.abs(_numpy(a) - b).max())
            errors[part] = max(errors[part], error)
        for n in range(64):
            one = sides[n] if inside else [sides[n]] * 2
            found = spatial._scalar_bounds((H, W), one, place[n], inside)
            for part, (a, b) in enumerate(
                zip(found, [t[n] for t in theirs], strict=True)
            ):
                error = float(np.abs(np.asarray(a) - b).max())
                errors[2 + min(part, 1)] = max(errors[2 + min(part, 1)], error)
    return errors


def resize_and_tile():
    rng = np.random.default_rng(0)
    x = rng.random((B, H, W, 1)).astype("float32")
    return {
        "backend": keras.backend.backend(),
        "resize_error": _resize_error(x),
        "tile_error": _tile_error(x),
        "cut_errors": [_cut_error(x, mode) for mode in ("batch", "elem")],
        "bounds_error": _bounds_error(),
    }
