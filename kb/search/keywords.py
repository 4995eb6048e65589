"""Which query terms the BM25 leg searches, and with what weight.

A query identifier (``3.6.3``, ``0x80070005``, ``kube-proxy``) is analysed to the whole identifier and its
alphanumeric parts (``3``, ``6``). The parts exist for recall, when the index does not hold the identifier as
written; searched beside it, they make every chunk holding a ``3`` or a ``6`` a keyword candidate and let
those flood the leg. So the whole identifier dominates: when the index holds it, its parts are dropped (unless
the user also typed them as words of their own); when it does not, the parts stand in for it.
"""

from __future__ import annotations

from collections.abc import Callable

from kb.search.text import ALNUM_PART, QueryAnalysis


def keyword_terms(analysis: QueryAnalysis, known: Callable[[str], bool]) -> tuple[str, ...]:
    """The BM25 terms of ``analysis`` (see module docstring), in query order.

    Args:
        analysis: the analysed query.
        known: whether the index holds a term (e.g. its document frequency is above 0).
    """
    if not analysis.parts:
        return analysis.terms
    parts = set(analysis.parts)
    dropped: set[str] = set()
    needed: set[str] = set()  # parts of an identifier the index does not hold stay, as its stand-in
    for ident in analysis.identifiers:
        (dropped if known(ident) else needed).update(p for p in ALNUM_PART.findall(ident) if p in parts)
    dropped -= needed
    return tuple(t for t in analysis.terms if t not in dropped)
