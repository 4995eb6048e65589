"""Article "outline" vectors: one embedding per article of its title and every heading, blended into the vector leg.

The vector leg scores an article by its best chunk's cosine. An article whose topic is spread over sections (a
troubleshooting page: symptom, cause, fix) can lose to a short page whose one chunk happens to be close. The
outline (title + all headings in document order, each once, joined by `` / ``, cut at :data:`MAX_OUTLINE_CHARS`)
says what the whole article is about; the blended article score is

    score = (best_chunk_cosine + w * outline_cosine) / (1 + w)

which keeps it on the cosine scale (so the model's calibrated floors still read it) and orders articles like
``best + w * outline``. ``w`` = :data:`OUTLINE_WEIGHT` was chosen on desk-dev folds 0-2 offline (session 5,
``bench/article_vectors.py``: vector leg nDCG@10 0.466 -> 0.496 tuning, 0.530 -> 0.565 held out); whether it
helps the hybrid ranking is measured by ``bench/colloquial.py outline`` (bench/results/search-quality-ii.md).

An article with no heading has no outline vector: its outline would be its title alone, which every chunk's
embedding input already starts with (:func:`kb.articles.chunking.embedding_input`), so the blend would only add
a prior shared by every article of the same title. Measured: on tidb-faq-dev, whose documents are FAQ answers
without headings under 33 page titles, blending title-only outlines cost the vector leg 0.630 -> 0.569 and the
hybrid ranking 0.831 -> 0.824.

Chunk candidates keep their order inside each article (one article's chunks all move by the same amount), so
the best chunk and its passage are unchanged; only articles' scores move.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from kb.articles.chunks import ChunkKey
from kb.search.embedders.base import Embedder

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
