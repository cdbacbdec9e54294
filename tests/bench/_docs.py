"""The results block a benchmark keeps in ``docs/performance.md``, between its two marker comments."""

from __future__ import annotations

from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs" / "performance.md"


def write_results(report: str, *, begin: str, end: str, docs: Path = DOCS) -> None:
    """Replace what stands between ``begin`` and ``end`` with ``report`` (appending the markers if missing)."""
    text = docs.read_text(encoding="utf-8")
    block = f"{begin}\n{report}\n{end}"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    docs.write_text(text, encoding="utf-8")
