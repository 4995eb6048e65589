"""Where the query's terms are tokens of a text, without tokenising the whole text.

A term is a token of a text when the analyzer, tokenising the whole text, emits a token with that term. Each term
is first looked up as a substring of the text's normalised form (``str.find``; a term that starts or ends with a
letter or digit must not touch another one there, as jieba never cuts inside a run of them). Only the blocks
holding such a candidate (the run between white space and punctuation, where jieba and the identifier patterns
start afresh, so a block has the same tokens alone as in the whole text) are tokenised, and their tokens are
remembered per block (:data:`BLOCK_CACHE_SIZE`). A block not remembered is first looked up in the generation's
stored block tokens (:mod:`kb.search.block_store`, filled at index time), so a chunk's first sight runs no jieba.
A candidate that is not a token is not one (器 inside 服务器). A dictionary phrase term with spaces (``arp_cache``
for ``arp cache``) is taken whole where it occurs.

Used by the snippet highlighter (:mod:`kb.search.snippets`, its marks) and by the top hit's coverage
(:mod:`kb.search.confidence`, through :func:`held_terms`); ``tests/search/test_snippets_equivalence.py`` compares
both with tokenising whole chunks, on real articles and queries.
"""

from __future__ import annotations

import bisect
import functools
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from kb.search.text import TextAnalyzer

#: Normalised blocks whose tokens are remembered (a few per snippet, tens of characters each).
BLOCK_CACHE_SIZE = 32768

#: Normalised texts whose separator offsets are remembered.
SEPARATOR_CACHE_SIZE = 4096

# Where jieba starts a new block (it segments runs of [\u4e00-\u9fd5a-z0-9+#&._%-] on their own) that no
# identifier pattern crosses: white space and punctuation other than the . - _ : / \\ = of identifiers.
_SEPARATOR = re.compile(r"[\s,;!?()\[\]{}<>\"'|`~*^$@、。“”‘’《》【】「」…·]")

_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")

#: A term at ``(start, end)`` character offsets of the text.
TermSpan = tuple[str, int, int]

#: The analyzer's tokens of one normalised block: ``(term, start, end)``, offsets into the block.
BlockTokens = tuple[tuple[str, int, int], ...]

#: Where blocks' tokens may be stored already (:class:`kb.search.block_store.BlockStore`): given blocks, the tokens
#: of those it holds (in one look-up; a block it does not hold is tokenised).
StoredBlocks = Callable[[Sequence[str]], Mapping[str, BlockTokens]]

_WORD = re.compile(r"\w")


@dataclass(frozen=True)
class Candidates:
    """The substring candidates of the terms in one text.

    Attributes:
        norm: the normalised text; ``origin[i]`` is the offset in the text of ``norm[i]``.
        definite: phrase terms found whole (tokens without tokenising).
        blocks: ``(lo, hi)`` offsets of ``norm`` of each block holding a candidate -> its candidates as
            :data:`TermSpan` in offsets of the text (each true token of a term is one of them).
    """

    norm: str
    origin: Sequence[int]
    definite: list[TermSpan]
    blocks: dict[tuple[int, int], list[TermSpan]]

    def extent(self, block: tuple[int, int]) -> tuple[int, int]:
        """The block's ``(start, end)`` offsets in the text."""
        return self.origin[block[0]], self.origin[block[1] - 1] + 1

    def tokens(self, block: tuple[int, int], terms: set[str], analyzer: TextAnalyzer) -> list[TermSpan]:
        """The tokens of ``block`` whose term is in ``terms``, offsets in the text (the block tokenised, or its
        remembered tokens)."""
        lo, hi = block
        origin = self.origin
        found = _block_tokens(analyzer, self.norm[lo:hi])
        return [(t, origin[lo + s], origin[lo + e - 1] + 1) for t, s, e in found if t in terms]


def candidates(text: str, terms: set[str], analyzer: TextAnalyzer) -> Candidates:
    """The :class:`Candidates` of ``terms`` (normalised, as the analyzer's tokens hold them) in ``text``."""
    norm, origin = analyzer.normalize_with_offsets(text)
    size = len(norm)
    definite: list[TermSpan] = []
    blocks: dict[tuple[int, int], list[TermSpan]] = {}
    for term in terms:
        if not term:
            continue
        alnum_start, alnum_end = term[0] in _ALNUM, term[-1] in _ALNUM
        phrase = "_" in term.strip("_")
        for needle in _variants(term):
            pos = norm.find(needle)
            while pos >= 0:
                end = pos + len(needle)
                if not (alnum_start and pos > 0 and norm[pos - 1] in _ALNUM) and not (
                    alnum_end and end < size and norm[end] in _ALNUM
                ):
                    span = (term, origin[pos], origin[end - 1] + 1)
                    if phrase and needle != term:  # a dictionary phrase with spaces: the analyzer emits it whole
                        definite.append(span)
                    else:
                        blocks.setdefault(_block(norm, pos, end), []).append(span)
                pos = norm.find(needle, pos + 1)
    return Candidates(norm, origin, definite, blocks)


