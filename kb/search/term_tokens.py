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

What a text gives for a term does not depend on the query it came with, so each text keeps it (:class:`TextTerms`,
remembered for the last :data:`TEXT_CACHE_SIZE` texts): per term the blocks holding a candidate and the phrases
found whole, and the tokens of each block asked for. A warm snippet then costs a dict look-up per query term and
one filter per block holding a candidate, not a ``str.find`` per term and occurrence, a bisection per occurrence
and a look-up of every block under the shared memory's lock (``bench/results/peer-shared-s11.md``). Grouping a
block's tokens by term as well was no faster and made the cycle collector's full passes longer (dicts and lists
of thousands of texts), so what is kept is tuples of atoms, which the collector stops tracking.

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

#: Texts whose :class:`TextTerms` are remembered (the readable forms of the best chunks and the top hits' coverage
#: texts: a few hundred characters each, with the terms asked for them so far).
TEXT_CACHE_SIZE = 4096

#: Terms one :class:`TextTerms` keeps before it starts again (a query has tens of terms, expansions included).
TERMS_PER_TEXT = 512

#: What a text gives for a term it does not hold (one shared value, not a new pair per term and text).
_NOTHING: tuple[tuple[TermSpan, ...], tuple[tuple[int, int], ...]] = ((), ())

