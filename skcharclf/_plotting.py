"""Matplotlib figures for the HTML report (private).

Every chart is a :class:`matplotlib.figure.Figure` built without :mod:`matplotlib.pyplot`, so
making a report neither switches the user's backend (a notebook keeps its inline backend) nor
leaves figures registered in pyplot's global state; :func:`figure_to_png` renders them with Agg.
Image thumbnails are encoded with OpenCV.
Matplotlib is an optional dependency: :func:`import_matplotlib` imports it on first use and says
how to install it when it is missing.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ._images import as_uint8

# One palette for the whole report (the CSS in report.py uses the same values).
INK = "#1f2933"
MUTED = "#6b7785"
GRID = "#e4e7eb"
PAGE = "#ffffff"
TRAIN = "#3b5bdb"
VAL = "#f08c00"
TEAL = "#0c8599"
RARE = "#e8590c"
SEVERITY_COLOURS = {"info": "#748394", "warning": "#f59f00", "error": "#e03131"}
MARKER = "#495057"
METRIC_COLOURS = {"precision": TRAIN, "recall": VAL, "f1": TEAL}

# The page shows charts at most at 3/4 of their pixel size (108 CSS px per inch), so they
# stay sharp on high-density (phone) screens.
DPI = 144

_RC = {
    "font.size": 10,
    "axes.titlesize": 10.5,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.titlepad": 8,
    "axes.labelsize": 9.5,
    "axes.labelcolor": INK,
    "axes.edgecolor": "#9aa5b1",
    "axes.linewidth": 0.8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.color": GRID,
    "grid.linewidth": 0.8,
    "xtick.color": MUTED,
    "ytick.color": MUTED,
    "xtick.labelcolor": INK,
    "ytick.labelcolor": INK,
    "legend.frameon": False,
    "legend.fontsize": 8.5,
    "text.color": INK,
    "figure.facecolor": PAGE,
    "axes.facecolor": PAGE,
    "savefig.facecolor": PAGE,
    "image.interpolation": "nearest",
}

_INSTALL_HINT = (
    "the skcharclf report draws its plots with matplotlib, which is not installed; "
    "install it with: pip install skcharclf[plot]  (or: pip install matplotlib)"
)


def import_matplotlib() -> Any:
    """Import matplotlib, or raise an ImportError that says how to install it."""
    try:
        import matplotlib
        import matplotlib.figure
    except ImportError as exc:
        raise ImportError(_INSTALL_HINT) from exc
    return matplotlib


def style() -> Any:
    """A context manager applying the report's matplotlib style."""
    return import_matplotlib().rc_context(_RC)


def _figure(width: float, height: float, margins: tuple[float, float, float, float]) -> Any:
    """A figure with fixed ``margins`` = (left, bottom, right, top) in inches.

    The margins are computed from the sizes of the labels instead of by a layout engine,
    which would draw every figure twice and double the time a report takes.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI)
    left, bottom, right, top = margins
    fig.subplots_adjust(
        left=left / width, bottom=bottom / height, right=1 - right / width, top=1 - top / height
    )
    return fig


def figure_to_png(fig: Any) -> tuple[bytes, tuple[int, int]]:
    """Render a figure to PNG bytes with the Agg renderer; also return its (width, height) px."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    width, height = fig.canvas.get_width_height()
    return buffer.getvalue(), (width, height)


def mpl_text(value: object, max_len: int = 14) -> str:
    """A label safe for matplotlib: '$' would start mathtext, long names are shortened."""
    text = str(value)
    if len(text) > max_len:
        text = text[: max_len - 1] + "\u2026"
    return text.replace("$", r"\$")


# --------------------------------------------------------------------------------------------
# Thumbnails
# --------------------------------------------------------------------------------------------


def thumbnail_png(image: np.ndarray, max_side: int = 64) -> bytes:
    """Encode one 2D working-dtype image as a small gray PNG.

    Images are shown at their own resolution (the page scales them up with crisp pixels), so
    they are only shrunk, never enlarged: a 32 x 14 crop costs a few hundred bytes. OpenCV
    encodes a thumbnail in well under a millisecond, a matplotlib figure in tens of them.
    """
    import cv2

    pixels = as_uint8(image)
    scale = max_side / max(pixels.shape)
    if scale < 1:
        size = (max(1, round(pixels.shape[1] * scale)), max(1, round(pixels.shape[0] * scale)))
        pixels = cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(pixels))
    if not ok:  # pragma: no cover - OpenCV encodes any 2D uint8 array
        raise RuntimeError("OpenCV could not encode a thumbnail as PNG.")
    return encoded.tobytes()


