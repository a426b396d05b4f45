"""The HTML collapse report: one self-contained page rendered from the JSON report's data only.

`render_html(report)` takes the dict `CheckResult.report()` returns (or the same dict read back from
`collapse_report.json`) and returns the page: verdicts, the flags table, the dimension scores, then
the pictures people would rather look at than read (per-column distributions with the flagged
columns first, the correlation-difference heat map, the PCA spectrum, the power spectra), schema
problems and the calibration summary. Charts are matplotlib SVG inlined in the page: no scripts, no
files beside it, nothing fetched from the network (a Content-Security-Policy says so to the browser).
Every string from the report is escaped (column names come from user files). The same dict gives
the same bytes: SVG ids are salted per figure, the SVG carries no date, and every mapping is sorted.
"""

from __future__ import annotations

import html
import io
import json
import math
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import LogFormatter, MaxNLocator

REFERENCE_COLOR = "#7f7f7f"
CANDIDATE_COLOR = "#dd8452"
PASS_COLOR = "#55a868"
FAIL_COLOR = "#c44e52"
MAX_COLUMN_FIGURES = 48  # per picture kind; the rest are named under the pictures
MAX_LEVELS = 30  # categorical bars per column: the levels whose share changed most
MAX_LABEL = 32  # characters of a column or level name inside a chart (the page shows it in full)
ANNOTATE_CELLS = 12  # heat maps up to this many columns print each cell's value
_MATPLOTLIB = threading.Lock()  # rc settings (the SVG id salt among them) are process-wide: one page at a time

_RC = {"font.size": 8, "axes.titlesize": 9, "axes.labelsize": 8,
       "xtick.labelsize": 7, "ytick.labelsize": 7, "svg.fonttype": "none", "axes.spines.top": False,
       "axes.spines.right": False}
