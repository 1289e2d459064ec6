"""Figures: training curves, metrics along a grid axis, segmentation predictions; and markdown tables."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .log import series



def _figure(figsize: tuple[float, float]) -> Figure:
    """A figure outside pyplot: no global state, no window, and the user's backend left as it is."""
    figure = Figure(figsize=figsize)
    FigureCanvasAgg(figure)  # attaches itself, so savefig renders with Agg even on a server without a display
    return figure


def panel_grid(count: int, panel_height: float) -> tuple[Figure, list]:
    """A figure with ``count`` panels, at most 3 a row, 5 inches wide each; the list of their axes."""
    columns = min(count, 3)
    rows = -(-count // columns)
    figure = _figure((5 * columns, panel_height * rows))
    return figure, list(figure.subplots(rows, columns, squeeze=False).ravel())


def save_panels(figure: Figure, axes: Sequence, used: int, path: str | Path) -> Path:
    """Hide the axes beyond the first ``used``, lay out and write the figure as PNG."""
    for axis in axes[used:]:
        axis.set_visible(False)
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=120, format="png")
    return path


def plot_training_curves(
    runs: Mapping[str, Sequence[dict]], path: str | Path, metrics: Sequence[tuple[str, str]] = (
        ("loss", "training loss (each method's own objective)"),
        ("validation_loss", "validation cross-entropy"),
        ("validation_accuracy", "validation top-1"),
    )
) -> Path:
    """One panel per metric, one line per run, against optimizer step."""
    figure = _figure((5 * len(metrics), 4))
    axes = figure.subplots(1, len(metrics), squeeze=False)
    for axis, (key, title) in zip(axes[0], metrics):
        for name, records in runs.items():
            steps, values = series(records, key)
            axis.plot(steps, values, marker="o" if key.startswith("validation") else None, markersize=3, label=name)
        axis.set_title(title)
        axis.set_xlabel("optimizer step")
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=120)
    return path


def plot_grid_metrics(panels: Sequence[tuple[str, Mapping[str, Sequence[tuple[float, float, float]]]]],
                      axis_name: str, path: str | Path) -> Path:
    """One panel per (title, {family: [(grid value, mean, std) ...]}): a metric against a numeric grid axis (a
    learning rate, log scale when it spans a decade), one line with seed error bars per method or variant."""
    figure, axes = panel_grid(len(panels), 3.8)
    for axis, (title, lines) in zip(axes, panels):
        for family, points in lines.items():
            points = sorted(points)
            axis.errorbar([p[0] for p in points], [p[1] for p in points], yerr=[p[2] for p in points],
                          marker="o", markersize=3, capsize=3, label=family)
        values = [p[0] for points in lines.values() for p in points]
        if values and min(values) > 0 and max(values) >= 10 * min(values):
            axis.set_xscale("log")
        axis.set_title(title, fontsize=9)
        axis.set_xlabel(axis_name)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    return save_panels(figure, axes, len(panels), path)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(value: Any) -> str:
        return f"{value:.4f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def voc_colormap(num_colors: int = 256) -> list[tuple[int, int, int]]:
    """PASCAL VOC's label colours: the bits of the class index spread over R, G and B."""
    colors = []
    for index in range(num_colors):
        r = g = b = 0
        value = index
        for shift in range(7, -1, -1):
            r |= (value & 1) << shift
            g |= ((value >> 1) & 1) << shift
            b |= ((value >> 2) & 1) << shift
            value >>= 3
        colors.append((r, g, b))
    return colors


IGNORE_COLOR = (224, 224, 192)  # VOC's colour for the 255 "void" label


def colorize(mask, ignore_index: int = 255):
    """[H, W] class indices -> [H, W, 3] uint8 in the VOC palette."""
    import numpy as np

    palette = np.array(voc_colormap(256), dtype=np.uint8)
    mask = np.asarray(mask)
    rgb = palette[np.clip(mask, 0, 255) % 256]
    rgb[mask == ignore_index] = IGNORE_COLOR
    return rgb


def prediction_panel(images: Sequence, masks: Sequence, predictions: Mapping[str, Sequence], class_names: Sequence[str],
                     path: str | Path, ignore_index: int = 255) -> Path:
    """A grid like the paper's Figure 2: input, ground truth, then each model's prediction, one row per image,
    with a legend of the classes that appear."""
    import numpy as np
    from matplotlib.patches import Patch

    columns = ["input", "ground truth", *predictions]
    figure = _figure((2.6 * len(columns), 2.6 * len(images) + 0.8))
    axes = figure.subplots(len(images), len(columns), squeeze=False)
    present: set[int] = set()
    for row, (image, mask) in enumerate(zip(images, masks)):
        panels = [np.asarray(image.convert("RGB")), colorize(mask, ignore_index)]
        present.update(int(v) for v in np.unique(mask) if v != ignore_index)
        for name in predictions:
            prediction = predictions[name][row]
            present.update(int(v) for v in np.unique(prediction))
            panels.append(colorize(prediction, ignore_index))
        for column, panel in enumerate(panels):
            axis = axes[row][column]
            axis.imshow(panel, interpolation="nearest")
            axis.set_xticks([])
            axis.set_yticks([])
            if row == 0:
                axis.set_title(columns[column], fontsize=9)
    palette = voc_colormap(256)
    handles = [Patch(color=np.array(palette[c]) / 255, label=class_names[c]) for c in sorted(present) if c < len(class_names)]
    figure.legend(handles=handles, loc="lower center", ncol=min(len(handles), 8), fontsize=8, frameon=False)
    figure.tight_layout(rect=(0, 0.06, 1, 1))
    path = Path(path)
    figure.savefig(path, dpi=110)
    return path
