"""GridMix (Baek et al., Pattern Recognition 2021, as OpenMixup's
`gridmix`): a grid of holes filled from the partner.

For each example (or batch, in `"batch"` mode), with its draws

    lam ~ Beta(alpha, alpha)     n ~ U{n_holes}     a ~ U(hole_aspect_ratio)
    area ~ U(cut_area_ratio)     r ~ U(cut_aspect_ratio)

a cut region of `area` of the image and aspect (height / width) `r` is
placed uniformly inside the image and split into cells of width
`ceil(region width / n)` and height `a` times that; in each cell, from its
top-left corner, a hole of sides `sqrt(1 - lam)` of the cell's (at least 1
pixel, at most the cell's side less 1) takes the partner's pixels. The
holes repeat with the cells' period up to the region's border. This is
OpenMixup's rule, with the region clipped to the image (OpenMixup lets a
region of aspect far from 1 run past the border) and `n` at most half the
region's width in pixels (OpenMixup asserts it). The label weight is the
exact fraction of pixels kept: the mask is a product of one condition per
axis, so the count of holes' pixels is exact integer arithmetic.

The mask is built from index comparisons and a modulo (one masked select,
which XLA fuses with the partner gather). A grid's complement is not a
grid, so GridMix has no inputs-only form; it has no box rule.
"""

from keras_mixup import backend, checks, options, spatial
from keras_mixup.variants import base

__all__ = ["GridMix", "draw_grids", "grids", "in_grid"]


def _range_option(name, default, doc, **check):
    return options.variant_option(
        "gridmix",
        name,
        default,
        lambda value: checks.check_range(value, name, **check),
        doc,
        to_config=options.as_list,
    )


OPTIONS = (
    options.variant_alpha("gridmix", "GridMix"),
    _range_option(
        "gridmix_n_holes",
        (2, 6),
        "GridMix's number of cells across the cut region's width: an int "
        ">= 1, or `(lo, hi)`, drawn uniformly from lo to hi inclusive "
        "(OpenMixup's default).",
        integer=True,
    ),
    _range_option(
        "gridmix_hole_aspect_ratio",
        (1.0, 1.0),
        "GridMix's cell height over cell width: a number > 0 or `(lo, "
        "hi)`, drawn uniformly.",
    ),
    _range_option(
        "gridmix_cut_area_ratio",
        (0.5, 1.0),
        "the fraction of the image GridMix's grid covers: a number in "
        "(0, 1] or `(lo, hi)`, drawn uniformly (OpenMixup's default).",
        maximum=1.0,
    ),
    _range_option(
        "gridmix_cut_aspect_ratio",
        (0.5, 2.0),
        "the height over width of GridMix's grid region: a number > 0 or "
        "`(lo, hi)`, drawn uniformly (OpenMixup's default); the region is "
        "clipped to the image.",
    ),
)


