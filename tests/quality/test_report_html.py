"""The HTML collapse report: self-contained, escaped, byte-stable, and it renders in a real browser."""

from __future__ import annotations

import fcntl
import json
import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dmas.quality.report import HTML_NAME, JSON_NAME, TIMINGS_NAME, report_json, write_report
from dmas.quality.report_html import render_html

HOSTILE = "<script>alert(1)</script>"
CHROMIUM = Path("/usr/bin/chromium")
SVG_NAMESPACES = {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}


def _judged(statistic: str, columns: list[str], value: float, ideal: float, direction: str, threshold: float,
            quantile: float, excess: float, finding: str = "collapse", lower: float | None = None,
            **evidence: Any) -> dict[str, Any]:
    """One entry of a dimension's evidence, in the shape `Judged.as_dict` gives."""
    return {"statistic": statistic, "columns": columns, "value": value, "ideal": ideal, "direction": direction,
            "finding": finding, "null_center": ideal, "threshold": threshold, "lower_threshold": lower,
            "null_quantile": quantile, "excess": excess, "flagged": excess >= 1.0, "evidence": evidence}


def _dimension(name: str, number: int, title: str, evidence: list[dict[str, Any]], details: dict[str, Any],
               notes: list[str] | None = None) -> dict[str, Any]:
    worst = max((j["excess"] for j in evidence), default=0.0)
    return {"name": name, "number": number, "title": title, "score": round(100 * max(0.0, 1 - worst / 2), 2),
            "threshold": 50.0, "passed": worst < 1.0, "notes": notes or [], "evidence": evidence, "details": details}


def _density(values: np.ndarray, edges: np.ndarray) -> list[float]:
    return [round(float(v), 6) for v in np.histogram(values, edges, density=True)[0]]