def term_tokens(
    text: str, terms: set[str], analyzer: TextAnalyzer, stored: StoredBlocks | None = None
) -> list[TermSpan]:
    """Every token of ``text`` whose term is in ``terms``, as :data:`TermSpan`, unordered, possibly overlapping
    (module docstring); blocks not remembered are read from ``stored`` when it holds them."""
    if not terms or not text:
        return []
    found = candidates(text, terms, analyzer)
    _recall(analyzer, [found.norm[lo:hi] for lo, hi in found.blocks], stored)
    spans = list(found.definite)
    for block in found.blocks:
        spans.extend(found.tokens(block, terms, analyzer))
    return spans


def held_terms(text: str, terms: set[str], analyzer: TextAnalyzer, stored: StoredBlocks | None = None) -> set[str]:
    """The terms of ``terms`` that are tokens of ``text``: ``terms & set(analyzer.terms(text))``, without
    tokenising ``text`` whole, and no block tokenised whose candidates' terms were all found already (blocks read
    from ``stored`` when it holds them)."""
    if not terms or not text:
        return set()
    found = candidates(text, terms, analyzer)
    _recall(analyzer, [found.norm[lo:hi] for lo, hi in found.blocks], stored)
    held = {term for term, _, _ in found.definite}
    for block, spans in found.blocks.items():
        if any(term not in held for term, _, _ in spans):
            held.update(term for term, _, _ in found.tokens(block, terms, analyzer))
    return held


def text_blocks(text: str, analyzer: TextAnalyzer) -> list[str]:
    """The normalised blocks of ``text`` that hold a letter or digit, in order (repeats kept): the strings whose
    tokens :func:`term_tokens` may need for it (:class:`Candidates`, ``norm[lo:hi]`` of each block)."""
    return [piece for piece in _SEPARATOR.split(analyzer.normalize(text)) if _WORD.search(piece)]


def _block(norm: str, start: int, end: int) -> tuple[int, int]:
    """The block of ``norm`` around ``norm[start:end]``: the run between separators (white space, and
    punctuation jieba and the identifier patterns both cut at), whose tokens are those of the whole text."""
    cuts = _separators(norm)
    i = bisect.bisect_left(cuts, start)
    lo = cuts[i - 1] + 1 if i > 0 else 0
    j = bisect.bisect_left(cuts, end, i)
    return lo, cuts[j] if j < len(cuts) else len(norm)


@functools.lru_cache(maxsize=SEPARATOR_CACHE_SIZE)
def _separators(norm: str) -> tuple[int, ...]:
    """Offsets of the separators of a normalised text, ascending."""
    return tuple(m.start() for m in _SEPARATOR.finditer(norm))


#: Least recently used first (an OrderedDict: moving and evicting are O(1); deleting from the front of a plain dict
#: leaves slots that every later ``next(iter(...))`` walks over).
_remembered: OrderedDict[tuple[TextAnalyzer, str], BlockTokens] = OrderedDict()
_remembered_lock = threading.Lock()


def _block_tokens(analyzer: TextAnalyzer, block: str) -> BlockTokens:
    """``(term, start, end)`` of the analyzer's tokens of one normalised block (offsets into it): remembered for
    the last :data:`BLOCK_CACHE_SIZE` blocks used, else the block tokenised (and remembered)."""
    key = (analyzer, block)
    with _remembered_lock:
        found = _remembered.get(key)
        if found is not None:
            _remembered.move_to_end(key)  # now the most recently used
            return found
    found = tuple((t.text, t.start, t.end) for t in analyzer.tokens(block, remember=False))
    _remember(analyzer, {block: found})
    return found


def _recall(analyzer: TextAnalyzer, blocks: Iterable[str], stored: StoredBlocks | None) -> None:
    """Remember the ``stored`` tokens of those of ``blocks`` not remembered (one look-up for all of them)."""
    if stored is None:
        return
    with _remembered_lock:
        missing = [b for b in dict.fromkeys(blocks) if (analyzer, b) not in _remembered]
    if missing:
        _remember(analyzer, stored(missing))


def _remember(analyzer: TextAnalyzer, tokens: Mapping[str, BlockTokens]) -> None:
    with _remembered_lock:
        for block, found in tokens.items():
            _remembered[(analyzer, block)] = found
        while len(_remembered) > BLOCK_CACHE_SIZE:
            _remembered.popitem(last=False)


@functools.lru_cache(maxsize=4096)
def _variants(term: str) -> tuple[str, ...]:
    """The strings a term stands for in normalised text: itself, and with spaces for the ``_`` an identifier
    term puts between words (``active_directory`` for ``Active Directory``)."""
    stripped = term.strip("_")
    if "_" in stripped:
        return (term, term.replace("_", " "))
    return (term,)
