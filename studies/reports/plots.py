"""Report figures (matplotlib, Agg backend), sized for an A4 text column.

Every figure is 6.7 in (170 mm, the A4 text width at the report's margins)
wide with 8 pt text, so it is printed at 100 % and stays legible. Groups keep
one colour and marker throughout (Okabe & Ito's colour-blind-safe palette;
markers make them distinguishable in greyscale too). Figures carry no title:
the document gives each one caption.
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

#: Okabe & Ito (2008) colour-blind-safe palette, black last.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
MARKERS = ("o", "s", "D", "^", "v", "P", "X", "*")
#: Group pairs: the same palette in another order, without the low-contrast yellow.
PAIR_PALETTE = ("#56B4E9", "#D55E00", "#000000", "#CC79A7", "#E69F00", "#009E73")
WIDTH_IN = 6.7
_RC = {
    "font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "xtick.labelsize": 7.5,
    "ytick.labelsize": 7.5, "legend.fontsize": 7.5, "axes.spines.top": False,
    "axes.spines.right": False,
}


def group_styles(groups: list[str]) -> dict[str, tuple[str, str]]:
    """Group -> (colour, marker), stable across every figure of a report."""
    return {g: (PALETTE[i % len(PALETTE)], MARKERS[i % len(MARKERS)]) for i, g in enumerate(groups)}


def to_svg(fig: Figure) -> str:
    """The figure as inline SVG (vector in the HTML and the PDF); closes it."""
    buffer = io.StringIO()
    # Ids hashed from a fixed salt and their content: the same report gives the
    # same bytes, and equal ids in two inline SVGs always name equal things.
    with plt.rc_context({"svg.hashsalt": "stylestudy", "svg.fonttype": "path"}):
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def _dodge(n: int, width: float = 0.6) -> np.ndarray:
    return np.linspace(-width / 2, width / 2, n) if n > 1 else np.zeros(1)


def _point_interval(ax, x, y, low, high, *, colour, marker, label, horizontal=True) -> None:
    """Points with intervals; a missing interval (guarded data) draws a hollow point only."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    low, high = np.asarray(low, float), np.asarray(high, float)
    has = np.isfinite(low) & np.isfinite(high)
    value = x if horizontal else y
    if has.any():
        err = np.vstack([value[has] - low[has], high[has] - value[has]]).clip(min=0)
        kw = {"xerr": err} if horizontal else {"yerr": err}
        ax.errorbar(x[has], y[has], fmt=marker, color=colour, ms=4.5, capsize=2, lw=1,
                    label=label, **kw)
        label = None
    if (~has).any():
        ax.plot(x[~has], y[~has], marker, mfc="white", color=colour, ms=4.5, label=label,
                linestyle="none")


def forest_plot(rows: list[dict], *, groups: list[str], group_names: dict[str, str],
                metric_names: dict[str, str], symbol: str, level: float) -> Figure:
    """Agreement per metric (rows), groups dodged on one axis.

    Args:
        rows: ``group, metric, statistic, ci_low, ci_high`` (``ci_*`` None: no interval).
    """
    metrics = _ordered_metrics(rows)
    styles = group_styles(groups)
    present = [g for g in groups if any(r["group"] == g for r in rows)]
    with plt.rc_context(_RC):
        fig, ax = plt.subplots(figsize=(WIDTH_IN, 0.9 + 0.2 * len(metrics) * max(2, len(present))))
        for offset, group in zip(_dodge(len(present)), present):
            part = {r["metric"]: r for r in rows if r["group"] == group}
            y = np.arange(len(metrics)) + offset
            get = _getter(part, metrics)
            colour, marker = styles[group]
            _point_interval(ax, get("statistic"), y, get("ci_low"), get("ci_high"),
                            colour=colour, marker=marker, label=group_names.get(group, group))
        ax.axvline(0.0, color="0.6", lw=0.8, zorder=0)
        ax.set_yticks(np.arange(len(metrics)), [metric_names.get(m, m) for m in metrics])
        ax.set_ylim(len(metrics) - 0.5, -0.5)
        ax.set_xlim(-1.0, 1.0)
        ax.set_xlabel(f"{symbol}, agreement with mean human rating ({level * 100:g} % CI)")
        ax.grid(axis="x", color="0.92", lw=0.6)
        _legend(ax, "participants")
        fig.tight_layout()
    return fig


def difference_plot(rows: list[dict], *, group_names: dict[str, str],
                    metric_names: dict[str, str], symbol: str, level: float) -> Figure:
    """Difference in agreement per metric and group pair, with intervals."""
    pairs = list(dict.fromkeys((r["group_a"], r["group_b"]) for r in rows))
    metrics = _ordered_metrics(rows, key="estimate")
    with plt.rc_context(_RC):
        fig, ax = plt.subplots(figsize=(WIDTH_IN, 0.9 + 0.2 * len(metrics) * max(2, len(pairs))))
        for i, (offset, pair) in enumerate(zip(_dodge(len(pairs)), pairs)):
            part = {r["metric"]: r for r in rows if (r["group_a"], r["group_b"]) == pair}
            y = np.arange(len(metrics)) + offset
            get = _getter(part, metrics)
            label = f"{group_names.get(pair[0], pair[0])} − {group_names.get(pair[1], pair[1])}"
            _point_interval(ax, get("estimate"), y, get("ci_low"), get("ci_high"),
                            colour=PAIR_PALETTE[i % len(PAIR_PALETTE)], marker=MARKERS[i % len(MARKERS)],
                            label=label)
        ax.axvline(0.0, color="0.6", lw=0.8, zorder=0)
        ax.set_yticks(np.arange(len(metrics)), [metric_names.get(m, m) for m in metrics])
        ax.set_ylim(len(metrics) - 0.5, -0.5)
        ax.set_xlabel(f"{symbol}, difference in agreement between groups ({level * 100:g} % CI)")
        ax.grid(axis="x", color="0.92", lw=0.6)
        _legend(ax, "groups")
        fig.tight_layout()
    return fig