# --------------------------------------------------------------------------------------------
# Charts
# --------------------------------------------------------------------------------------------


def _text_inches(n_chars: int, fontsize: float) -> float:
    """Approximate width of a DejaVu Sans string (digits and letters average 0.62 em)."""
    return n_chars * 0.62 * fontsize / 72


def _ticks(
    labels: Sequence[str], fontsize: float = 9.0
) -> tuple[list[str], bool, float, float, float]:
    """Tick texts, whether to rotate them, their font size, and their width / height in inches."""
    texts = [mpl_text(label) for label in labels]
    longest = max((len(text) for text in texts), default=1)
    rotate = longest > 3 or len(labels) > 15
    if len(labels) > 20:
        fontsize = 7.0
    width = _text_inches(longest, fontsize)
    line = 1.2 * fontsize / 72
    height = 0.71 * (width + line) if rotate else line
    return texts, rotate, fontsize, width, height


def _set_xticks(ax: Any, texts: Sequence[str], rotate: bool, fontsize: float) -> None:
    ax.set_xticks(
        range(len(texts)),
        texts,
        rotation=45 if rotate else 0,
        ha="right" if rotate else "center",
        rotation_mode="anchor" if rotate else "default",
        fontsize=fontsize,
    )


def _category_figure(labels: Sequence[str], ymax_text: str, legend_above: bool) -> tuple:
    """A bar-chart figure with one category per class and margins fitted to its labels."""
    texts, rotate, fontsize, label_w, label_h = _ticks(labels)
    n = len(labels)
    width = float(np.clip(0.3 * n + 1.8, 4.8, 9.0))
    left = 0.3 + _text_inches(len(ymax_text), 9.0) + 0.08
    if rotate:  # the first rotated label hangs left of its bar
        left = max(left, 0.71 * label_w - 0.5 * (width - left) / n + 0.1)
    bottom = label_h + 0.15
    height = 2.4 + bottom
    top = 0.32 if legend_above else 0.12
    fig = _figure(width, height + top - 0.12, margins=(left, bottom, 0.12, top))
    ax = fig.add_subplot()
    _set_xticks(ax, texts, rotate, fontsize)
    ax.set_xlim(-0.6, n - 0.4)
    ax.tick_params(axis="x", length=0)
    ax.grid(axis="x", visible=False)
    return fig, ax


def class_balance(labels: Sequence[str], counts: Sequence[int], rare: Sequence[bool], ylabel: str):
    """Bar chart of images per class; rare classes in the accent colour."""
    counts = np.asarray(counts)
    fig, ax = _category_figure(labels, f"{int(counts.max()):,}", legend_above=False)
    colours = [RARE if is_rare else TRAIN for is_rare in rare]
    bars = ax.bar(range(len(labels)), counts, color=colours, width=0.72)
    if len(labels) <= 30:
        ax.bar_label(bars, labels=[f"{int(c):,}" for c in counts], padding=2, fontsize=8)
    ax.set_ylim(0, 1.15 * max(int(counts.max()), 1))
    ax.set_ylabel(ylabel)
    return fig


def per_class_bars(labels: Sequence[str], scores: Mapping[str, Sequence[float]]) -> Any:
    """Grouped bars of precision, recall and F1 per class."""
    fig, ax = _category_figure(labels, "0.00", legend_above=True)
    n = len(labels)
    width = 0.27
    for k, (name, values) in enumerate(scores.items()):
        ax.bar(
            np.arange(n) + (k - 1) * width,
            values,
            width=width,
            color=METRIC_COLOURS[name],
            label={"f1": "F1"}.get(name, name),
        )
    ax.set_ylim(0, 1.0)
    ax.set_yticks([0, 0.25, 0.5, 0.75, 1.0])
    ax.legend(loc="lower center", ncols=3, bbox_to_anchor=(0.5, 1.0), borderaxespad=0.2)
    return fig


