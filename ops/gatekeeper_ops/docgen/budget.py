"""How big the hand-written docs may grow: short pages are read, long ones skimmed past. A page a
tool writes (GENERATED) is outside the budget; everything else under docs/ and the README is in."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

README_LIMIT = 20_000
PAGE_LIMIT = 15_000
TOTAL_LIMIT = 110_000
GENERATED = frozenset({"docs/cli-reference.md", "docs/operator-guide.md"})


@dataclass(frozen=True)
class PageSize:
    path: str
    size: int
    limit: int

    @property
    def over(self) -> bool:
        return self.size > self.limit


def hand_written(root: Path = Path()) -> list[PageSize]:
    pages = [PageSize("README.md", (root / "README.md").stat().st_size, README_LIMIT)]
    for page in sorted((root / "docs").glob("*.md")):
        path = page.relative_to(root).as_posix()
        if path not in GENERATED:
            pages.append(PageSize(path, page.stat().st_size, PAGE_LIMIT))
    return pages


def problems(root: Path = Path()) -> list[str]:
    """What is over budget, each as a line that says by how much; empty when all is within."""
    pages = hand_written(root)
    found = [
        f"{p.path}: {p.size:,} bytes, over its {p.limit:,}-byte budget by {p.size - p.limit:,}"
        for p in pages
        if p.over
    ]
    total = sum(p.size for p in pages)
    if total > TOTAL_LIMIT:
        found.append(
            f"hand-written docs: {total:,} bytes in all, over the {TOTAL_LIMIT:,}-byte budget "
            f"by {total - TOTAL_LIMIT:,}"
        )
    return found


def table(root: Path = Path()) -> str:
    pages = hand_written(root)
    rows = [f"{p.path:<28} {p.size:>8,} / {p.limit:,}" for p in pages]
    rows.append(f"{'total':<28} {sum(p.size for p in pages):>8,} / {TOTAL_LIMIT:,}")
    return "\n".join(rows)