def _covered(extent, period, hole):
    """How many of `extent` positions fall in a hole (`p mod period <
    hole`), exact in integers."""
    np = backend.ops().numpy
    return (extent // period) * hole + np.minimum(np.mod(extent, period), hole)


def _uniform(shape, seed, bounds, *, integer=False):
    lo, hi = bounds
    if integer:
        return backend.uniform(
            shape, seed, minval=lo, maxval=hi + 1, dtype="int32"
        )
    return backend.uniform(shape, seed, minval=lo, maxval=hi)


def draw_grids(sizes, lam, seed, config):
    """Draws one grid per lam.

    Args:
        sizes: `(height, width)`, ints or scalar int tensors.
        lam: float32 `[n]`.
        seed: a seed, as `keras_mixup.backend.uniform` takes it.
        config: the options (`n_holes`, `hole_aspect_ratio`,
            `cut_area_ratio`, `cut_aspect_ratio`).

    Returns:
        What `grids` returns for the draws.
    """
    shape = backend.ops().core.shape(lam)
    seeds = backend.split(seed, count=5)
    return grids(
        sizes,
        lam,
        n_holes=_uniform(
            shape, seeds[0], config["gridmix_n_holes"], integer=True
        ),
        hole_aspect_ratio=_uniform(
            shape, seeds[1], config["gridmix_hole_aspect_ratio"]
        ),
        cut_area_ratio=_uniform(
            shape, seeds[2], config["gridmix_cut_area_ratio"]
        ),
        cut_aspect_ratio=_uniform(
            shape, seeds[3], config["gridmix_cut_aspect_ratio"]
        ),
        place=backend.uniform([shape[0], 2], seeds[4]),
    )


def grids(sizes, lam, **drawn):
    """The grids of drawn parameters (OpenMixup's `rand_grid`, batched).

    Args:
        sizes: `(height, width)`, ints or scalar int tensors.
        lam: float32 `[n]`.
        **drawn: float32 `[n]` `n_holes`, `hole_aspect_ratio`,
            `cut_area_ratio`, `cut_aspect_ratio`, and `place` `[n, 2]` in
            [0, 1), where the region lies (rows, columns).

    Returns:
        `(grid, kept)`: a dict of int32 `[n, 2]` tensors, (rows, columns)
        each: `start` and `extent` of the region, `period` of the cells,
        `hole` (the holes' sides); and float32 `[n]`, the fraction of
        pixels outside the holes.
    """
    ops = backend.ops()
    np, cast = ops.numpy, ops.core.cast
    size = np.stack([cast(s, "float32") for s in sizes])[None]
    height, width = size[:, 0], size[:, 1]
    area, ratio = (
        drawn["cut_area_ratio"],
        drawn["cut_aspect_ratio"],
    )
    cut_w = np.floor(np.sqrt(np.floor(height * width * area) / ratio))
    cut_h = np.clip(np.floor(cut_w * ratio), 1.0, height)
    cut_w = np.clip(cut_w, 1.0, width)
    extent = np.stack([cut_h, cut_w], axis=-1)
    start = np.floor((size - extent) * drawn["place"])
    n = cast(drawn["n_holes"], "float32")
    n = np.minimum(n, np.maximum(np.floor(cut_w / 2), 1.0))
    cell_w = np.ceil(cut_w / n)
    cell_h = np.maximum(np.floor(cell_w * drawn["hole_aspect_ratio"]), 1.0)
    period = np.stack([cell_h, cell_w], axis=-1)
    side = np.floor(period * np.sqrt(1.0 - lam)[:, None])
    hole = np.minimum(np.maximum(side, 1.0), period - 1.0)
    grid = {"start": start, "extent": extent, "period": period, "hole": hole}
    grid = {key: cast(value, "int32") for key, value in grid.items()}
    covered = _covered(grid["extent"], grid["period"], grid["hole"])
    holes = cast(covered[:, 0] * covered[:, 1], "float32")
    return grid, 1.0 - holes / (height * width)


def _in_holes(grid, j, where, rank):
    """Bool: whether positions `where` along cut axis `j` lie in a hole of
    their example's grid (its values shaped `[B, 1, ...]` for rank
    `rank`)."""
    np = backend.ops().numpy
    start, extent, period, hole = (
        spatial.per_example(grid[key][:, j], rank)
        for key in ("start", "extent", "period", "hole")
    )
    offset = where - start
    inside = np.logical_and(offset >= 0, offset < extent)
    return np.logical_and(inside, np.mod(offset, period) < hole)


def in_grid(image, grid, rank, axes, trailing=1):
    """Bool, broadcastable to `image`: whether a position lies in a hole of
    its example's grid (`grid` as `draw_grids` returns it, `[B, 2]` or
    `[1, 2]` tensors; `trailing` as `keras_mixup.spatial.mask_along`
    takes it)."""

    def along(j, where):
        return _in_holes(grid, j, where, rank)

    return spatial.mask_along(image, rank, axes, along, trailing)


def _torch_paste(image, partner_index, grid, axes):
    """The paste on PyTorch, eagerly: one `torch.where` of the gathered
    partners on a whole mask (`spatial.torch_separable_mask`: the holes
    along each cut axis, `[B, size]`)."""
    import torch

    image = checks.to_tensor(image)
    conditions = []
    for j, axis in enumerate(axes):
        where = torch.arange(image.shape[axis], device=image.device)
        conditions.append(_in_holes(grid, j, where[None], 2))
    inside = spatial.torch_separable_mask(image, axes, conditions)
    return torch.where(inside, image.index_select(0, partner_index), image)


class GridMix(base.Variant):
    """A grid of holes filled from the partner in each example."""

    name = "gridmix"
    cut_axes = 2
    unmixed_params = {"period": 1}
    options = OPTIONS
    alpha_option = "gridmix_alpha"
    spatial = True
    keeps_values = True
    inputs_only_form = False  # takes the default targets: no boxes
    needs_labels_reason = (
        "The inputs-only form needs a mixing symmetric under swapping the "
        "two examples; a GridMix grid's complement is not a grid, so "
        "GridMix must weigh the labels by the pixels kept."
    )

    def draw(self, context):
        np = backend.ops().numpy
        sizes = self.check_cut_axes(context.image_sizes())
        lam = np.reshape(context.lam(self.alpha), [-1])
        grid, kept = draw_grids(sizes, lam, context.seed(0), self.config)
        return base.Draw(np.reshape(kept, context.shape), None, grid)

    def apply_image(self, draw, image, rank, axes, *, kind="inputs"):
        index, grid = draw.partner_index, draw.params
        if backend.name() == "torch":
            return _torch_paste(image, index, grid, axes)
        return spatial.paste_where(image, rank, axes, index, in_grid, grid)