_SVG_METADATA = {"Date": None, "Creator": None, "Format": None, "Type": None}
_CSP = "default-src 'none'; style-src 'unsafe-inline'"  # nothing but the page's own styles may load
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5rem auto; max-width: 76rem; padding: 0 1rem; color: #222; }
h1 { margin-bottom: .3rem; } h2 { margin-top: 2rem; border-bottom: 1px solid #ddd; padding-bottom: .2rem; }
table { border-collapse: collapse; margin: .5rem 0; font-size: .85rem; }
th, td { border: 1px solid #ddd; padding: .25rem .5rem; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.verdict { display: inline-block; padding: .3rem .7rem; border-radius: .3rem; margin-right: .5rem;
           font-weight: 600; color: #fff; }
.bad { background: #c44e52; } .ok { background: #55a868; } .score { font-size: 1.1rem; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(19rem, 1fr)); gap: .8rem; }
figure { margin: 0; border: 1px solid #e4e4e4; padding: .3rem; }
figure.flagged { border: 2px solid #c44e52; }
figcaption { font-size: .8rem; overflow-wrap: anywhere; }
svg { max-width: 100%; height: auto; }
.note { color: #666; font-size: .85rem; } .key { color: #666; }
nav a { margin-right: .8rem; }
"""


def render_html(report: Mapping[str, Any]) -> str:
    """The whole report page for one JSON report dict."""
    flagged = _flagged_columns(report.get("flags") or [])
    details = {d.get("name"): d.get("details") or {} for d in _all_dimensions(report)}
    with _MATPLOTLIB, matplotlib.rc_context(_RC):
        body = [
            _header(report),
            _flags_section(report),
            _scores_section(report),
            _distributions_section(details.get("distribution_fidelity", {}), flagged),
            _correlation_section(details.get("correlation_preservation", {}), report.get("flags") or []),
            _entropy_section(details.get("entropy_stability", {})),
            _spectra_section(details.get("spectral_coherence", {}), flagged),
            _schema_section(report.get("schema") or {}),
            _mapping_section("calibration", "Calibration", report.get("calibration") or {}, "No calibration data."),
            _mapping_section("inputs", "Inputs", report.get("inputs") or {}, "No input description."),
        ]
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_verdict_text(report)} - dmas collapse check</title>", f"<style>{_STYLE}</style>", "</head>",
        "<body>", *body, "</body>", "</html>", ""])


# --- sections -------------------------------------------------------------------------------------------------


def _header(report: Mapping[str, Any]) -> str:
    collapse, drift = bool(report.get("collapse_detected")), bool(report.get("drift_detected"))
    calibration = report.get("calibration") or {}
    rows = ""
    if "candidate_rows" in calibration or "reference_rows" in calibration:
        rows = (f'<p class="note">candidate {_esc(_fmt(calibration.get("candidate_rows")))} rows, '
                f'reference {_esc(_fmt(calibration.get("reference_rows")))} rows</p>')
    links = " ".join(f'<a href="#{anchor}">{title}</a>' for anchor, title in [
        ("flags", "Findings"), ("scores", "Scores"), ("distributions", "Distributions"),
        ("correlation", "Correlation"), ("entropy", "PCA spectrum"), ("spectra", "Spectra"), ("schema", "Schema"),
        ("calibration", "Calibration"), ("inputs", "Inputs")])
    return (f"<h1>Collapse check</h1>\n<p>"
            f'<span class="verdict {"bad" if collapse else "ok"}">'
            f'{"Collapse detected" if collapse else "No collapse"}</span>'
            f'<span class="verdict {"bad" if drift else "ok"}">{"Drift detected" if drift else "No drift"}</span>'
            f'<span class="score">overall score <b>{_esc(_fmt(report.get("overall_score")))}</b> / 100</span></p>\n'
            f"{rows}\n<nav>{links}</nav>")


def _flags_section(report: Mapping[str, Any]) -> str:
    flags = report.get("flags") or []
    titles = {d.get("name"): d.get("title") or d.get("name") for d in _all_dimensions(report)}
    if not flags:
        return ('<h2 id="flags">Findings</h2>\n<p>No findings: every statistic lies within what null resamples '
                "of the reference produce at the calibrated false-positive rate.</p>")
    rows = []
    for flag in flags:
        judged = flag.get("evidence") or {}
        rows.append(_row([
            titles.get(flag.get("dimension"), flag.get("dimension")), flag.get("finding"),
            ", ".join(map(str, flag.get("columns") or [])), judged.get("statistic"), (_fmt(judged.get("value")), "num"),
            _threshold_text(judged), (_fmt(flag.get("null_quantile")), "num"), _compact(judged.get("evidence") or {})]))
    header = _row(["dimension", "finding", "columns", "statistic", "value", "flagged when", "null quantile",
                   "evidence"], cell="th")
    return (f'<h2 id="flags">Findings ({len(flags)})</h2>\n'
            f'<table class="flags">\n{header}\n' + "\n".join(rows) + "\n</table>")


def _scores_section(report: Mapping[str, Any]) -> str:
    dimensions = _all_dimensions(report)
    if not dimensions:
        return '<h2 id="scores">Dimension scores</h2>\n<p class="note">No dimension results.</p>'
    rows = [_row(["", "dimension", "score", "passed", "statistics", "flagged", "notes"], cell="th")]
    tables = []
    for d in dimensions:
        evidence = d.get("evidence") or []
        flagged = sum(1 for judged in evidence if judged.get("flagged"))
        rows.append(_row([d.get("number") or "", d.get("title") or d.get("name"), (_fmt(d.get("score")), "num"),
                          "yes" if d.get("passed") else "NO", (str(len(evidence)), "num"), (str(flagged), "num"),
                          " ".join(str(note) for note in d.get("notes") or [])]))
        tables.append(_evidence_table(d))
    return ('<h2 id="scores">Dimension scores</h2>\n'
            f"<figure>{_scores_chart(dimensions)}</figure>\n<table>\n" + "\n".join(rows) + "\n</table>\n"
            + "\n".join(tables))


def _evidence_table(dimension: Mapping[str, Any]) -> str:
    """Every statistic of one dimension, flagged first (collapsed: it is for those who want numbers)."""
    rows = [_row(["statistic", "columns", "value", "ideal", "flagged when", "null quantile", "excess", "flagged",
                  "evidence"], cell="th")]
    for judged in dimension.get("evidence") or []:
        rows.append(_row([judged.get("statistic"), ", ".join(map(str, judged.get("columns") or [])),
                          (_fmt(judged.get("value")), "num"), (_fmt(judged.get("ideal")), "num"),
                          _threshold_text(judged), (_fmt(judged.get("null_quantile")), "num"),
                          (_fmt(judged.get("excess")), "num"), "yes" if judged.get("flagged") else "",
                          _compact(judged.get("evidence") or {})]))
    return (f"<details><summary>{_esc(dimension.get('title') or dimension.get('name'))}: "
            f"{len(rows) - 1} statistics</summary>\n<table>\n" + "\n".join(rows) + "\n</table></details>")


def _distributions_section(details: Mapping[str, Any], flagged: dict[str, list[str]]) -> str:
    histograms = details.get("histograms") or {}
    categories = details.get("categories") or {}
    figures = [(column, _histogram_chart, histograms[column]) for column in histograms]
    figures += [(column, _categories_chart, categories[column]) for column in categories]
    return ('<h2 id="distributions">Distributions: candidate vs reference</h2>\n'
            f'<p class="note">{_legend()} Flagged columns come first, framed in red.</p>\n'
            + _column_grid("distribution", figures, flagged, "No per-column distributions in this report."))


def _correlation_section(details: Mapping[str, Any], flags: list[Mapping[str, Any]]) -> str:
    title = '<h2 id="correlation">Correlation difference (candidate - reference)</h2>\n'
    columns, difference = details.get("columns") or [], details.get("difference")
    if len(columns) < 2 or not difference:
        return title + '<p class="note">No correlation matrix in this report (fewer than two columns).</p>'
    pairs = {tuple(flag.get("columns") or []) for flag in flags
             if flag.get("dimension") == "correlation_preservation" and len(flag.get("columns") or []) == 2}
    return (title + '<p class="note">Blue: the candidate correlates less than the reference, red: more. '
                    "Framed cells are flagged pairs.</p>\n"
            f"<figure>{_correlation_chart(columns, difference, pairs)}</figure>")


def _entropy_section(details: Mapping[str, Any]) -> str:
    spectrum = details.get("pca_spectrum") or {}
    parts = ['<h2 id="entropy">PCA explained-variance spectrum</h2>']
    if spectrum.get("reference") and spectrum.get("candidate"):
        parts.append(f'<p class="note">{_legend()} A candidate spectrum that falls faster than the reference\'s '
                     "has lost variance in the minor directions, the classic collapse signature.</p>")
        parts.append(f"<figure>{_pca_chart(spectrum)}</figure>")
    else:
        parts.append('<p class="note">No PCA spectrum in this report.</p>')
    entropy = details.get("entropy") or {}
    if entropy:
        parts.append("<h3>Column entropy (nats)</h3>")
        parts.append(_comparison_table(entropy) if all(isinstance(v, Mapping) for v in entropy.values())
                     else _data_html(entropy))
    return "\n".join(parts)


def _comparison_table(values: Mapping[str, Mapping[str, Any]]) -> str:
    """Per column: the reference's value, the candidate's, and their ratio."""
    rows = [_row(["column", "reference", "candidate", "candidate / reference"], cell="th")]
    for column in sorted(values):
        before, after = _float(values[column].get("reference")), _float(values[column].get("candidate"))
        ratio = after / before if before and not math.isnan(before) else math.nan
        rows.append(_row([column, (_fmt(before), "num"), (_fmt(after), "num"), (_fmt(ratio), "num")]))
    return "<table>\n" + "\n".join(rows) + "\n</table>"


def _spectra_section(details: Mapping[str, Any], flagged: dict[str, list[str]]) -> str:
    spectra = details.get("spectra") or {}
    figures = [(column, _spectrum_chart, spectra[column]) for column in spectra]
    return ('<h2 id="spectra">Power spectra of ordered columns</h2>\n'
            f'<p class="note">{_legend()}</p>\n'
            + _column_grid("spectrum", figures, flagged, "No ordered columns: no spectra in this report."))


def _schema_section(schema: Mapping[str, Any]) -> str:
    """Missing, extra and retyped columns (the shape `dmas.quality.columns` reports); other keys as they come."""
    title = '<h2 id="schema">Schema</h2>\n'
    if not schema:
        return title + '<p class="note">No schema comparison in this report.</p>'
    retyped = schema.get("retyped") if isinstance(schema.get("retyped"), Mapping) else {}
    known = {"matches", "compared", "missing", "extra", *(["retyped"] if retyped else [])}
    parts = [f"<p>{len(schema['compared'])} columns compared.</p>"] if isinstance(schema.get("compared"), list) else []
    if schema.get("matches") or not _has_content({k: v for k, v in schema.items() if k not in ("matches", "compared")}):
        parts.append("<p>Both tables have the same columns and kinds.</p>")
    for key, text in (("missing", "In the reference, not in the candidate"),
                      ("extra", "In the candidate, not in the reference")):
        if schema.get(key):
            parts.append(f"<p><b>{text}:</b> {_esc(_fmt_any(schema[key]))}</p>")
    if retyped:
        rows = [_row(["column", "reference kind", "candidate kind"], cell="th")]
        rows += [_row([name, (retyped[name] or {}).get("reference"), (retyped[name] or {}).get("candidate")])
                 for name in sorted(retyped)]
        parts.append("<p><b>Different kinds</b> (left out of the comparison):</p>\n<table>\n"
                     + "\n".join(rows) + "\n</table>")
    other = {key: value for key, value in schema.items() if key not in known}
    if _has_content(other):
        parts.append(_data_html(other))
    return title + "\n".join(parts)


def _mapping_section(anchor: str, title: str, data: Mapping[str, Any], empty: str) -> str:
    content = _data_html(data) if _has_content(data) else f'<p class="note">{_esc(empty)}</p>'
    return f'<h2 id="{anchor}">{_esc(title)}</h2>\n{content}'


def _column_grid(kind: str, figures: list[tuple[str, Any, Any]], flagged: dict[str, list[str]], empty: str) -> str:
    """One small figure per column, flagged columns first (in flag order, captioned with what was found)."""
    if not figures:
        return f'<p class="note">{_esc(empty)}</p>'
    rank = {column: i for i, column in enumerate(flagged)}
    ordered = sorted(figures, key=lambda item: (rank.get(item[0], len(rank)), item[0]))
    cells = []
    for index, (column, chart, data) in enumerate(ordered[:MAX_COLUMN_FIGURES]):
        svg = chart(column, data, f"{kind}-{index}")
        css = ' class="flagged"' if column in rank else ""
        found = f" flagged: {_esc(', '.join(flagged[column]))}" if column in rank else ""
        caption = f"<b>{_esc(column)}</b>{found}"
        cells.append(f"<figure{css}>{svg}<figcaption>{caption}</figcaption></figure>")
    rest = [column for column, _, _ in ordered[MAX_COLUMN_FIGURES:]]
    more = f'\n<p class="note">Not drawn ({len(rest)}): {_esc(", ".join(rest))}</p>' if rest else ""
    return '<div class="grid">\n' + "\n".join(cells) + "\n</div>" + more


# --- pictures: one function each, data in, SVG markup out -------------------------------------------------------


def _scores_chart(dimensions: list[Mapping[str, Any]]) -> str:
    """Horizontal bars of every dimension's score with its pass threshold as a dashed line."""
    labels = [_label(f"{d.get('number') or 'M'}. {d.get('title') or d.get('name')}") for d in dimensions]
    scores = [_float(d.get("score")) for d in dimensions]
    figure = _figure(7.0, 0.32 * len(dimensions) + 0.9)
    ax = figure.add_subplot()
    positions = np.arange(len(dimensions))[::-1]
    colors = [PASS_COLOR if d.get("passed") else FAIL_COLOR for d in dimensions]
    ax.barh(positions, np.nan_to_num(scores), color=colors, height=0.65)
    for position, score, color in zip(positions, scores, colors):
        ax.text(min(np.nan_to_num(score), 100) + 1, position, "n/a" if math.isnan(score) else f"{score:.0f}",
                va="center", color=color, fontweight="bold")
    thresholds = {_float(d.get("threshold")) for d in dimensions}
    for threshold in sorted(t for t in thresholds if not math.isnan(t)):
        ax.axvline(threshold, color="#333", linestyle="--", linewidth=1)
        ax.text(threshold, len(dimensions) - 0.4, f" pass threshold {threshold:g}", fontsize=7)
    ax.set_yticks(positions, labels)
    ax.set_xlim(0, 108)
    ax.set_xlabel("score (100 = indistinguishable from null resamples of the reference)")
    return _svg(figure, "scores", "dimension scores")


def _histogram_chart(column: str, data: Mapping[str, Any], key: str) -> str:
    """Reference density as a grey area, candidate density as an orange step line, on the same bins."""
    edges, reference, candidate = (_floats(data.get(name)) for name in ("edges", "reference", "candidate"))
    if len(edges) < 2 or len(reference) != len(edges) - 1 or len(candidate) != len(edges) - 1:
        return '<p class="note">histogram data malformed</p>'
    figure = _figure(3.4, 2.2, SMALL_CHART_MARGINS)
    ax = figure.add_subplot()
    ax.stairs(reference, edges, fill=True, color=REFERENCE_COLOR, alpha=0.45)
    ax.stairs(candidate, edges, color=CANDIDATE_COLOR, linewidth=1.5)
    ax.set_title(_label(column))
    ax.set_ylabel("density")
    return _svg(figure, key, f"distribution of {column}")


def _categories_chart(column: str, data: Mapping[str, Any], key: str) -> str:
    """Share of each level side by side; with many levels, the ones whose share changed most."""
    levels = [str(level) for level in data.get("levels") or []]
    reference, candidate = _floats(data.get("reference")), _floats(data.get("candidate"))
    if not levels or len(reference) != len(levels) or len(candidate) != len(levels):
        return '<p class="note">category data malformed</p>'
    shown = np.arange(len(levels))
    if len(levels) > MAX_LEVELS:
        change = np.nan_to_num(np.abs(candidate - reference), nan=np.inf)
        shown = np.sort(np.argsort(-change, kind="stable")[:MAX_LEVELS])
    figure = _figure(3.4, 2.4)
    ax = figure.add_subplot()
    positions = np.arange(len(shown))
    ax.bar(positions - 0.2, reference[shown], width=0.4, color=REFERENCE_COLOR)
    ax.bar(positions + 0.2, candidate[shown], width=0.4, color=CANDIDATE_COLOR)
    ax.set_xticks(positions, [_label(levels[i], 14) for i in shown], rotation=60 if len(shown) > 5 else 0,
                  ha="right" if len(shown) > 5 else "center")
    title = column if len(shown) == len(levels) else f"{column} ({len(shown)} of {len(levels)} levels)"
    ax.set_title(_label(title, MAX_LABEL + 20))
    ax.set_ylabel("share")
    return _svg(figure, key, f"level shares of {column}")


def _correlation_chart(columns: list[str], difference: list[list[Any]], pairs: set[tuple[str, ...]]) -> str:
    """Heat map of candidate minus reference correlation on a fixed -1..1 scale; flagged pairs framed."""
    matrix = np.array([_floats(row) for row in difference], dtype=float)
    n = len(columns)
    if matrix.shape != (n, n):
        return '<p class="note">correlation data malformed</p>'
    side = float(np.clip(0.32 * n + 2.5, 4.0, 11.0))
    figure = _figure(side + 1.0, side)
    ax = figure.add_subplot()
    cmap = matplotlib.colormaps["RdBu_r"].with_extremes(bad="#dddddd")
    edges = np.arange(n + 1) - 0.5  # cell (i, j) centred on (j, i), as a matrix is read
    mesh = ax.pcolormesh(edges, edges, np.ma.masked_invalid(matrix), cmap=cmap, vmin=-1.0, vmax=1.0)  # vector cells
    ax.set_aspect("equal")
    ax.invert_yaxis()
    labels = [_label(column, 20) for column in columns]
    ax.set_xticks(range(n), labels, rotation=90)
    ax.set_yticks(range(n), labels)
    ax.spines[:].set_visible(False)
    if n <= ANNOTATE_CELLS:
        for i, j in np.ndindex(n, n):
            if np.isfinite(matrix[i, j]) and i != j:
                ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=6,
                        color="white" if abs(matrix[i, j]) > 0.6 else "black")
    index = {column: i for i, column in enumerate(columns)}
    for pair in sorted(pairs):
        if pair[0] in index and pair[1] in index:
            for i, j in ((index[pair[0]], index[pair[1]]), (index[pair[1]], index[pair[0]])):
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="black", linewidth=1.5))
    colorbar = figure.colorbar(mesh, ax=ax, shrink=0.8, label="correlation difference")
    colorbar.solids.set_rasterized(False)  # matplotlib rasterises long colour bars into a PNG otherwise
    return _svg(figure, "correlation", "correlation difference heat map")


def _pca_chart(spectrum: Mapping[str, Any]) -> str:
    """Variance along each principal component, both sides (log scale when all positive)."""
    reference, candidate = _floats(spectrum.get("reference")), _floats(spectrum.get("candidate"))
    figure = _figure(5.0, 2.8)
    ax = figure.add_subplot()
    for values, color in ((reference, REFERENCE_COLOR), (candidate, CANDIDATE_COLOR)):
        ax.plot(np.arange(1, len(values) + 1), values, marker="o", markersize=3, color=color)
    if np.all(np.concatenate([reference, candidate]) > 0):
        _log_scale(ax, "y")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("principal component")
    ax.set_ylabel("explained variance")
    return _svg(figure, "pca", "PCA spectrum")


def _spectrum_chart(column: str, data: Mapping[str, Any], key: str) -> str:
    """Power spectrum of one ordered column, both sides, log-log over the positive frequencies."""
    frequencies = _floats(data.get("frequencies"))
    reference, candidate = _floats(data.get("reference")), _floats(data.get("candidate"))
    if not len(frequencies) or len(reference) != len(frequencies) or len(candidate) != len(frequencies):
        return '<p class="note">spectrum data malformed</p>'
    keep = frequencies > 0
    if not np.isfinite(np.concatenate([reference[keep], candidate[keep]])).any():
        return '<p class="note">no spectrum: the series is shorter than one segment</p>'
    figure = _figure(3.4, 2.2, SMALL_CHART_MARGINS)
    ax = figure.add_subplot()
    ax.plot(frequencies[keep], reference[keep], color=REFERENCE_COLOR, linewidth=1.5)
    ax.plot(frequencies[keep], candidate[keep], color=CANDIDATE_COLOR, linewidth=1)
    positive = np.concatenate([reference[keep], candidate[keep]])
    _log_scale(ax, "x")
    if positive.size and np.all(positive[np.isfinite(positive)] > 0):
        _log_scale(ax, "y")
    ax.set_title(_label(column))
    ax.set_xlabel("frequency (cycles per row)")
    ax.set_ylabel("power")
    return _svg(figure, key, f"power spectrum of {column}")


def _log_scale(ax: Any, which: str) -> None:
    """Log scale with plain tick labels ("0.01"): readable, and no mathtext to typeset (a third of the time)."""
    getattr(ax, f"set_{which}scale")("log")
    axis = getattr(ax, f"{which}axis")
    axis.set_major_formatter(_PlainLogFormatter())
    axis.set_minor_formatter(_PlainLogFormatter(labelOnlyBase=False))


class _PlainLogFormatter(LogFormatter):
    """matplotlib's choice of which log ticks to label, written plainly ("0.003", not "3e-03")."""

    def __call__(self, x: float, pos: int | None = None) -> str:
        return f"{x:g}" if super().__call__(x, pos) else ""


# inches around the axes of the small per-column charts: a title, an axis label each way, ticks of ~7 characters
SMALL_CHART_MARGINS = {"left": 0.85, "right": 0.15, "bottom": 0.6, "top": 0.3}


def _figure(width: float, height: float, margins: Mapping[str, float] | None = None) -> Figure:
    """A figure outside pyplot (no GUI backend, no global figure list).

    Laid out by constraint, unless `margins` (inches) place the axes: the many small charts of one
    known shape skip constrained layout's search, half of the page's rendering time.
    """
    if margins is None:
        return Figure(figsize=(width, height), layout="constrained")
    figure = Figure(figsize=(width, height))
    figure.subplots_adjust(left=margins["left"] / width, right=1 - margins["right"] / width,
                           bottom=margins["bottom"] / height, top=1 - margins["top"] / height)
    return figure


def _svg(figure: Figure, key: str, description: str) -> str:
    """The figure as inline SVG markup: ids salted by `key` (unique in the page), no date, no comments."""
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": f"dmas-{key}"}):
        figure.savefig(buffer, format="svg", metadata=_SVG_METADATA)
    markup = buffer.getvalue()
    markup = re.sub(r"<!--.*?-->", "", markup[markup.index("<svg"):], flags=re.DOTALL)
    return f'<svg role="img" aria-label="{_esc(description)}" ' + markup[len("<svg "):]


# --- small helpers ------------------------------------------------------------------------------------------------


def _all_dimensions(report: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    memorization = report.get("memorization")
    return [*(report.get("dimensions") or []), *([memorization] if memorization else [])]


def _flagged_columns(flags: Iterable[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Each column named by a flag (in flag order, most important first) -> the statistics flagged on it."""
    found: dict[str, list[str]] = {}
    for flag in flags:
        statistic = str((flag.get("evidence") or {}).get("statistic") or flag.get("dimension"))
        for column in flag.get("columns") or []:
            names = found.setdefault(str(column), [])
            if statistic not in names:
                names.append(statistic)
    return found


def _verdict_text(report: Mapping[str, Any]) -> str:
    found = [name for key, name in (("collapse_detected", "collapse"), ("drift_detected", "drift")) if report.get(key)]
    return " and ".join(found).capitalize() + " detected" if found else "No collapse, no drift"


def _threshold_text(judged: Mapping[str, Any]) -> str:
    """When a statistic becomes a finding, in the reader's terms ("> 0.12", "outside [0.8, 1.2]")."""
    upper, lower, direction = judged.get("threshold"), judged.get("lower_threshold"), judged.get("direction")
    if direction == "two_sided" and lower is not None:
        return f"outside [{_fmt(lower)}, {_fmt(upper)}]"
    if upper is None:
        return "-"
    return f"{'<' if direction == 'lower' else '>'} {_fmt(upper)}"


def _compact(evidence: Mapping[str, Any], limit: int = 160) -> str:
    """A statistic's evidence on one line: "key=value; ..." (truncated)."""
    text = "; ".join(f"{key}={_fmt_any(evidence[key])}" for key in sorted(evidence))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _data_html(value: Any, depth: int = 0) -> str:
    """Small nested JSON data (schema, calibration, inputs) as nested tables; everything escaped."""
    if isinstance(value, Mapping) and value and depth < 4:
        rows = [f'<tr><td class="key">{_esc(key)}</td><td>{_data_html(value[key], depth + 1)}</td></tr>'
                for key in sorted(value, key=str)]
        return "<table>" + "".join(rows) + "</table>"
    if isinstance(value, list) and any(isinstance(item, Mapping | list) for item in value) and depth < 4:
        return "<ol>" + "".join(f"<li>{_data_html(item, depth + 1)}</li>" for item in value) + "</ol>"
    return _esc(_fmt_any(value))


def _has_content(value: Any) -> bool:
    """False for data that says nothing (empty mappings and lists, nulls): the section says so instead."""
    if isinstance(value, Mapping):
        return any(_has_content(item) for item in value.values())
    if isinstance(value, list):
        return bool(value)
    return value is not None and value != ""


def _row(cells: list[Any], cell: str = "td") -> str:
    """A table row of plain-text cells (escaped here); a (text, css class) pair sets the cell's class."""
    parts = [f'<{cell} class="{c[1]}">{_esc(c[0])}</{cell}>' if isinstance(c, tuple) else f"<{cell}>{_esc(c)}</{cell}>"
             for c in cells]
    return "<tr>" + "".join(parts) + "</tr>"


def _legend() -> str:
    return (f'<span style="color:{REFERENCE_COLOR}">&#9632; reference</span> '
            f'<span style="color:{CANDIDATE_COLOR}">&#9632; candidate</span>.')


def _fmt(value: Any) -> str:
    """A value as plain text for a cell: numbers to 4 significant digits, "-" for missing (NaN is null)."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def _fmt_any(value: Any, limit: int = 400) -> str:
    """Any JSON value as plain text: scalars as `_fmt`, lists of scalars joined, the rest as JSON."""
    if value is None or isinstance(value, str | bool | int | float):
        return _fmt(value)
    if isinstance(value, list) and all(item is None or isinstance(item, str | int | float) for item in value):
        text = ", ".join(_fmt_any(item) for item in value)
    else:
        text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _label(text: str, limit: int = MAX_LABEL) -> str:
    """User text for a chart: shortened, and `$` kept literal (matplotlib would read it as math)."""
    text = str(text) if len(str(text)) <= limit else str(text)[: limit - 1] + "…"
    return text.replace("$", r"\$")


def _float(value: Any) -> float:
    return math.nan if value is None else float(value)


def _floats(values: Any) -> np.ndarray:
    """A JSON list of numbers (null = NaN) as float64; an empty array for anything else."""
    if not isinstance(values, list | tuple):
        return np.zeros(0)
    return np.array([_float(v) if isinstance(v, int | float) or v is None else math.nan for v in values], dtype=float)
