"""Shared pieces of the HTML reports (analysis, comparison, drift): figures to PNG, HTML with them inline.

Every value that comes from data (column names, labels, versions) is escaped; only cells wrapped
in :class:`Html` by the report code itself pass as markup.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: never needs a display

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from efimero import tracking
from efimero._io import atomic_write_bytes, atomic_write_json, atomic_write_text

_STYLE = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;max-width:72rem;margin:2rem auto;
padding:0 1rem;color:#1c1f24;line-height:1.5}
h1{font-size:1.6rem;margin-bottom:.2rem} h2{margin-top:2.2rem;border-bottom:1px solid #dce0e6;padding-bottom:.3rem}
.meta{color:#5a6270} table{border-collapse:collapse;margin:1rem 0;font-size:.9rem}
th,td{border:1px solid #dce0e6;padding:.3rem .6rem;text-align:right} th:first-child,td:first-child{text-align:left}
th{background:#f2f4f7} img{max-width:100%;border:1px solid #eceff3;margin:.5rem 0}
.good{color:#1a7f37;font-weight:600} .bad{color:#c62828;font-weight:600} .neutral{color:#5a6270}
.verdict{font-size:1.2rem;padding:.8rem 1rem;border-radius:6px;background:#f2f4f7;display:inline-block}
"""


def save_figure(figure: Figure, path: Path) -> Path:
    """Write a figure as PNG atomically and close it; inside a tracking run, log it there too."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    atomic_write_bytes(path, buffer.getvalue())
    tracking.current().log_artifact(path, artifact_path=path.parent.name or None)
    return path


def image_tag(path: Path, alt: str) -> str:
    """An <img> with the PNG inlined, so the HTML report is one self-contained file."""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'


class Html(str):
    """Markup written by the report code itself, kept as it is in a table cell."""


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """An HTML table; every cell is escaped except :class:`Html` ones (a column named ``<b>`` stays text)."""
    def cell(value: Any) -> str:
        if isinstance(value, Html):
            return value
        return html.escape(f"{value:.4g}" if isinstance(value, float) else str(value))

    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def write_report(directory: Path, name: str, title: str, subtitle: str, sections: list[tuple[str, str]],
                 payload: dict[str, Any]) -> tuple[Path, Path]:
    """Write ``<name>.html`` (sections of HTML, images inline) and ``<name>.json``; log both into a tracking run."""
    body = "".join(f"<h2>{html.escape(heading)}</h2>{content}" for heading, content in sections)
    page = (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
            f"<p class='meta'>{html.escape(subtitle)}</p>{body}</body></html>")
    html_path, json_path = directory / f"{name}.html", directory / f"{name}.json"
    atomic_write_text(html_path, page)
    atomic_write_json(json_path, payload)
    for path in (html_path, json_path):
        tracking.current().log_artifact(path, artifact_path=directory.name or None)
    return html_path, json_path