def confusion_matrix(matrix: np.ndarray, labels: Sequence[str]) -> Any:
    """Row-normalised confusion matrix with the percentage written in each non-empty cell."""
    from matplotlib.colors import LinearSegmentedColormap

    n = len(labels)
    texts, rotate, fontsize, label_w, label_h = _ticks(labels, 10.5 if n <= 12 else 9.0)
    side = float(np.clip(0.38 * n + 0.6, 3.0, 8.0))
    left = 0.36 + label_w + 0.08
    bottom = 0.36 + label_h + 0.08
    right = 0.12 + 0.14 + 0.5  # gap, colour bar, its tick labels
    width, height = left + side + right, bottom + side + 0.12
    fig = _figure(width, height, margins=(left, bottom, right, 0.12))
    ax = fig.add_subplot()
    cmap = LinearSegmentedColormap.from_list(
        "report", [PAGE, "#dbe4ff", TRAIN, "#1c2f8a"]
    ).with_extremes(bad="#f1f3f5")  # rows of classes absent from the test set
    image = ax.imshow(np.ma.masked_invalid(matrix), cmap=cmap, vmin=0.0, vmax=1.0, aspect="auto")
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    _set_xticks(ax, texts, rotate, fontsize)
    ax.set_yticks(range(n), texts, fontsize=fontsize)
    ax.tick_params(length=0)
    ax.set_xlabel("predicted class", fontsize=fontsize)
    ax.set_ylabel("true class", fontsize=fontsize)
    if n <= 25:
        for i, j in zip(*np.nonzero(np.nan_to_num(matrix)), strict=True):
            value = matrix[i, j]
            ax.text(
                j,
                i,
                f"{100 * value:.0f}" if value >= 0.005 else "<1",
                ha="center",
                va="center",
                fontsize=float(np.clip(100 / n, 5.5, 10.0)),
                color=PAGE if value > 0.55 else INK,
            )
    cax = fig.add_axes(
        [
            (left + side + 0.12) / width,
            (bottom + 0.2 * side) / height,
            0.14 / width,
            0.6 * side / height,
        ]
    )
    colorbar = fig.colorbar(image, cax=cax)
    colorbar.outline.set_visible(False)
    colorbar.ax.tick_params(labelsize=8, length=0)
    colorbar.set_ticks([0, 0.5, 1.0], labels=["0%", "50%", "100%"])
    return fig


def learning_curve(
    epochs: np.ndarray,
    train: np.ndarray | None,
    val: np.ndarray | None,
    *,
    title: str,
    markers: Sequence[tuple[int, Sequence[int], str]] = (),
    best_epoch: int | None = None,
    reference: tuple[float, str] | None = None,
    initial: float | None = None,
    log_y: bool = False,
    percent: bool = False,
    legend: bool = True,
) -> Any:
    """One panel of learning curves (train vs validation) with diagnosis markers.

    Parameters
    ----------
    epochs : ndarray
        1-based epoch numbers of the points.
    markers : sequence of (number, epochs, severity)
        Findings to mark: a line at a single epoch or a shaded span over several, labelled with
        the finding's number in the findings list.
    best_epoch : int, optional
        1-based epoch of the kept weights, marked with a star on the validation curve.
    reference : (value, label), optional
        A dashed horizontal reference line (the loss of an uninformed model, ln C).
    initial : float, optional
        The loss before the first update, drawn at epoch 0.
    legend : bool, default=True
        Whether to draw the legend (once per group of panels is enough).
    """
    fig = _figure(4.8, 3.0, margins=(0.62, 0.5, 0.12, 0.34))
    ax = fig.add_subplot()
    show_points = len(epochs) <= 40
    for values, colour, name in ((train, TRAIN, "train"), (val, VAL, "validation")):
        if values is None:
            continue
        values = np.where(np.isfinite(values), values, np.nan)
        ax.plot(
            epochs,
            values,
            color=colour,
            lw=1.8,
            marker="o" if show_points else None,
            ms=3.2,
            label=name,
        )
    if initial is not None and np.isfinite(initial):
        ax.plot([0], [initial], marker="D", ms=4.5, color=TRAIN, ls="none", label="before training")
    if reference is not None:
        ax.axhline(reference[0], color=MUTED, lw=1, ls=(0, (4, 3)), label=reference[1])
    if best_epoch is not None:
        curve = val if val is not None else train
        index = int(np.searchsorted(epochs, best_epoch))
        if curve is not None and index < len(curve) and np.isfinite(curve[index]):
            ax.plot(
                [best_epoch],
                [curve[index]],
                marker="*",
                ms=11,
                color=VAL if val is not None else TRAIN,
                mec=INK,
                mew=0.6,
                ls="none",
                label=f"kept (epoch {best_epoch})",
            )
    _draw_markers(ax, markers)
    if log_y:
        ax.set_yscale("log")
    if percent:
        ax.yaxis.set_major_formatter(_percent_formatter())
    ax.set_xlabel("epoch")
    ax.set_title(title)
    ax.xaxis.get_major_locator().set_params(integer=True)
    if legend:
        ax.legend(loc="best", fontsize=8)
    return fig