def _report(odd: str = HOSTILE) -> dict[str, Any]:
    """A report dict of the documented shape: 4 numeric columns (one named `odd`), 2 categorical, 1 ordered.

    The candidate lost variance on `income`, broke the (income, `odd`) correlation and shifted
    `bimodal` (drift); `age` is clean, so the flagged columns must come before it in the page.
    """
    rng = np.random.default_rng(7)
    reference = {"age": rng.normal(40, 10, 4000), "income": rng.lognormal(10, 0.5, 4000),
                 odd: rng.exponential(2.0, 4000), "bimodal": np.r_[rng.normal(-2, 0.5, 2000), rng.normal(2, 0.5, 2000)]}
    candidate = {"age": rng.normal(40, 10, 4000), "income": rng.lognormal(10, 0.35, 4000),
                 odd: rng.exponential(2.0, 4000), "bimodal": reference["bimodal"] + 1.0}
    histograms = {}
    for column, values in reference.items():
        edges = np.quantile(np.r_[values, candidate[column]], np.linspace(0, 1, 31))
        histograms[column] = {"edges": [round(float(e), 6) for e in edges], "reference": _density(values, edges),
                              "candidate": _density(candidate[column], edges)}
    levels = [f"city_{i:02d}" for i in range(36)]
    shares = 1.0 / np.arange(1, 37) / np.sum(1.0 / np.arange(1, 37))
    dropped = np.where(np.arange(36) < 30, shares, 0.0) / shares[:30].sum()
    categories = {"city": {"levels": levels, "reference": [round(float(s), 6) for s in shares],
                           "candidate": [round(float(s), 6) for s in dropped]},
                  "smoker": {"levels": ["no", "yes"], "reference": [0.8, 0.2], "candidate": [0.79, 0.21]}}
    columns = ["age", "bimodal", "income", odd]
    difference = [[0.0, 0.02, -0.01, None], [0.02, 0.0, 0.05, 0.0], [-0.01, 0.05, 0.0, -0.62],
                  [None, 0.0, -0.62, 0.0]]
    frequencies = np.linspace(0, 0.5, 65)
    power = 1.0 / (1.0 + (frequencies / 0.05) ** 2)
    variance = rng.uniform(0.5, 1.0, 4)
    var_income = _judged("variance_ratio", ["income"], 0.71, 1.0, "lower", 0.93, 1.0, 3.6,
                         reference_std=0.52, candidate_std=0.36)
    corr_pair = _judged("pearson_difference", ["income", odd], -0.62, 0.0, "two_sided", 0.08, 1.0, 7.75, lower=-0.08,
                        reference=0.64, candidate=0.02)
    shift = _judged("standardised_mean_shift", ["bimodal"], 0.49, 0.0, "two_sided", 0.05, 1.0, 9.8, finding="drift",
                    lower=-0.05, reference_mean=0.0, candidate_mean=1.0)
    dimensions = [
        _dimension("distribution_fidelity", 1, "Distribution fidelity", [
            shift, var_income, _judged("ks", ["age"], 0.012, 0.0, "higher", 0.031, 0.62, 0.39),
            _judged("category_coverage", ["city"], 0.83, 1.0, "lower", 0.97, 1.0, 5.0, missing_levels=6)],
            {"histograms": histograms, "categories": categories}),
        _dimension("correlation_preservation", 2, "Correlation preservation", [corr_pair],
                   {"columns": columns, "reference": difference, "candidate": difference, "difference": difference}),
        _dimension("entropy_stability", 3, "Entropy stability",
                   [_judged("pca_spectrum_ratio", [], 0.97, 1.0, "lower", 0.9, 0.4, 0.3)],
                   {"pca_spectrum": {"reference": sorted((variance / variance.sum()).round(6).tolist(), reverse=True),
                                     "candidate": [0.5, 0.3, 0.15, 0.05]},
                    "entropy": {"age": {"reference": 2.1, "candidate": 2.09}}}),
        _dimension("gradient_health", 4, "Gradient health",
                   [_judged("gradient_norm_ratio", ["layer_0"], 1.02, 1.0, "two_sided", 1.3, 0.5, 0.1, lower=0.7)], {},
                   notes=[f"no target column: used a self-supervised task predicting {odd} from the others"]),
        _dimension("loss_landscape", 5, "Loss landscape", [], {}),
        _dimension("spectral_coherence", 6, "Spectral coherence",
                   [_judged("spectral_distance", ["signal"], 0.01, 0.0, "higher", 0.04, 0.3, 0.25)],
                   {"spectra": {"signal": {"frequencies": frequencies.round(6).tolist(),
                                           "reference": power.round(6).tolist(),
                                           "candidate": (power * 0.9).round(6).tolist()}}}),
        _dimension("generalization_gap", 7, "Generalization gap",
                   [_judged("classifier_auc", [], 0.61, 0.5, "two_sided", 0.53, 1.0, 3.6, lower=0.47)], {}),
        _dimension("statistical_consistency", 8, "Statistical consistency", [], {}),
    ]
    memorization = _dimension("memorization", 0, "Memorization",
                              [_judged("exact_copy_rate", [], 0.0, 0.0, "higher", 0.001, 0.5, 0.0)], {})
    def flag(dimension: str, judged: dict[str, Any]) -> dict[str, Any]:
        return {"dimension": dimension, "finding": judged["finding"], "columns": judged["columns"],
                "evidence": judged, "null_quantile": judged["null_quantile"]}

    flags = [flag("distribution_fidelity", var_income), flag("distribution_fidelity", shift),
             flag("correlation_preservation", corr_pair)]
    return {"report_version": 1, "collapse_detected": True, "drift_detected": True, "overall_score": 31.6,
            "flags": flags, "dimensions": dimensions, "memorization": memorization,
            "calibration": {"null_draws": 30, "false_positive_rate": 0.01, "seed": 0, "statistics": 9,
                            "per_statistic_rate": 0.00111, "reference_rows": 4000, "candidate_rows": 4000,
                            "method": "bootstrap null draws"},
            "inputs": {"candidate": {"source": f"{odd}.csv", "rows": 4000}, "reference": {"source": "ref.csv"}},
            "schema": {"matches": False, "compared": columns + ["city", "smoker"], "missing": [],
                       "extra": [odd + "_extra"],
                       "retyped": {"zip": {"reference": "numeric", "candidate": "categorical"}}}}


def _figures_expected(report: dict[str, Any]) -> int:
    """Charts the page must draw: scores, one per histogram/category/spectrum, heat map, PCA spectrum."""
    details = {d["name"]: d["details"] for d in report["dimensions"]}
    distribution = details["distribution_fidelity"]
    return (1 + len(distribution["histograms"]) + len(distribution["categories"]) + 1 + 1
            + len(details["spectral_coherence"]["spectra"]))


@pytest.fixture(scope="module")
def page() -> str:
    """The page of `_report()`, rendered once for the tests that only read it."""
    return render_html(_report())


