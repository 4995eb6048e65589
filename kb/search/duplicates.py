"""One passage copied into several articles becomes one result that lists every article holding it.

Two best chunks are the same passage when their texts, white space removed and lower-cased, are equal, or, for
chunks of at least :data:`DUPLICATE_MIN_CHARS` characters, when the Jaccard similarity of their character
4-gram sets is at least :data:`DUPLICATE_JACCARD`. The better-ranked article stays as the result; the others
are folded into it (listed in its ``duplicates``) and leave the list. A short chunk (a heading, one line) is
folded only when identical, never on a near match: it says too little to call two articles near-copies.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

DUPLICATE_JACCARD = 0.9
DUPLICATE_MIN_CHARS = 40


@dataclass
class Collapsed(Generic[T]):
    """A kept item and the items folded into it (same passage, ranked below it), best first."""

    item: T
    duplicates: list[T]


def compact(text: str) -> str:
    """``text`` without white space, lower-cased: the form compared for identity."""
    return "".join(text.split()).lower()


def shingles(text: str, size: int = 4) -> set[str]:
    """Character ``size``-grams of :func:`compact` ``text`` (one gram for shorter text; empty for no text)."""
    flat = compact(text)
    return {flat[i : i + size] for i in range(max(1, len(flat) - size + 1))} if flat else set()


def collapse(items: Sequence[T], texts: Sequence[str | None], keep: int) -> tuple[list[Collapsed[T]], int]:
    """Fold items whose passage repeats a better one's (see module docstring), until ``keep`` are kept.

    Args:
        items: ranked items, best first.
        texts: each item's passage text (None: unknown, never a duplicate), same length as ``items``.
        keep: stop once this many items are kept.

    Returns:
        ``(kept, examined)``: the kept items with what was folded into each, and how many of ``items`` were
        looked at (the rest follow unexamined).
    """
    kept: list[Collapsed[T]] = []
    seen: list[tuple[str, frozenset[str]]] = []
    examined = 0
    for item, text in zip(items, texts, strict=True):
        if len(kept) == keep:
            break
        examined += 1
        flat = compact(text) if text else ""
        grams = _grams(flat) if len(flat) >= DUPLICATE_MIN_CHARS else frozenset()
        match = next((i for i, (f, g) in enumerate(seen) if _same(flat, grams, f, g)), None)
        if match is not None:
            kept[match].duplicates.append(item)
            continue
        kept.append(Collapsed(item, []))
        seen.append((flat, grams))
    return kept, examined


@functools.lru_cache(maxsize=4096)
def _grams(flat: str) -> frozenset[str]:
    """:func:`shingles` of compacted text, remembered: the best chunks of one query recur in the next."""
    return frozenset(shingles(flat))


def _same(flat: str, grams: frozenset[str], other_flat: str, other_grams: frozenset[str]) -> bool:
    if flat and flat == other_flat:
        return True
    if not (grams and other_grams):
        return False
    small, large = sorted((len(grams), len(other_grams)))
    if small < DUPLICATE_JACCARD * large:  # Jaccard <= small / large: too far apart in size to reach the bar
        return False
    common = len(grams & other_grams)
    return common >= DUPLICATE_JACCARD * (len(grams) + len(other_grams) - common)