def lr_find_curve(result: Any) -> Any:
    """The loss of a learning-rate range test (an ``LRFindResult``) against the rate (log scale).

    The raw per-batch losses are drawn faint, the smoothed ones bold; a dot marks the lowest
    smoothed loss and a dashed line the suggested rate. The y axis spans the smoothed curve up
    to its minimum and a little more, so the explosion at the end does not flatten the rest.
    """
    rates, losses, smoothed = result.rates, result.losses, result.smoothed_losses
    suggested, lowest = result.suggested_rate, result.min_loss_rate
    fig = _figure(4.8, 3.0, margins=(0.62, 0.5, 0.12, 0.34))
    ax = fig.add_subplot()
    ax.plot(
        rates,
        np.where(np.isfinite(losses), losses, np.nan),
        color=TRAIN,
        lw=0.8,
        alpha=0.35,
        label="loss per batch",
    )
    ax.plot(rates, smoothed, color=TRAIN, lw=1.8, label="smoothed")
    finite = smoothed[np.isfinite(smoothed)]
    if finite.size:
        index = int(np.nanargmin(smoothed))
        ax.plot(
            [rates[index]],
            [smoothed[index]],
            marker="o",
            ms=5,
            color=VAL,
            ls="none",
            label=f"lowest ({lowest:.2g})",
        )
        # Up to a little above the descent: the explosion leaves the chart, the descent shows.
        raw = losses[: index + 1]
        low = min(float(finite.min()), float(raw[np.isfinite(raw)].min(initial=np.inf)))
        high = float(np.nanmax(smoothed[: index + 1]))
        span = high - low or abs(low) or 1.0
        ax.set_ylim(low - 0.15 * span, min(high + 0.6 * span, float(finite.max()) + 0.1 * span))
    ax.axvline(suggested, color=TEAL, lw=1.4, ls=(0, (4, 3)), label=f"suggested ({suggested:.2g})")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    ax.set_title("Learning-rate range test")
    ax.legend(loc="best", fontsize=8)
    return fig


def _percent_formatter() -> Any:
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda value, _: f"{100 * value:.0f}%")


def _draw_markers(ax: Any, markers: Sequence[tuple[int, Sequence[int], str]]) -> None:
    """Dashed lines (or grey spans) at finding epochs, tagged with the finding's number.

    Lines are neutral so they do not read as another curve; only the numbered tag carries the
    severity colour, as in the findings list.
    """
    transform = ax.get_xaxis_transform()  # x in data, y in axes fraction
    for number, finding_epochs, severity in markers:
        first, last = min(finding_epochs), max(finding_epochs)
        if last > first:
            ax.axvspan(first, last, color=MARKER, alpha=0.07, lw=0)
        ax.axvline(first, color=MARKER, lw=1.1, ls=(0, (3, 2)), alpha=0.8)
        ax.text(
            first,
            1.0,
            str(number),
            transform=transform,
            ha="center",
            va="center",
            fontsize=7.5,
            fontweight="bold",
            color=PAGE,
            bbox={
                "boxstyle": "circle,pad=0.25",
                "fc": SEVERITY_COLOURS.get(severity, MUTED),
                "ec": "none",
            },
            clip_on=False,
            zorder=5,
        )
