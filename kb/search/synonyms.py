"""Synonyms and abbreviations of the IT field, for query expansion.

Groups of equivalent terms (``VPN, 虚拟专用网``) live in the database (seeded from ``kb/data/synonyms.txt``,
editable through the API and the CLI). A query that contains one member of a group is expanded with the
other members' terms at :data:`EXPANSION_WEIGHT` of the weight of the user's own terms, at query time only, so
the index never changes when synonyms do (case BL-15).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select

from kb.config import DATA_DIR
from kb.db import Database
from kb.errors import InvalidInputError, NotFoundError
from kb.identity.names import BUNDLED_ACTOR
from kb.models import SynonymGroup, utcnow
from kb.search.text import TextAnalyzer

BUNDLED_SYNONYMS = DATA_DIR / "synonyms.txt"

#: Weight of an expanded term relative to the user's own terms (1.0). On tidb-faq-dev (BM25 leg) 0.5 / 0.3 / 0.2
#: gave nDCG@10 0.755 / 0.759 / 0.762 with the first bundled list: expansions must not outweigh own words.
EXPANSION_WEIGHT = 0.3


@dataclass(frozen=True)
class Group:
    """A stored synonym group."""

    id: int
    terms: list[str]


def read_synonym_file(path: Path) -> list[list[str]]:
    """Groups from a text file: one comma-separated group a line; ``#`` starts a comment line."""
    groups = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            terms = [t.strip() for t in re.split(r"[,，]", line) if t.strip()]
            if len(terms) >= 2:
                groups.append(terms)
    return groups


class SynonymStore:
    """Synonym groups in the database, with a compiled expander cached until the next change."""

    def __init__(self, database: Database, analyzer: TextAnalyzer) -> None:
        self.database = database
        self.analyzer = analyzer
        self._lock = threading.Lock()
        self._expander: Expander | None = None

    def seed(self) -> None:
        """Load the bundled groups when the table is empty (first start)."""
        with self.database.session() as session:
            if session.scalar(select(func.count()).select_from(SynonymGroup)):
                return
            for terms in read_synonym_file(BUNDLED_SYNONYMS):
                session.add(SynonymGroup(terms=terms, updated_by=BUNDLED_ACTOR, updated_at=utcnow()))
        self._expander = None

    def groups(self) -> list[Group]:
        """All groups, by id."""
        with self.database.session() as session:
            return [Group(g.id, list(g.terms)) for g in session.scalars(select(SynonymGroup).order_by(SynonymGroup.id))]

    def add(self, terms: list[str], actor: str) -> Group:
        """Store a new group.

        Raises:
            InvalidInputError: fewer than two distinct non-blank terms.
        """
        clean = list(dict.fromkeys(t.strip() for t in terms if t and t.strip()))
        if len(clean) < 2:
            raise InvalidInputError("a synonym group needs at least two different terms")
        with self.database.session() as session:
            group = SynonymGroup(terms=clean, updated_by=actor, updated_at=utcnow())
            session.add(group)
            session.flush()
            result = Group(group.id, clean)
        self._expander = None
        return result

    def remove(self, group_id: int, actor: str) -> None:
        """Delete a group; ``actor`` is recorded as who did (the audit row, :mod:`kb.identity.observer`).

        Raises:
            NotFoundError: no such group.
        """
        with self.database.session() as session:
            group = session.get(SynonymGroup, group_id)
            if group is None:
                raise NotFoundError(f"Synonym group {group_id} does not exist.")
            group.updated_by = actor
            session.delete(group)
        self._expander = None

    def expander(self) -> Expander:
        """The expander for the current groups (rebuilt after a change)."""
        with self._lock:
            if self._expander is None:
                self._expander = Expander([g.terms for g in self.groups()], self.analyzer)
            return self._expander


class Expander:
    """Finds synonym-group members in a normalised query and returns the other members' terms."""

    def __init__(self, groups: list[list[str]], analyzer: TextAnalyzer) -> None:
        self._members: list[tuple[re.Pattern[str], int]] = []
        self._group_terms: list[list[str]] = []
        for index, group in enumerate(groups):
            normalised = [analyzer.normalize(t) for t in group]
            self._group_terms.append([term for t in group for term in analyzer.terms(t)])
            for member in normalised:
                # ASCII members match as whole words; Chinese ones as substrings.
                pattern = rf"(?<![a-z0-9]){re.escape(member)}(?![a-z0-9])" if member.isascii() else re.escape(member)
                self._members.append((re.compile(pattern), index))

    def expand(self, normalized_query: str, own_terms: set[str]) -> list[str]:
        """Terms to add (not already among ``own_terms``), in a stable order."""
        hit_groups = sorted({index for pattern, index in self._members if pattern.search(normalized_query)})
        extra = [t for index in hit_groups for t in self._group_terms[index] if t not in own_terms]
        return list(dict.fromkeys(extra))
