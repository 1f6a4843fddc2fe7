"""Report figures (matplotlib, Agg backend, no display needed)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

# Caps keep figures legible and bounded in size for studies with many metrics.
MAX_METRICS_PER_FIGURE = 6
MAX_POINTS_PER_PANEL = 5_000


def _label(metric: str) -> str:
    return metric.removeprefix("metric__")


def metric_scatter(
    candidate_scores: pd.DataFrame, metrics: list[str], *, title: str
) -> Figure:
    """Metric (x) vs mean human score (y) per candidate; one row per metric, column per group.

    Args:
        candidate_scores: Columns ``group, candidate_id, human`` plus metric columns.
    """
    metrics = metrics[:MAX_METRICS_PER_FIGURE]
    groups = sorted(candidate_scores["group"].dropna().unique())
    fig, axes = plt.subplots(
        len(metrics), max(1, len(groups)), figsize=(3.2 * max(1, len(groups)), 2.6 * len(metrics)),
        squeeze=False, sharey=True,
    )
    for i, metric in enumerate(metrics):
        for j, group in enumerate(groups):
            ax = axes[i, j]
            part = candidate_scores[candidate_scores["group"] == group]
            part = part[[metric, "human"]].dropna()
            if len(part) > MAX_POINTS_PER_PANEL:
                part = part.sample(MAX_POINTS_PER_PANEL, random_state=0)
            ax.scatter(part[metric], part["human"], s=8, alpha=0.6)
            if len(part) >= 2 and part[metric].nunique() > 1:
                slope, intercept = np.polyfit(part[metric], part["human"], 1)
                xs = np.linspace(part[metric].min(), part[metric].max(), 2)
                ax.plot(xs, slope * xs + intercept, color="black", lw=1)
            if i == 0:
                ax.set_title(str(group))
            if j == 0:
                ax.set_ylabel("mean human score")
            ax.set_xlabel(_label(metric))
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def forest_plot(agreement: pd.DataFrame, *, title: str, level: float = 0.95) -> Figure:
    """Correlations with intervals: one row per metric, one marker per group.

    Args:
        agreement: Rows with ``group, metric, statistic, ci_low, ci_high``.
    """
    metrics = list(dict.fromkeys(agreement["metric"]))
    groups = sorted(agreement["group"].unique())
    fig, ax = plt.subplots(figsize=(6.5, 0.5 + 0.45 * len(metrics) * max(1, len(groups))))
    offsets = np.linspace(-0.3, 0.3, len(groups)) if len(groups) > 1 else [0.0]
    for offset, group in zip(offsets, groups):
        part = agreement[agreement["group"] == group].set_index("metric").reindex(metrics)
        y = np.arange(len(metrics)) + offset
        err = np.vstack([part["statistic"] - part["ci_low"], part["ci_high"] - part["statistic"]])
        ax.errorbar(part["statistic"], y, xerr=np.clip(err, 0, None), fmt="o", capsize=3,
                    label=str(group))
    ax.axvline(0.0, color="grey", lw=0.8)
    ax.set_yticks(np.arange(len(metrics)))
    ax.set_yticklabels([_label(m) for m in metrics])
    ax.invert_yaxis()
    ax.set_xlim(-1.05, 1.05)
    ax.set_xlabel(f"correlation with mean human score ({level:.0%} participant bootstrap)")
    ax.legend(title="group", fontsize="small")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def interaction_plot(cells: pd.DataFrame, *, title: str) -> Figure:
    """Mean score by method (x) and style culture (lines), one panel per group.

    Args:
        cells: Columns ``group, method, style_culture, mean, ci_low, ci_high``.
    """
    groups = sorted(cells["group"].unique())
    methods = sorted(cells["method"].unique())
    fig, axes = plt.subplots(1, max(1, len(groups)), figsize=(3.6 * max(1, len(groups)), 3.2),
                             squeeze=False, sharey=True)
    for ax, group in zip(axes[0], groups):
        part = cells[cells["group"] == group]
        for culture, line in part.groupby("style_culture"):
            line = line.set_index("method").reindex(methods)
            x = np.arange(len(methods))
            ax.errorbar(x, line["mean"], yerr=np.clip(np.vstack(
                [line["mean"] - line["ci_low"], line["ci_high"] - line["mean"]]), 0, None),
                marker="o", capsize=3, label=str(culture))
        ax.set_xticks(np.arange(len(methods)))
        ax.set_xticklabels(methods, rotation=30, ha="right")
        ax.set_title(f"group {group}")
    axes[0, 0].set_ylabel("mean score")
    axes[0, -1].legend(title="style culture", fontsize="small")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def strength_plot(tables: dict[str, pd.DataFrame], *, title: str, xlabel: str) -> Figure:
    """Item strengths with intervals, one marker series per group.

    Args:
        tables: Group -> table indexed by item with ``strength, ci_low, ci_high``.
    """
    items = sorted({item for t in tables.values() for item in t.index})
    fig, ax = plt.subplots(figsize=(6.5, 0.8 + 0.45 * len(items) * max(1, len(tables))))
    offsets = np.linspace(-0.3, 0.3, len(tables)) if len(tables) > 1 else [0.0]
    for offset, (group, table) in zip(offsets, sorted(tables.items())):
        table = table.reindex(items)
        y = np.arange(len(items)) + offset
        err = np.vstack([table["strength"] - table["ci_low"], table["ci_high"] - table["strength"]])
        ax.errorbar(table["strength"], y, xerr=np.clip(err, 0, None), fmt="o", capsize=3,
                    label=str(group))
    ax.set_yticks(np.arange(len(items)))
    ax.set_yticklabels([str(i) for i in items])
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.legend(title="group", fontsize="small")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def text_page(title: str, text: str) -> Figure:
    """A page of monospaced text (tables for the PDF)."""
    lines = text.splitlines() or [""]
    fig = plt.figure(figsize=(11.0, max(2.0, 0.8 + 0.17 * len(lines))))
    fig.text(0.02, 0.98, title, va="top", fontsize=12, weight="bold")
    fig.text(0.02, 0.94, "\n".join(lines), va="top", family="monospace", fontsize=7)
    return fig