#: Levels of the in-group panel, in order: the observed means' (a group's ratings of
#: its own culture's styles and of other cultures') and the model's (the same styles
#: rated by the group and by the other groups).
IN_GROUP_LEVELS = ("own culture", "other cultures", "own group", "other groups")


def means_plot(rows: list[dict], *, groups: list[str], group_names: dict[str, str],
               ylabel: str, level: float | None) -> Figure:
    """Mean score by method (left) and own vs other culture (right), groups dodged.

    Args:
        rows: ``group, factor ("method" | "in_group"), level, estimate, ci_low, ci_high``
            (``in_group`` levels from :data:`IN_GROUP_LEVELS`).
    """
    factors = [f for f in ("method", "in_group") if any(r["factor"] == f for r in rows)]
    styles = group_styles(groups)
    with plt.rc_context(_RC):
        widths = [max(2, len({r["level"] for r in rows if r["factor"] == f})) for f in factors]
        fig, axes = plt.subplots(1, len(factors), figsize=(WIDTH_IN, 2.6), squeeze=False,
                                 sharey=True, gridspec_kw={"width_ratios": widths})
        for ax, factor in zip(axes[0], factors):
            part = [r for r in rows if r["factor"] == factor]
            levels = sorted({r["level"] for r in part}, key=str)
            if factor == "in_group":  # observed (own/other culture) or model (own/other group)
                levels = [v for v in IN_GROUP_LEVELS if v in levels]
            present = [g for g in groups if any(r["group"] == g for r in part)]
            for offset, group in zip(_dodge(len(present), 0.4), present):
                cells = {r["level"]: r for r in part if r["group"] == group}
                x = np.arange(len(levels)) + offset
                get = _getter(cells, levels)
                colour, marker = styles[group]
                _point_interval(ax, x, get("estimate"), get("ci_low"), get("ci_high"),
                                colour=colour, marker=marker,
                                label=group_names.get(group, group), horizontal=False)
            ax.set_xticks(np.arange(len(levels)), levels,
                          rotation=25 if len(levels) > 4 else 0,
                          ha="right" if len(levels) > 4 else "center")
            ax.set_xlim(-0.6, len(levels) - 0.4)
            ax.set_xlabel("method" if factor == "method" else "style's culture"
                          if "own culture" in levels else "own culture's styles, rated by")
            ax.grid(axis="y", color="0.92", lw=0.6)
        axes[0, 0].set_ylabel(ylabel if level is None else f"{ylabel} ({level * 100:g} % CI)")
        _legend(axes[0, -1], "participants")
        fig.tight_layout()
    return fig


def strength_plot(tables: dict[str, list[dict]], *, groups: list[str],
                  group_names: dict[str, str], xlabel: str, level: float,
                  interval: str = "CI") -> Figure:
    """Per-method strengths (or mean ranks) with intervals, groups dodged.

    Args:
        tables: Group -> rows with ``item, strength, ci_low, ci_high``.
        interval: What the bars are, for the axis label ("CI", "posterior interval").
    """
    items = sorted({r["item"] for rows in tables.values() for r in rows}, key=str)
    styles = group_styles(groups)
    present = [g for g in groups if g in tables]
    with plt.rc_context(_RC):
        fig, ax = plt.subplots(figsize=(WIDTH_IN, 0.9 + 0.2 * len(items) * max(2, len(present))))
        for offset, group in zip(_dodge(len(present)), present):
            cells = {r["item"]: r for r in tables[group]}
            get = _getter(cells, items)
            colour, marker = styles[group]
            _point_interval(ax, get("strength"), np.arange(len(items)) + offset, get("ci_low"),
                            get("ci_high"), colour=colour, marker=marker,
                            label=group_names.get(group, group))
        ax.set_yticks(np.arange(len(items)), [str(i) for i in items])
        ax.set_ylim(len(items) - 0.5, -0.5)
        ax.set_xlabel(f"{xlabel} ({level * 100:g} % {interval})")
        ax.grid(axis="x", color="0.92", lw=0.6)
        _legend(ax, "participants")
        fig.tight_layout()
    return fig


def _legend(ax, title: str) -> None:
    """The legend right of the axes: inside, "best" still covers points and intervals of a
    short plot, which has no free corner."""
    ax.legend(title=title, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0),
              borderaxespad=0.0)


def _ordered_metrics(rows: list[dict], key: str = "statistic") -> list[str]:
    """Metrics by their mean estimate across groups, highest first."""
    values: dict[str, list[float]] = {}
    for r in rows:
        v = _num(r.get(key))
        values.setdefault(r["metric"], [])
        if np.isfinite(v):
            values[r["metric"]].append(v)
    return sorted(values, key=lambda m: -np.mean(values[m]) if values[m] else 0.0)


def _getter(cells: dict, keys: list):
    """``get(field)`` -> that field of each key's row, NaN where absent."""
    return lambda field: [_num(cells.get(k, {}).get(field)) for k in keys]


def _num(value) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return float("nan")
    return x