#: Terms whose search plan (:func:`_plan`) is remembered (a query has tens of terms, expansions included).
PLAN_CACHE_SIZE = 4096

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
        blocks: ``(lo, hi)`` offsets of ``norm`` of each block holding a candidate -> the terms of its candidates
            (a term once per occurrence; each true token of a term lies in one of these blocks), in the order the
            terms were searched for.
    """

    norm: str
    origin: Sequence[int]
    definite: list[TermSpan]
    blocks: dict[tuple[int, int], list[str]]


class TextTerms:
    """What one text gives for query terms, filled as terms are asked for (module docstring). Thread-safe: every
    value is computed from the text and the analyzer alone, so two threads computing one give equal values.

    Args:
        text: any text; offsets given are into it.
        analyzer: the index analyzer (normalised form, offsets, tokens).
    """

    __slots__ = ("_by_term", "_tokens", "cuts", "norm", "origin")

    def __init__(self, text: str, analyzer: TextAnalyzer) -> None:
        self.norm, self.origin = analyzer.normalize_with_offsets(text)
        #: Offsets of the separators of ``norm``, ascending.
        self.cuts = tuple(m.start() for m in _SEPARATOR.finditer(self.norm))
        #: term -> (its phrase spans found whole, the ``(lo, hi)`` blocks of its candidates, one per occurrence).
        self._by_term: dict[str, tuple[tuple[TermSpan, ...], tuple[tuple[int, int], ...]]] = {}
        #: block -> its tokens, offsets in the block (once it was asked for).
        self._tokens: dict[tuple[int, int], BlockTokens] = {}

    def term(self, term: str) -> tuple[tuple[TermSpan, ...], tuple[tuple[int, int], ...]]:
        """A (non-empty) term's phrase spans found whole and the blocks of its other candidates (an occurrence that
        touches a letter or digit where the term has one is none), in the order of their occurrences."""
        found = self._by_term.get(term)
        if found is not None:
            return found
        norm, origin, cuts = self.norm, self.origin, self.cuts
        size, ncuts = len(norm), len(cuts)
        definite: list[TermSpan] = []
        blocks: list[tuple[int, int]] = []
        alnum_start, alnum_end, needles = _plan(term)
        for needle, whole in needles:
            n = len(needle)
            pos = norm.find(needle)
            while pos >= 0:
                end = pos + n
                if not (alnum_start and pos > 0 and norm[pos - 1] in _ALNUM) and not (
                    alnum_end and end < size and norm[end] in _ALNUM
                ):
                    if whole:  # a dictionary phrase with spaces: the analyzer emits it whole
                        definite.append((term, origin[pos], origin[end - 1] + 1))
                    else:
                        i = bisect.bisect_left(cuts, pos)
                        j = bisect.bisect_left(cuts, end, i)
                        blocks.append((cuts[i - 1] + 1 if i > 0 else 0, cuts[j] if j < ncuts else size))
                pos = norm.find(needle, pos + 1)
        found = (tuple(definite), tuple(blocks)) if definite or blocks else _NOTHING  # most terms: not in the text
        if len(self._by_term) >= TERMS_PER_TEXT:
            self._by_term.clear()
        self._by_term[term] = found
        return found

    def candidates(self, terms: Iterable[str]) -> Candidates:
        """The :class:`Candidates` of ``terms``, terms in the order given."""
        definite: list[TermSpan] = []
        blocks: dict[tuple[int, int], list[str]] = {}
        for term in terms:
            if not term:
                continue
            whole, keys = self.term(term)
            if whole:
                definite.extend(whole)
            for key in keys:
                held = blocks.get(key)
                if held is None:
                    blocks[key] = [term]
                else:
                    held.append(term)
        return Candidates(self.norm, self.origin, definite, blocks)

    def term_spans(
        self, blocks: Sequence[tuple[int, int]], terms: set[str], analyzer: TextAnalyzer, stored: StoredBlocks | None
    ) -> list[TermSpan]:
        """The tokens of ``blocks`` whose term is in ``terms``, as :data:`TermSpan` in offsets of the text."""
        spans: list[TermSpan] = []
        origin = self.origin
        for (lo, _), tokens in zip(blocks, self.tokens(blocks, analyzer, stored, True), strict=True):
            if tokens is not None:
                spans += [(t, origin[lo + s], origin[lo + e - 1] + 1) for t, s, e in tokens if t in terms]
        return spans

    def tokens(
        self, blocks: Sequence[tuple[int, int]], analyzer: TextAnalyzer, stored: StoredBlocks | None, tokenise: bool
    ) -> list[BlockTokens | None]:
        """Each block's tokens (offsets in the block), kept by the text once asked for (no look-up of the blocks
        remembered by all texts, nor its lock); None for a block neither remembered nor stored when not
        ``tokenise``."""
        kept = self._tokens
        views: list[BlockTokens | None] = [kept.get(key) for key in blocks]
        wanted = [i for i, view in enumerate(views) if view is None]
        if wanted:
            norm = self.norm
            found = _tokens_of(analyzer, [norm[blocks[i][0] : blocks[i][1]] for i in wanted], stored, tokenise)
            for i, tokens in zip(wanted, found, strict=True):
                if tokens is not None:
                    kept[blocks[i]] = views[i] = tokens
        return views


def text_terms(text: str, analyzer: TextAnalyzer) -> TextTerms:
    """The :class:`TextTerms` of ``text`` (remembered for the last :data:`TEXT_CACHE_SIZE` texts)."""
    return _text_terms(analyzer, text)


@functools.lru_cache(maxsize=TEXT_CACHE_SIZE)
def _text_terms(analyzer: TextAnalyzer, text: str) -> TextTerms:
    return TextTerms(text, analyzer)


def candidates(text: str, terms: Iterable[str], analyzer: TextAnalyzer) -> Candidates:
    """The :class:`Candidates` of ``terms`` (normalised, as the analyzer's tokens hold them) in ``text``."""
    return text_terms(text, analyzer).candidates(terms)


def term_tokens(
    text: str, terms: set[str], analyzer: TextAnalyzer, stored: StoredBlocks | None = None
) -> list[TermSpan]:
    """Every token of ``text`` whose term is in ``terms``, as :data:`TermSpan`, unordered, possibly overlapping
    (module docstring); blocks not remembered are read from ``stored`` when it holds them."""
    if not terms or not text:
        return []
    index = text_terms(text, analyzer)
    found = index.candidates(terms)
    spans = list(found.definite)
    if found.blocks:
        spans += index.term_spans(list(found.blocks), terms, analyzer, stored)
    return spans


def held_terms(text: str, terms: set[str], analyzer: TextAnalyzer, stored: StoredBlocks | None = None) -> set[str]:
    """The terms of ``terms`` that are tokens of ``text``: ``terms & set(analyzer.terms(text))``, without
    tokenising ``text`` whole, and no block tokenised whose candidates' terms were all found already (blocks read
    from ``stored`` when it holds them)."""
    if not terms or not text:
        return set()
    index = text_terms(text, analyzer)
    found = index.candidates(terms)
    held = {term for term, _, _ in found.definite}
    if not found.blocks:
        return held
    keys = list(found.blocks)
    for key, tokens in zip(keys, index.tokens(keys, analyzer, stored, tokenise=False), strict=True):
        if any(term not in held for term in found.blocks[key]):
            if tokens is None:
                (tokens,) = index.tokens([key], analyzer, None, tokenise=True)
                assert tokens is not None  # tokenised
            held.update(t for t, _, _ in tokens if t in terms)
    return held


def text_blocks(text: str, analyzer: TextAnalyzer) -> list[str]:
    """The normalised blocks of ``text`` that hold a letter or digit, in order (repeats kept): the strings whose
    tokens :func:`term_tokens` may need for it (:class:`Candidates`, ``norm[lo:hi]`` of each block)."""
    return [piece for piece in _SEPARATOR.split(analyzer.normalize(text)) if _WORD.search(piece)]


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


def _tokens_of(
    analyzer: TextAnalyzer, blocks: Sequence[str], stored: StoredBlocks | None, tokenise: bool
) -> list[BlockTokens | None]:
    """The tokens of each of ``blocks`` (normalised), in order: remembered ones under one lock, the others read from
    ``stored`` in one look-up (and remembered), and those still missing tokenised (and remembered), or None for
    them when not ``tokenise``."""
    found: list[BlockTokens | None] = []
    missing: list[str] = []
    with _remembered_lock:
        remembered = _remembered
        for block in blocks:
            key = (analyzer, block)
            tokens = remembered.get(key)
            if tokens is None:
                missing.append(block)
            else:
                remembered.move_to_end(key)  # now the most recently used
            found.append(tokens)
    if not missing:
        return found
    recalled = stored(list(dict.fromkeys(missing))) if stored is not None else {}
    if recalled:
        _remember(analyzer, recalled)
    for i, block in enumerate(blocks):
        if found[i] is None:
            tokens = recalled.get(block)
            if tokens is None and tokenise:
                tokens = _block_tokens(analyzer, block)
            found[i] = tokens
    return found


def _remember(analyzer: TextAnalyzer, tokens: Mapping[str, BlockTokens]) -> None:
    with _remembered_lock:
        for block, found in tokens.items():
            _remembered[(analyzer, block)] = found
        while len(_remembered) > BLOCK_CACHE_SIZE:
            _remembered.popitem(last=False)


@functools.lru_cache(maxsize=PLAN_CACHE_SIZE)
def _plan(term: str) -> tuple[bool, bool, tuple[tuple[str, bool], ...]]:
    """How :func:`candidates` looks for a (non-empty) term: whether it starts and ends with a letter or digit
    (then an occurrence must not touch another one there), and the strings it stands for in normalised text with,
    for each, whether an occurrence is a token without tokenising: itself, and for an identifier term that puts
    ``_`` between words (``active_directory`` for ``Active Directory``, a dictionary phrase with spaces) the same
    with spaces, which the analyzer emits whole."""
    stripped = term.strip("_")
    if "_" in stripped:
        return term[0] in _ALNUM, term[-1] in _ALNUM, ((term, False), (term.replace("_", " "), True))
    return term[0] in _ALNUM, term[-1] in _ALNUM, ((term, False),)
