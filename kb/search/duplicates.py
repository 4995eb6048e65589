"""One passage copied into several articles becomes one result that lists every article holding it.

Two best chunks are the same passage when their texts, white space removed and lower-cased, are equal, or, for
chunks of at least :data:`DUPLICATE_MIN_CHARS` characters, when the Jaccard similarity of their character
4-gram sets is at least :data:`DUPLICATE_JACCARD`. The better-ranked article stays as the result; the others
are folded into it (listed in its ``duplicates``) and leave the list. A short chunk (a heading, one line) is
folded only when identical, never on a near match: it says too little to call two articles near-copies.

Each best chunk's compacted text and 4-gram set are remembered (the best chunks of one query recur in the next),
and a pair of 4-gram sets is compared by counting the grams of the smaller one missing from the other, stopping
as soon as so many are missing that the pair cannot reach the bar (most pairs of a page are far apart: a few
look-ups instead of a whole set intersection); the answer is the same as comparing the Jaccard similarity.
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
        flat, grams = _compacted(text) if text else ("", _NO_GRAMS)
        match = next((i for i, (f, g) in enumerate(seen) if _same(flat, grams, f, g)), None)
        if match is not None:
            kept[match].duplicates.append(item)
            continue
        kept.append(Collapsed(item, []))
        seen.append((flat, grams))
    return kept, examined


_NO_GRAMS: frozenset[str] = frozenset()

#: Texts whose compacted form and 4-gram set are remembered.
COMPACTED_CACHE_SIZE = 4096


@functools.lru_cache(maxsize=COMPACTED_CACHE_SIZE)
def _compacted(text: str) -> tuple[str, frozenset[str]]:
    """:func:`compact` ``text`` and its :func:`shingles` (empty when it is shorter than
    :data:`DUPLICATE_MIN_CHARS`), remembered: the best chunks of one query recur in the next."""
    flat = compact(text)
    return flat, frozenset(shingles(flat)) if len(flat) >= DUPLICATE_MIN_CHARS else _NO_GRAMS


def _same(flat: str, grams: frozenset[str], other_flat: str, other_grams: frozenset[str]) -> bool:
    """Whether two passages are the same (module docstring): equal compacted texts, or 4-gram sets whose Jaccard
    similarity ``common / (|a| + |b| - common)`` is at least :data:`DUPLICATE_JACCARD`."""
    if flat and flat == other_flat:
        return True
    if not (grams and other_grams):
        return False
    small, large = (grams, other_grams) if len(grams) <= len(other_grams) else (other_grams, grams)
    a, b = len(small), len(large)
    if a < DUPLICATE_JACCARD * b:  # Jaccard <= a / b: too far apart in size to reach the bar
        return False
    # With ``missing`` grams of ``small`` not in ``large``, common <= a - missing, and the bar
    # common >= J * (a + b - common) only gets harder as common falls: stop once a - missing cannot reach it.
    missing = 0
    for gram in small:
        if gram not in large:
            missing += 1
            if a - missing < DUPLICATE_JACCARD * (b + missing):
                return False
    common = a - missing
    return common >= DUPLICATE_JACCARD * (a + b - common)
