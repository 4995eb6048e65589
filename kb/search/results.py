"""What a search is asked and what it answers: :class:`SearchRequest`, :class:`SearchResult` of
:class:`SearchHit`, an article's :class:`LegScore` in each leg, and the explanation asked for with ``explain``
(:class:`Explain` for the answer, :class:`HitExplain` per hit).

The JSON of a result is ``dataclasses.asdict`` of it (FastAPI serialises the same fields); every field keeps the
name and place it has in the API's JSON.

Shared by the engine (:mod:`kb.search.engine`), the why-not debugger (:mod:`kb.search.why`), the API, the CLI and
the desk, so none of them needs the engine's module for its types.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, NotRequired, cast

# typing.TypedDict before Python 3.12 lacks what pydantic (the API's response model) needs to read it.
from typing_extensions import TypedDict

from kb.articles.filters import ArticleFilter
from kb.config import MAX_QUERY_CHARS
from kb.errors import InvalidInputError, QueryTooLongError

Mode = Literal["hybrid", "bm25", "vector"]
MODES: tuple[str, ...] = ("hybrid", "bm25", "vector")
#: Most articles one search returns.
MAX_LIMIT = 100


@dataclass(frozen=True)
class LegScore:
    """An article's place in one leg: 1-based rank among articles, and its best chunk's raw score.

    BM25 scores are BM25F (> 0, unbounded); vector scores are cosine in [-1, 1].
    """

    rank: int
    score: float
    normalized: float | None = None


class RankerHitExplain(TypedDict):
    """Why the second-stage ranker (:mod:`kb.search.rerank`) put a hit where it is: its ``score`` (unbounded,
    higher is better), its 0-based ``fused_position`` before reranking, its ``features`` (name -> value, see
    :mod:`kb.search.rerank.features`), each feature's additive ``contributions`` to the score (TreeSHAP; the
    ``expected`` key is the model's mean score) and ``desk_vote``, the resolved-ticket and helpful-vote signal
    in [0, 1] added to it (:mod:`kb.search.rerank.desk`)."""

    score: float
    fused_position: int
    features: dict[str, float]
    contributions: dict[str, float]
    desk_vote: float


class DeskHitExplain(TypedDict):
    """What the desk's resolved tickets added to a hit in the default hybrid ranking (:mod:`kb.search.rerank.boost`):
    its ``fused`` score (weighted fusion, in [0, 1]), its ``vote`` in [0, 1] (:mod:`kb.search.rerank.desk`), the
    ``boost`` added (weight x vote), the ``tickets`` that voted (``[ticket number, weight]``, heaviest first;
    only tickets the caller may see), ``first_by_vote``: the vote put this hit first (then it is never a
    confident answer), and ``model``: the embedding model that encoded the query and the tickets for the vote
    (the ticket model, ``KB_TICKET_EMBEDDING_MODEL``, else the KB's own)."""

    fused: float
    vote: float
    boost: float
    tickets: list[tuple[str, float]]
    first_by_vote: bool
    model: str


class HitExplain(TypedDict):
    """Why one hit ranks where it does: its :class:`LegScore` in each leg that found it (a key only for those legs;
    ``normalized`` is its share of the leg's score range in weighted fusion, in [0, 1], None otherwise), and
    ``chunk``, the ``ord`` (0-based) of its best chunk, the one the snippet shows.

    A TypedDict, not a dataclass, so that a leg that did not find the article is absent from the JSON, as it
    always was, rather than ``null``.
    """

    bm25: NotRequired[LegScore]
    vector: NotRequired[LegScore]
    chunk: int
    ranker: NotRequired[RankerHitExplain]
    desk: NotRequired[DeskHitExplain]


def hit_explain(legs: Mapping[str, LegScore], chunk: int) -> HitExplain:
    """The :class:`HitExplain` of an article found by ``legs`` (leg name -> its place there; names ``bm25`` and
    ``vector`` only), legs first, in their order, then ``chunk``."""
    return cast(HitExplain, {**legs, "chunk": chunk})


@dataclass(frozen=True)
class ConfidenceSignals:
    """Is the top result a confident match (see :mod:`kb.search.confidence`)?

    ``coverage`` is the IDF-weighted share of the query's terms the top result holds, in [0, 1] (4 decimals; 0 with
    no result or no terms); ``cosine`` its best chunk's cosine to the query, in [-1, 1] (None: no result, or the
    vector leg did not find it). ``coverage_min`` and ``cosine_min`` are the model's calibrated bars (``cosine_min``
    is infinite, JSON ``null``, for a model never calibrated); ``confident`` is whether either bar is reached and,
    in the hybrid mode, ``score``, the top hit's score (weighted fusion score in [0, 1], or the second-stage
    ranker's), reaches ``score_min`` (both None where the score has no bar: other modes, RRF, uncalibrated).
    """

    coverage_min: float
    cosine_min: float
    confident: bool
    coverage: float
    cosine: float | None
    score_min: float | None = None
    score: float | None = None


@dataclass(frozen=True)
class LegWeights:
    """One number per leg: fusion weights (0 to 1, summing to 1) or score floors (BM25F score / cosine)."""

    bm25: float
    vector: float


@dataclass(frozen=True)
class RrfFusion:
    """Reciprocal rank fusion, ``sum 1 / (k + rank)`` with ``k`` = 60 (Cormack et al. 2009; :mod:`kb.search.fusion`)."""

    method: Literal["rrf"]
    k: int


@dataclass(frozen=True)
class WeightedFusion:
    """Weighted score fusion (:mod:`kb.search.fusion`): each leg's scores normalised into [0, 1] between the floor
    the engine gives it (``floors``: 0 for BM25F; for the vector leg the model's calibrated cosine of unrelated text,
    :attr:`kb.search.confidence.Thresholds.vector_floor`) and its best score, then summed with ``weights``.
    With query-dependent weights (:mod:`kb.search.weighting`), ``query_terms`` (the query's BM25 terms) and
    ``identifiers`` are what this query's weights were chosen from; ``query_terms`` is None for fixed weights."""

    method: Literal["weighted"]
    weights: LegWeights
    floors: LegWeights
    query_terms: int | None = None
    identifiers: bool = False


@dataclass(frozen=True)
class RankerInfo:
    """The second stage of a hybrid search (:mod:`kb.search.rerank`): the ``model`` file, how many fused
    candidates it reordered (``reranked``), the query-level features it saw (``query_features``: the inputs that
    make its use of the two legs query-dependent), and ``top_margin``, the top score minus the second (0 with
    one candidate)."""

    model: str
    reranked: int
    query_features: dict[str, float]
    top_margin: float


@dataclass(frozen=True)
class Explain:
    """What the engine did with a query (``explain=True``).

    The query analysis (:meth:`kb.search.text.TextAnalyzer.analyze_query`): ``normalized_query``; ``terms`` for the
    BM25 leg; ``identifiers`` found (error codes, versions, paths); ``expansions``, synonym terms added, each with its
    query weight relative to the user's own terms (1.0; see :data:`kb.search.synonyms.EXPANSION_WEIGHT`); quoted
    ``phrases`` as term lists. Then the ``confidence`` signals, the ``legs`` searched (``bm25``, ``vector``), the
    chunk ``candidates`` each leg returned in its last round, of articles the caller may see (count), the
    ``fusion`` used (``hybrid`` mode only) and the second-stage ``ranker`` (hybrid mode with a ranker only).
    """

    normalized_query: str
    terms: list[str]
    identifiers: list[str]
    expansions: dict[str, float]
    phrases: list[list[str]]
    confidence: ConfidenceSignals
    legs: list[str]
    candidates: dict[str, int]
    fusion: RrfFusion | WeightedFusion | None
    ranker: RankerInfo | None = None


@dataclass(frozen=True)
class DuplicateSource:
    """Another article whose best passage is the same text as its hit's (folded into that hit, see
    :mod:`kb.search.duplicates`)."""

    article_id: int
    title: str
    source_path: str | None


@dataclass
class SearchHit:
    """One article in a search answer. ``score`` in ``hybrid`` mode is the weighted fusion score in [0, 1]
    (or the RRF score, in (0, 2/61], with ``fusion="rrf"``); in ``bm25`` mode the BM25F score; in ``vector``
    mode the cosine in [-1, 1]. ``duplicates`` lists the other articles holding the same passage, folded into this
    hit (empty for most hits)."""

    article_id: int
    title: str
    source_path: str | None
    score: float
    snippet: str
    heading_path: list[str]
    version: int
    kind: str
    service: str | None
    status: str
    explain: HitExplain | None = None
    duplicates: list[DuplicateSource] = field(default_factory=list)


@dataclass
class SearchResult:
    """A search answer. ``no_keyword_terms`` is True when the query had nothing for the BM25 leg;
    ``low_confidence`` is True when there is no result or the best one is not a confident match
    (see :mod:`kb.search.confidence`)."""

    query: str
    mode: str
    took_ms: float
    results: list[SearchHit]
    no_keyword_terms: bool = False
    low_confidence: bool = True
    explain: Explain | None = field(default=None)


@dataclass(frozen=True)
class SearchRequest:
    """A search: ``query`` text, ``mode``, ``limit`` (1..100) articles, filters, and ``explain``."""

    query: str
    mode: str = "hybrid"
    limit: int = 10
    filters: ArticleFilter = field(default_factory=ArticleFilter)
    explain: bool = False
    fusion: str | None = None
    bm25_weight: float | None = None

    def validate(self) -> None:
        """Raises :class:`QueryTooLongError` or :class:`InvalidInputError` for out-of-range values."""
        if len(self.query.strip()) > MAX_QUERY_CHARS:
            raise QueryTooLongError(
                f"The query has {len(self.query.strip())} characters; at most {MAX_QUERY_CHARS} are allowed."
            )
        if self.mode not in MODES:
            raise InvalidInputError(f"mode must be one of {', '.join(MODES)}, not {self.mode!r}.")
        if not 1 <= self.limit <= MAX_LIMIT:
            raise InvalidInputError(f"limit must be between 1 and {MAX_LIMIT}.")
        if self.fusion not in (None, "weighted", "rrf"):
            raise InvalidInputError(f"fusion must be weighted or rrf, not {self.fusion!r}.")
        if self.bm25_weight is not None and not 0.0 <= self.bm25_weight <= 1.0:
            raise InvalidInputError("bm25_weight must be between 0 and 1.")