def test_page_is_self_contained_and_shows_the_verdicts_and_flags_first(page):
    assert "<script" not in page and "<link" not in page and "@import" not in page
    assert "<img" not in page and "<image" not in page  # every chart is vector SVG, no embedded raster
    assert set(re.findall(r"https?://[^\s\"'<>)]+", page)) <= SVG_NAMESPACES  # XML namespaces, never fetched
    assert set(re.findall(r"url\(([^)]*)\)", page)) <= {f"#{i}" for i in re.findall(r'id="([^"]+)"', page)}
    assert "Collapse detected" in page and "Drift detected" in page and "31.6" in page
    assert page.index('id="flags"') < page.index('id="scores"') < page.index('id="distributions"')
    assert page.count("<svg") == _figures_expected(_report())
    flags_table = page[page.index('id="flags"'):page.index('id="scores"')]
    assert "variance_ratio" in flags_table and "&lt; 0.93" in flags_table and "outside [-0.08, 0.08]" in flags_table
    # flagged columns first, although "age" sorts before them
    captions = re.findall(r"<figcaption><b>([^<]*)</b>", page)
    assert captions.index("income") < captions.index("bimodal") < captions.index("age")
    assert "<b>income</b> flagged: variance_ratio, pearson_difference</figcaption>" in page
    assert "(30 of 36 levels)" in page  # the levels whose share changed most, not the first ones
    schema = page[page.index('id="schema"'):page.index('id="calibration"')]
    assert "<td>zip</td><td>numeric</td><td>categorical</td>" in schema and "_extra" in schema


def test_hostile_column_name_is_escaped_everywhere():
    odd = "<script>alert(1)</script> --> $x$ \"q\" 'a' &amp;"
    page = render_html(_report(odd))
    assert "<script" not in page and "alert(1)</script>" not in page
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 5  # flags, captions, notes, schema, charts
    assert "$x$" in page  # drawn literally, not as matplotlib mathtext
    assert "<!--" not in page  # no comment an injected "-->" could end early


def test_same_report_gives_the_same_bytes_in_another_process_and_after_a_json_round_trip(page):
    report = _report()
    assert render_html(report) == page
    assert render_html(json.loads(report_json(report))) == page  # mapping order does not matter
    code = ("import json, sys; from dmas.quality.report_html import render_html; "
            "sys.stdout.write(render_html(json.loads(sys.stdin.read())))")
    other = subprocess.run([sys.executable, "-c", code], input=report_json(report), capture_output=True, text=True,
                           check=True, cwd=Path(__file__).parents[2]).stdout
    assert other == page


def test_report_without_pictures_or_findings_still_renders():
    report = _report()
    for dimension in [*report["dimensions"], report["memorization"]]:
        dimension["details"], dimension["evidence"], dimension["passed"] = {}, [], True
    report.update(flags=[], collapse_detected=False, drift_detected=False, schema={}, inputs={})
    page = render_html(report)
    assert "<svg" in page and page.count("<svg") == 1  # the scores chart only
    assert "No collapse" in page and "No drift" in page and "No findings" in page
    assert "No per-column distributions" in page and "No schema comparison" in page
    assert "No dimension results" in render_html({})  # an empty dict: every section says what is missing


def test_write_report_writes_three_files_atomically(tmp_path):
    report, timings = _report(), {"total_s": 1.25, "calibration_s": 0.5, "cached_nulls": []}
    json_path, html_path = write_report(report, timings, tmp_path / "out")
    assert (json_path.name, html_path.name) == (JSON_NAME, HTML_NAME)
    assert json_path.read_text() == json.dumps(report, sort_keys=True, indent=2, allow_nan=False) + "\n"
    assert html_path.read_text() == render_html(json.loads(json_path.read_text()))
    assert json.loads((tmp_path / "out" / TIMINGS_NAME).read_text()) == timings
    assert "total_s" not in json_path.read_text()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted([JSON_NAME, HTML_NAME, TIMINGS_NAME])
    broken = {**report, "overall_score": float("nan")}
    with pytest.raises(ValueError):
        write_report(broken, timings, tmp_path / "broken")
    assert list((tmp_path / "broken").iterdir()) == []  # nothing half-written


@pytest.mark.skipif(not CHROMIUM.exists(), reason="the browser check needs Debian's chromium at /usr/bin/chromium "
                                                  "(apt-get install chromium; .ci/run installs it)")
def test_report_renders_in_headless_chromium(tmp_path, page):
    report = _report()
    path = tmp_path / "collapse_report.html"
    path.write_text(page)
    with _Chromium(tmp_path / "profile") as browser:
        measured = browser.open(path.as_uri())
    assert measured["title"].startswith("Collapse and drift detected")
    assert measured["scripts"] == 0
    assert HOSTILE in measured["text"]  # shown as text, not run
    svgs = measured["svgs"]
    assert len(svgs) == _figures_expected(report)
    for svg in svgs:
        assert svg["width"] > 50 and svg["height"] > 50 and svg["paths"] > 0, svg
    assert browser.errors == []
    assert browser.requests == [path.as_uri()]  # the page alone: no fonts, scripts or images fetched


