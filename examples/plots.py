"""Figures of the examples: the Agg backend, curves, saved raw results.

Matplotlib is imported when a figure is drawn, never at import time.
"""

import json
import os

import numpy as np

__all__ = [
    "load_results",
    "mean_of_seeds",
    "plot_curves",
    "pyplot",
    "replot_curves",
    "save_figure",
]


def pyplot():
    """Returns `matplotlib.pyplot` on the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path, *, results=None, dpi=100):
    """Saves `fig` to `path` (a PNG) and closes it.

    Args:
        fig: a Matplotlib figure.
        path: the PNG path.
        results: JSON-serialisable raw results the figure is drawn from,
            saved next to it as `<path without .png>.json` so that the
            figure can be redrawn without training again. Defaults to
            `None` (none saved).
        dpi: the resolution. Defaults to `100`.
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=dpi)
    pyplot().close(fig)
    if results is not None:
        with open(os.path.splitext(path)[0] + ".json", "w") as file:
            json.dump(results, file, indent=1)
            file.write("\n")


def load_results(path):
    """The raw results `save_figure` saved next to the figure `path`."""
    with open(os.path.splitext(path)[0] + ".json") as file:
        return json.load(file)


def mean_of_seeds(seeds):
    """'mean of 3 seeds', or '1 seed': what a figure's curves average."""
    return f"mean of {seeds} seeds" if seeds > 1 else "1 seed"


def plot_curves(
    panels, path, *, xlabel, ylabel, title=None, x=None, marker=None
):
    """Curves averaged over runs, one panel each, one legend for all.

    Panels share their y axis so that they compare at a glance, and a
    label keeps its colour on every panel. One panel holds its legend; a
    row of panels has one legend below them. The arguments are saved next
    to the figure (`.json`), so `replot_curves` can redraw it.

    Args:
        panels: a dict `panel title -> {curve label -> runs}`, where runs
            is a list of per-run curves of equal length, drawn as their
            mean.
        path: the PNG path.
        xlabel: the x-axis label.
        ylabel: the y-axis label.
        title: the figure's title (name the data set and the network).
            Defaults to `None`.
        x: the x values. Defaults to `None`: 1, 2, ... (epochs).
        marker: a Matplotlib marker for the points. Defaults to `None`.
    """
    plt = pyplot()
    fig, axes = plt.subplots(
        1,
        len(panels),
        figsize=(max(6.0, 4.2 * len(panels)), 4.4),
        sharey=True,
        squeeze=False,
        layout="constrained",
    )
    colours = _colours(panels)
    for ax, (panel_title, curves) in zip(axes[0], panels.items(), strict=True):
        for label, runs in curves.items():
            mean = np.mean(np.asarray(runs, dtype="float64"), axis=0)
            xs = np.arange(1, len(mean) + 1) if x is None else x
            ax.plot(xs, mean, marker=marker, color=colours[label], label=label)
        ax.set_title(panel_title, fontsize=11)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel(ylabel)
    if len(panels) == 1:
        axes[0, 0].legend()
    else:
        handles = [
            plt.Line2D([], [], color=c, marker=marker) for c in colours.values()
        ]
        fig.legend(
            handles,
            list(colours),
            loc="outside lower center",
            ncol=min(len(colours), 3),
            fontsize=11,
        )
    if title:
        fig.suptitle(title, fontsize=12)
    options = {"xlabel": xlabel, "ylabel": ylabel, "title": title}
    options.update(x=None if x is None else list(x), marker=marker)
    save_figure(fig, path, results={"panels": panels, **options})


def replot_curves(path):
    """Redraws a `plot_curves` figure from the results saved next to it."""
    saved = load_results(path)
    plot_curves(saved.pop("panels"), path, **saved)


def _colours(panels):
    """One colour per curve label, in order of first appearance."""
    labels = dict.fromkeys(
        label for curves in panels.values() for label in curves
    )
    cycle = [f"C{i}" for i in range(10)]
    return {label: cycle[i % 10] for i, label in enumerate(labels)}
