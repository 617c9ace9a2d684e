"""Self-contained HTML reports: one file, plots embedded as PNG data URIs, no script, no
network -- it opens offline in any browser and can be mailed as it is.

    >>> r = HtmlReport("Verification on lfw-dev")
    >>> r.para("3,000 pairs, 5 folds.")
    >>> r.table(["metric", "value"], [["EER", "0.71 %"]])
    >>> r.figure(fig, "ROC")            # a matplotlib Figure (Agg), or a PNG path
    >>> r.write("eval-results/report.html")
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["HtmlReport", "fmt"]

_CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; background: #f7f8fa; color: #1f2933; }
main { max-width: 1080px; margin: 0 auto; padding: 24px 28px 60px; }
h1 { font-size: 1.6em; margin: 0.2em 0 0.1em; } h2 { font-size: 1.25em; margin-top: 1.8em; border-bottom: 1px solid #d9dee5; padding-bottom: 4px; }
.meta { color: #5f6b7a; font-size: 0.9em; }
table { border-collapse: collapse; margin: 10px 0 18px; background: #fff; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #d9dee5; padding: 4px 10px; text-align: right; } th { background: #eef1f5; }
td:first-child, th:first-child { text-align: left; }
figure { display: inline-block; margin: 8px 14px 14px 0; background: #fff; border: 1px solid #d9dee5; padding: 6px; }
figure img { display: block; max-width: 100%; } figcaption { color: #5f6b7a; font-size: 0.85em; margin-top: 4px; }
.note { background: #fff8e6; border-left: 4px solid #e0a800; padding: 6px 12px; }
.ok { color: #0a7d32; font-weight: 600; } .bad { color: #b42318; font-weight: 600; }
.thumbs img { width: 96px; height: 96px; object-fit: cover; margin: 2px; border: 1px solid #d9dee5; }
details pre { background: #fff; border: 1px solid #d9dee5; padding: 8px; overflow: auto; max-height: 400px; font-size: 12px; }
"""


def fmt(v: Any, digits: int = 4) -> str:
    """A number for a table: percentages stay as given, small rates in scientific form."""
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if v != v:
            return "—"
        if v != 0 and abs(v) < 10 ** -(digits - 1):
            return f"{v:.2e}"
        return f"{v:.{digits}f}"
    return str(v)


class HtmlReport:
    """Build a report section by section, then :meth:`write` it."""

    def __init__(self, title: str, *, subtitle: str = "") -> None:
        self.title = title
        self.parts: list[str] = []
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        self.parts.append(f"<h1>{html.escape(title)}</h1><p class='meta'>{html.escape(subtitle)}{' · ' if subtitle else ''}faceprint · {stamp}</p>")

    def heading(self, text: str) -> HtmlReport:
        self.parts.append(f"<h2>{html.escape(text)}</h2>")
        return self

    def para(self, text: str, *, cls: str = "") -> HtmlReport:
        self.parts.append(f"<p{f' class={cls!r}' if cls else ''}>{html.escape(text)}</p>")
        return self

    def note(self, text: str) -> HtmlReport:
        return self.para(text, cls="note")

    def table(self, columns: Sequence[str], rows: Sequence[Sequence[Any]], *, caption: str = "") -> HtmlReport:
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(fmt(v))}</td>" for v in row) + "</tr>" for row in rows)
        cap = f"<caption class='meta'>{html.escape(caption)}</caption>" if caption else ""
        self.parts.append(f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        return self

    def figure(self, fig_or_png: Any, caption: str = "") -> HtmlReport:
        """Embed a matplotlib Figure or a PNG file."""
        if isinstance(fig_or_png, (str, Path)):
            data = Path(fig_or_png).read_bytes()
        else:
            buf = io.BytesIO()
            fig_or_png.savefig(buf, format="png")
            data = buf.getvalue()
        src = "data:image/png;base64," + base64.b64encode(data).decode()
        self.parts.append(f"<figure><img src='{src}' alt='{html.escape(caption)}'><figcaption>{html.escape(caption)}</figcaption></figure>")
        return self

    def images(self, items: Sequence[tuple[bytes, str]], *, caption: str = "") -> HtmlReport:
        """A row of JPEG/PNG thumbnails (bytes, title)."""
        imgs = []
        for data, title in items:
            mime = "image/png" if data[:4] == b"\x89PNG" else "image/jpeg"
            imgs.append(f"<img src='data:{mime};base64,{base64.b64encode(data).decode()}' title='{html.escape(title)}' alt='{html.escape(title)}'>")
        self.parts.append(f"<div class='thumbs'>{''.join(imgs)}</div>" + (f"<p class='meta'>{html.escape(caption)}</p>" if caption else ""))
        return self

    def raw_json(self, data: Any, summary: str = "All figures as JSON") -> HtmlReport:
        text = json.dumps(data, indent=1, default=float)
        self.parts.append(f"<details><summary>{html.escape(summary)}</summary><pre>{html.escape(text)}</pre></details>")
        return self

    def render(self) -> str:
        return (
            "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{html.escape(self.title)}</title><style>{_CSS}</style></head><body><main>" + "\n".join(self.parts) + "</main></body></html>\n"
        )

    def write(self, path: str | Path) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(self.render(), encoding="utf-8")
        return p
