"""Desk synonyms: the words users say for a symptom (口语) mapped to the words articles use (术语).

"VPN 连不上" shares no keyword with an article titled "无法连接 VPN"; a rule ``连不上 => 无法连接`` adds the
article's words to the query's BM25 terms, weighted at :data:`DESK_WEIGHT` of the user's own words (the
weighting of :mod:`kb.search.synonyms`: expansions must not outweigh own words). Rules are one-way (a formal
query needs no colloquial words: articles do not hold them) and come from two places:

- the curated list ``kb/data/desk_synonyms.txt`` (:func:`read_rules`; its header gives its source);
- rules mined from the KB's own titles and headings (:func:`mine_rules`): every ``无法V`` / ``不能V`` / ``未能V``
  there (V two Chinese characters, e.g. 无法删除) gives the Mandarin verb-complement forms a user says instead
  (删不掉, 删不了, 删除不了, ...) => ``无法V``. Mined forms that no query ever holds cost nothing.

A rule fires when one of its colloquial forms is a substring of the normalised query; a term the query already
has keeps its own weight.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from kb.config import DATA_DIR
from kb.search.text import TextAnalyzer

logger = logging.getLogger(__name__)

BUNDLED_DESK_SYNONYMS = DATA_DIR / "desk_synonyms.txt"

#: Weight of a desk-synonym term relative to the user's own terms (1.0) when they are on (setting
#: ``KB_DESK_SYNONYM_WEIGHT``, default 0 = off): measured on desk-dev (bench/results/colloquial-session5.md).
DESK_WEIGHT = 0.3

#: Formal "cannot V" phrases mined from titles and headings: negation + a two-character verb.
FORMAL_CANNOT = re.compile(r"(?:无法|不能|未能)([\u4e00-\u9fff]{2})")
#: Resultative complements of the colloquial "V不C" form (连不上, 删不掉, 打不开, 进不去 ...).
COMPLEMENTS = ("不上", "不了", "不掉", "不开", "不进", "不到", "不动")


@dataclass(frozen=True)
class Rule:
    """Colloquial ``forms`` (substrings of a normalised query) => ``formal`` phrases (their terms are added)."""

    forms: tuple[str, ...]
    formal: tuple[str, ...]


def read_rules(path: Path) -> list[Rule]:
    """Rules from a text file: ``form, form => term, term`` a line; ``#`` starts a comment line.

    Raises:
        ValueError: a non-comment line has no ``=>`` or an empty side (the line number is named).
    """
    rules = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        left, sep, right = line.partition("=>")
        forms = tuple(t.strip() for t in re.split(r"[,，]", left) if t.strip())
        formal = tuple(t.strip() for t in re.split(r"[,，]", right) if t.strip())
        if not sep or not forms or not formal:
            raise ValueError(f"{path}:{number}: expected `form, form => term, term`")
        rules.append(Rule(forms, formal))
    return rules


def mine_rules(texts: Iterable[str], analyzer: TextAnalyzer) -> list[Rule]:
    """``无法V`` rules from titles and headings (see module docstring), one per distinct V, sorted by V."""
    verbs = sorted({m.group(1) for text in texts for m in FORMAL_CANNOT.finditer(analyzer.normalize(text))})
    rules = []
    for verb in verbs:
        forms = tuple(dict.fromkeys([verb[0] + c for c in COMPLEMENTS] + [verb + "不了", verb + "不上"]))
        rules.append(Rule(forms, (f"无法{verb}", verb)))
    return rules


class DeskSynonyms:
    """Compiled rules: finds colloquial forms in a normalised query and gives the formal terms to add.

    Args:
        rules: curated and mined rules.
        analyzer: the analyzer of the index (forms are normalised with it, formal phrases cut into its terms).
    """

    def __init__(self, rules: Iterable[Rule], analyzer: TextAnalyzer) -> None:
        self._rules: list[tuple[tuple[str, ...], tuple[str, ...]]] = []
        for rule in rules:
            forms = tuple(f for f in (analyzer.normalize(x) for x in rule.forms) if f)
            terms = tuple(dict.fromkeys(t for phrase in rule.formal for t in analyzer.terms(phrase)))
            if forms and terms:
                self._rules.append((forms, terms))

    def __len__(self) -> int:
        return len(self._rules)

    def expand(
        self, normalized_query: str, own_terms: Mapping[str, float], weight: float = DESK_WEIGHT
    ) -> dict[str, float]:
        """The formal terms of every rule with a form in ``normalized_query``, at ``weight``, leaving out
        ``own_terms`` (they keep their weight); in rule order."""
        extra: dict[str, float] = {}
        for forms, terms in self._rules:
            if any(f in normalized_query for f in forms):
                for term in terms:
                    if term not in own_terms:
                        extra.setdefault(term, weight)
        return extra


class DeskSynonymSource:
    """The curated rules plus those mined from the current titles and headings. Thread-safe.

    Mining reads every title and heading (2.3 s on the 7.7k-chunk desk-dev KB while the machine was loaded), so
    it never runs in a query: when a query sees a new index ``version`` (:class:`kb.search.bm25.BM25Index`), a
    background thread mines again and the query goes on with the rules it has (the curated ones until the first
    mining ends). A failed mining is logged and leaves the rules as they were.

    Args:
        analyzer: the index's analyzer.
        headings: returns every article title and heading of the KB; None: curated rules only.
        curated: the curated list file (default: the bundled ``kb/data/desk_synonyms.txt``).
    """

    def __init__(
        self,
        analyzer: TextAnalyzer,
        headings: Callable[[], Iterable[str]] | None,
        curated: Path = BUNDLED_DESK_SYNONYMS,
    ) -> None:
        self.analyzer = analyzer
        self._headings = headings
        self._curated = read_rules(curated)
        self._lock = threading.Lock()
        self._version: int | None = None
        self._mining: threading.Thread | None = None
        self._compiled = DeskSynonyms(self._curated, analyzer)

    def at(self, version: int) -> DeskSynonyms:
        """The rules to use now; starts mining in the background when ``version`` is new."""
        with self._lock:
            if self._headings is not None and version != self._version and self._mining is None:
                self._version = version
                self._mining = threading.Thread(target=self._mine, name="desk-synonyms", daemon=True)
                self._mining.start()
            return self._compiled

    def wait(self, timeout_s: float | None = None) -> None:
        """Wait for a mining in progress to end (tests, benchmarks)."""
        thread = self._mining
        if thread is not None:
            thread.join(timeout_s)

    def _mine(self) -> None:
        compiled: DeskSynonyms | None = None
        try:
            assert self._headings is not None
            compiled = DeskSynonyms([*self._curated, *mine_rules(self._headings(), self.analyzer)], self.analyzer)
        except Exception:
            logger.exception("mining desk synonyms failed; keeping the rules there were")
        with self._lock:
            if compiled is not None:
                self._compiled = compiled
            self._mining = None
