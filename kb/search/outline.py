"""Article "outline" vectors: one embedding per article of its title and every heading, blended into the vector leg.

The vector leg scores an article by its best chunk's cosine. An article whose topic is spread over sections (a
troubleshooting page: symptom, cause, fix) can lose to a short page whose one chunk happens to be close. The
outline (title + all headings in document order, each once, joined by `` / ``, cut at :data:`MAX_OUTLINE_CHARS`)
says what the whole article is about; the blended article score is

    score = (best_chunk_cosine + w * outline_cosine) / (1 + w)

(off in the engine by default, ``SearchEngine.outlines.weight = 0``: see "Measured" below), which keeps it on the
cosine scale (so the model's calibrated floors still read it) and orders articles like
``best + w * outline``. ``w`` = :data:`OUTLINE_WEIGHT` was chosen on desk-dev folds 0-2 offline (session 5,
``bench/article_vectors.py``: vector leg nDCG@10 0.466 -> 0.496 tuning, 0.530 -> 0.565 held out); whether it
helps the hybrid ranking is measured by ``bench/colloquial.py outline`` (bench/results/search-quality-ii.md).

An article with no heading has no outline vector: its outline would be its title alone, which every chunk's
embedding input already starts with (:func:`kb.articles.chunking.embedding_input`), so the blend would only add
a prior shared by every article of the same title. Measured: on tidb-faq-dev, whose documents are FAQ answers
without headings under 33 page titles, blending title-only outlines cost the vector leg 0.630 -> 0.569 and the
hybrid ranking 0.831 -> 0.824.

Measured (session 7, ``bench/colloquial.py``, hybrid nDCG@10, title-only outlines left out): desk-dev
0.794 -> 0.797, tuning folds 0-2 0.784 -> 0.783, held-out folds 3-4 0.809 -> 0.820, layman 0.511 -> 0.516;
tidb-faq-dev 0.831 -> 0.831. It does not gain on the folds it was tuned on, so it is not on by default.

Chunk candidates keep their order inside each article (one article's chunks all move by the same amount), so
the best chunk and its passage are unchanged; only articles' scores move.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np
from sqlalchemy import select

from kb.articles.chunks import ChunkKey, ChunkStore
from kb.models import Article, Chunk
from kb.search.embedders.base import Embedder

logger = logging.getLogger(__name__)

#: Longest outline text, characters (m3e-small reads ~1 token per Chinese character; 400 keeps it one short input).
MAX_OUTLINE_CHARS = 400
#: Weight of the outline cosine in the blend (module docstring).
OUTLINE_WEIGHT = 0.25


def outline_text(title: str, heading_paths: Iterable[Sequence[str]]) -> str:
    """``title / h1 / h2 ...``: the title, then every heading of ``heading_paths`` once, in first-seen order;
    ``""`` when there is no heading other than the title (see module docstring).

    Args:
        title: the article title.
        heading_paths: each chunk's heading path, in document order.
    """
    heads = dict.fromkeys(h.strip() for path in heading_paths for h in path if h and h.strip())
    heads.pop(title.strip(), None)
    if not heads:
        return ""
    return " / ".join([title.strip(), *heads])[:MAX_OUTLINE_CHARS]


class OutlineVectors:
    """The outline vector of each article, L2-normalised, ``(articles, dimension)`` float32.

    Args:
        outlines: ``{article id: outline text}`` (:func:`outline_text`); empty texts are left out.
        embedder: the index's embedding model (passage side).
    """

    def __init__(self, outlines: Mapping[int, str], embedder: Embedder) -> None:
        self.article_ids = sorted(aid for aid, text in outlines.items() if text)
        self._row = {aid: i for i, aid in enumerate(self.article_ids)}
        if self.article_ids:
            self.matrix = np.asarray(embedder.encode_passages([outlines[a] for a in self.article_ids]), np.float32)
        else:
            self.matrix = np.zeros((0, embedder.dimension), dtype=np.float32)

    @classmethod
    def from_vectors(cls, vectors: Mapping[int, np.ndarray]) -> OutlineVectors:
        """From already encoded ``{article id: (dimension,) vector}`` (:class:`OutlineSource`)."""
        table = cls.__new__(cls)
        table.article_ids = sorted(vectors)
        table._row = {aid: i for i, aid in enumerate(table.article_ids)}
        rows = [np.asarray(vectors[a], dtype=np.float32) for a in table.article_ids]
        table.matrix = np.stack(rows) if rows else np.zeros((0, 0), dtype=np.float32)
        return table

    def cosines(self, query_vector: np.ndarray, article_ids: Iterable[int]) -> dict[int, float]:
        """``{article id: cosine of its outline with query_vector}`` for the ids that have an outline.

        Args:
            query_vector: ``(dimension,)`` L2-normalised query embedding.
        """
        ids = [a for a in dict.fromkeys(article_ids) if a in self._row]
        if not ids:
            return {}
        sims = self.matrix[[self._row[a] for a in ids]] @ np.asarray(query_vector, dtype=np.float32)
        return dict(zip(ids, sims.tolist(), strict=True))

    def blend(
        self, candidates: list[tuple[ChunkKey, float]], query_vector: np.ndarray, weight: float = OUTLINE_WEIGHT
    ) -> list[tuple[ChunkKey, float]]:
        """The vector leg's chunk candidates with each score blended with its article's outline cosine (module
        docstring), best first. An article without an outline vector keeps its chunk cosines.

        Args:
            candidates: ``((article_id, ord), cosine)``, best first.
            query_vector: the query's ``(dimension,)`` embedding.
            weight: ``w`` of the blend, >= 0; 0 returns the candidates unchanged.
        """
        if weight <= 0 or not candidates:
            return candidates
        outline = self.cosines(query_vector, (key[0] for key, _ in candidates))
        blended = [
            (key, (score + weight * outline[key[0]]) / (1.0 + weight) if key[0] in outline else score)
            for key, score in candidates
        ]
        blended.sort(key=lambda item: (-item[1], item[0]))
        return blended


def outline_texts(chunks: ChunkStore) -> dict[int, str]:
    """``{article id: outline text}`` of every stored article (:func:`outline_text`; ``""`` for no heading)."""
    with chunks.database.session() as session:
        titles = dict(session.execute(select(Article.id, Article.title)).all())
        rows = session.execute(select(Chunk.article_id, Chunk.heading_path).order_by(Chunk.article_id, Chunk.ord))
        paths: dict[int, list[Sequence[str]]] = {}
        for aid, path in rows:
            paths.setdefault(aid, []).append(path or ())
    return {aid: outline_text(title, paths.get(aid, [])) for aid, title in titles.items()}


class OutlineSource:
    """The outline vectors of the current index version, for :meth:`blend` in the vector leg. Thread-safe.

    Encoding the outlines takes one passage encode per article (797 on desk-dev), so it never runs in a query:
    when a query sees a new index ``version``, a background thread reads the outlines again and encodes the
    texts it has not encoded before (an unchanged article costs nothing); the query goes on with the vectors it
    has (none before the first build ends: the leg is then plain best-chunk cosine). A failed build is logged
    and keeps the vectors there were.

    Args:
        texts: returns ``{article id: outline text}`` (:func:`outline_texts`); None: never blend.
        embedder: the index's embedding model.
        weight: ``w`` of the blend (module docstring); 0 turns it off.
    """

    def __init__(
        self, texts: Callable[[], Mapping[int, str]] | None, embedder: Embedder, weight: float = OUTLINE_WEIGHT
    ) -> None:
        self.weight = weight
        self._texts = texts
        self._embedder = embedder
        self._lock = threading.Lock()
        self._version: int | None = None
        self._building: threading.Thread | None = None
        self._vectors: OutlineVectors | None = None
        self._encoded: dict[str, np.ndarray] = {}

    def blend(
        self, candidates: list[tuple[ChunkKey, float]], query_vector: np.ndarray, version: int
    ) -> list[tuple[ChunkKey, float]]:
        """:meth:`OutlineVectors.blend` with the vectors there are; starts a build when ``version`` is new."""
        if self.weight <= 0 or self._texts is None:
            return candidates
        vectors = self._start(version)
        return vectors.blend(candidates, query_vector, self.weight) if vectors is not None else candidates

    def prepare(self, version: int, timeout_s: float | None = None) -> None:
        """Build the vectors of ``version`` now and wait for them (evaluation: every query sees the same leg)."""
        if self.weight > 0 and self._texts is not None:
            self._start(version)
            self.wait(timeout_s)

    def _start(self, version: int) -> OutlineVectors | None:
        with self._lock:
            if version != self._version and self._building is None:
                self._version = version
                self._building = threading.Thread(target=self._build, name="outline-vectors", daemon=True)
                self._building.start()
            return self._vectors

    def wait(self, timeout_s: float | None = None) -> None:
        """Wait for a build in progress to end (evaluation, tests, benchmarks)."""
        thread = self._building
        if thread is not None:
            thread.join(timeout_s)

    def _build(self) -> None:
        try:
            assert self._texts is not None
            texts = {aid: text for aid, text in self._texts().items() if text}
            fresh = sorted({t for t in texts.values() if t not in self._encoded})
            if fresh:
                self._encoded.update(zip(fresh, self._embedder.encode_passages(fresh), strict=True))
            vectors = OutlineVectors.from_vectors({aid: self._encoded[t] for aid, t in texts.items()})
            with self._lock:
                self._vectors = vectors
        except Exception:
            logger.exception("building the outline vectors failed; keeping the ones there were")
        with self._lock:
            self._building = None