@pytest.mark.skipif(not CHROMIUM.exists(), reason="the browser check needs Debian's chromium at /usr/bin/chromium")
def test_browser_check_sees_errors_and_fetches(tmp_path):
    """The harness itself: a page that fetches and logs an error must not pass the checks above."""
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><html><body><img src="http://example.invalid/x.png">'
                    '<script>console.error("broken")</script></body></html>')
    with _Chromium(tmp_path / "profile") as browser:
        measured = browser.open(page.as_uri())
    assert measured["scripts"] == 1 and measured["svgs"] == []
    assert any("broken" in error for error in browser.errors)
    assert any("example.invalid" in error for error in browser.errors)  # the failed fetch is logged
    assert "http://example.invalid/x.png" in browser.requests


class _Chromium:
    """Headless Chromium driven over the DevTools protocol on pipes (--remote-debugging-pipe): no extra package.

    Network goes to a dead proxy, so anything the page tried to fetch would fail and be logged as an error.
    """

    TIMEOUT_S = 60.0
    MEASURE = """JSON.stringify({
        title: document.title, scripts: document.querySelectorAll("script").length, text: document.body.innerText,
        svgs: [...document.querySelectorAll("svg")].map(s => { const box = s.getBoundingClientRect();
            return {width: box.width, height: box.height, paths: s.querySelectorAll("path").length}; })})"""

    def __init__(self, profile: Path) -> None:
        self.profile = profile
        self.errors: list[str] = []
        self.requests: list[str] = []
        self._buffer = b""
        self._next_id = 0
        self._loaded = False
        self._deadline = time.monotonic() + self.TIMEOUT_S

    def __enter__(self) -> _Chromium:
        to_browser, self._commands = os.pipe()
        self._replies, from_browser = os.pipe()
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_browser, from_browser)]

        def pipes_on_3_and_4() -> None:
            os.dup2(high[0], 3)
            os.dup2(high[1], 4)

        self._process = subprocess.Popen(
            [str(CHROMIUM), "--headless=new", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
             f"--user-data-dir={self.profile}", "--proxy-server=127.0.0.1:9", "--no-first-run",
             "--no-default-browser-check", "--disable-extensions", "--disable-background-networking",
             "--window-size=1280,1600", "about:blank"],
            preexec_fn=pipes_on_3_and_4, pass_fds=(3, 4, *high), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for fd in (to_browser, from_browser, *high):
            os.close(fd)
        return self

    def __exit__(self, *_: object) -> None:
        try:
            self._send("Browser.close")
        except (OSError, EOFError, TimeoutError):
            pass
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        os.close(self._commands)
        os.close(self._replies)

    def open(self, url: str) -> dict[str, Any]:
        """Load `url`, wait for its load event, and return what MEASURE reads from the rendered page."""
        target = self._send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self._send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self._send(f"{domain}.enable", session=session)
        self._send("Page.navigate", {"url": url}, session=session)
        while not self._loaded:
            self._handle(self._receive())
        result = self._send("Runtime.evaluate", {"expression": self.MEASURE, "returnByValue": True}, session=session)
        return json.loads(result["result"]["value"])

    def _send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._receive()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self._handle(reply)

    def _receive(self) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = self._deadline - time.monotonic()
            if left <= 0 or not select.select([self._replies], [], [], left)[0]:
                raise TimeoutError(f"chromium did not answer within {self.TIMEOUT_S} s")
            chunk = os.read(self._replies, 1 << 16)
            if not chunk:
                raise EOFError("chromium closed the DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def _handle(self, event: dict[str, Any]) -> None:
        """Record console errors, uncaught exceptions, logged errors and every request the page made."""
        method, params = event.get("method"), event.get("params", {})
        if method == "Page.loadEventFired":
            self._loaded = True
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert", "warning"):
            self.errors.append(f"console.{params['type']}: {params.get('args')}")
        elif method == "Runtime.exceptionThrown":
            self.errors.append(f"exception: {params.get('exceptionDetails')}")
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") in ("error", "warning"):
            self.errors.append(f"log: {params['entry'].get('text')} ({params['entry'].get('url')})")
        elif method == "Network.requestWillBeSent":
            self.requests.append(params.get("request", {}).get("url"))
