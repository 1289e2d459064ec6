"""What runs leave behind for people: the metrics log, trackers, figures, tables, model cards, the Hub."""

from .log import MetricsLog, average_records, read_metrics_log, series
from .plots import markdown_table, plot_grid_metrics, plot_training_curves, prediction_panel, voc_colormap
from .trackers import tracker_config

__all__ = [
    "MetricsLog",
    "average_records",
    "markdown_table",
    "plot_grid_metrics",
    "plot_training_curves",
    "prediction_panel",
    "read_metrics_log",
    "series",
    "tracker_config",
    "voc_colormap",
]
