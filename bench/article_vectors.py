"""Vector leg with article-level vectors beside the chunk vectors, scored offline on a built desk-dev KB.

Reads every chunk vector of the live index generation in ``--data-dir`` (nothing is re-embedded), encodes each
article's title, its "outline" (title + every heading) and the queries with the KB's model, and ranks all
articles for each desk-dev query by:

- ``chunk``: best chunk cosine (what the vector leg does);
- ``first``: cosine of chunk 0 (title + summary or first section);
- ``title`` / ``outline``: cosine of that article vector;
- ``centroid``: cosine of the normalised mean of the article's chunk vectors;
- ``chunk+A*X``: best chunk cosine plus A times the cosine of article vector X (X in first, title, outline,
  centroid), and ``max(chunk,X)``.

Prints nDCG@10 per style and fold group (exact search over all articles, no padding bar: a leg-level A/B).

``--model DIR`` re-encodes every chunk (the index's embedding input), the titles, outlines and queries with that
sentence-transformers folder instead (e.g. one made by ``kb model adapt``), to measure it without a rebuild.
``--write-embeddings`` then stores those chunk vectors in the KB's ``chunks`` table under the model's name (the
folder's absolute path, what ``KB_EMBEDDING_MODEL=<folder>`` calls it), so that
``KB_EMBEDDING_MODEL=<folder> kb index rebuild`` reuses them instead of encoding every chunk a second time (the
rebuild re-chunks nothing: the adapted model keeps the base's tokenizer and limit, so the chunks are the same;
it refuses to reuse a vector whose article version or model differs). Use it on a copy of the KB.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import ir_measures
import numpy as np

from kb.articles.filters import ArticleFilter
from kb.config import Settings
from kb.evaluation import read_qrels
from kb.search.documents import embedding_texts
from kb.search.embedders.base import Embedder
from kb.search.embedders.sentence_transformers import SentenceTransformerEmbedder
from kb.search.vectors import split_vector_id
from kb.service import KnowledgeBase

DESK = Path(__file__).parent / "data" / "desk-dev"


def write_embeddings(kb: KnowledgeBase, keys: list[tuple[int, int]], matrix: np.ndarray, model: str) -> None:
    """Store ``matrix`` row i as the embedding of chunk ``keys[i]`` (article id, ord), made by ``model``."""
    from sqlalchemy import update

    from kb.models import Chunk

    with kb.database.session() as session:
        for (aid, ord_), row in zip(keys, matrix, strict=True):
            blob = np.asarray(row, dtype=np.float32).tobytes()
            session.execute(
                update(Chunk).where(Chunk.article_id == aid, Chunk.ord == ord_).values(embedding=blob, model=model)
            )
    print(f"stored {len(keys)} chunk vectors of {model}", file=sys.stderr, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--model", type=Path, help="re-encode with this sentence-transformers folder")
    parser.add_argument("--write-embeddings", action="store_true", help="store the --model vectors (see above)")
    parser.add_argument("--folder", type=Path, default=DESK, help="evaluation set (default desk-dev)")
    parser.add_argument("--variants", default="", help="comma-separated variant names to print (default all)")
    args = parser.parse_args()
    settings = Settings().model_copy(update={"data_dir": args.data_dir, "database_url": "", "index_dir": None})
    kb = KnowledgeBase(settings).open()
    try:
        import faiss

        index = kb.index.generation.vectors._index
        n = int(index.ntotal)
        vids = faiss.vector_to_array(index.id_map).astype(np.int64)
        matrix = index.index.reconstruct_n(0, n)
        found, _ = kb.store.list_articles(ArticleFilter(statuses=()), 0, 10**9)
        if (args.folder / "corpus.jsonl").exists():  # a BEIR set imported from its corpus: ids are source paths
            doc_of = {a.id: a.source_path or "" for a in found}
        else:
            doc_of = {a.id: f"{a.collection}/{a.source_path}" for a in found}
        aids = sorted(doc_of)
        col = {aid: i for i, aid in enumerate(aids)}
        rows_of: dict[int, list[int]] = {}
        first_row: dict[int, int] = {}
        for row, vid in enumerate(vids.tolist()):
            aid, ord_ = split_vector_id(vid)
            rows_of.setdefault(aid, []).append(row)
            if ord_ == 0:
                first_row[aid] = row
        chunks = kb.index._chunks.of_articles(aids)
        titles = {a.id: a.title for a in found}
        outlines = []
        for aid in aids:
            heads = list(dict.fromkeys(h for c in chunks.get(aid, []) for h in c.heading_path))
            outlines.append(" / ".join([titles[aid], *heads])[:400])
        emb: Embedder = kb.embedder
        if args.model is not None:
            name = str(args.model.resolve())
            emb = SentenceTransformerEmbedder(name, name)
            ordered = [(aid, ord_) for aid, ord_ in map(split_vector_id, vids.tolist())]
            by_key = {(c.article_id, c.ord): c for cs in chunks.values() for c in cs}
            articles = kb.index._articles.by_ids(aids)
            texts = embedding_texts([by_key[k] for k in ordered], articles, kb.analyzer)
            matrix = emb.encode_passages(texts)
            if args.write_embeddings:
                write_embeddings(kb, ordered, matrix, name)
        title_v = emb.encode_passages([titles[a] for a in aids])
        outline_v = emb.encode_passages(outlines)
        centroid_v = np.stack([matrix[rows_of[a]].mean(axis=0) for a in aids])
        centroid_v /= np.linalg.norm(centroid_v, axis=1, keepdims=True)
        first_v = np.stack([matrix[first_row.get(a, rows_of[a][0])] for a in aids])
        qrels = read_qrels(args.folder / "qrels.tsv")
        lines = (args.folder / "queries.jsonl").read_text(encoding="utf-8").splitlines()
        queries = [json.loads(x) for x in lines if x.strip()]
        queries = [q for q in queries if q["_id"] in qrels]
        qv = emb.encode_queries([q["text"] for q in queries])
        chunk_sims = qv @ matrix.T  # (q, chunks)
        best = np.full((len(queries), len(aids)), -1.0, dtype=np.float32)
        for aid, rows in rows_of.items():
            if aid in col:
                best[:, col[aid]] = chunk_sims[:, rows].max(axis=1)
        art = {
            "first": qv @ first_v.T,
            "title": qv @ title_v.T,
            "outline": qv @ outline_v.T,
            "centroid": qv @ centroid_v.T,
        }
        variants: dict[str, np.ndarray] = {"chunk": best, **art}
        for name, sims in art.items():
            variants[f"max(chunk,{name})"] = np.maximum(best, sims)
            for a in (0.25, 0.5, 1.0):
                variants[f"chunk+{a}*{name}"] = best + a * sims
        groups: dict[str, list[int]] = {"all": list(range(len(queries)))}
        for i, q in enumerate(queries):
            if "style" in q:
                groups.setdefault(q["style"], []).append(i)
            if "fold" in q:
                groups.setdefault("folds 0-2" if q["fold"] in (0, 1, 2) else "folds 3-4", []).append(i)
            if q.get("style") == "layman" and q.get("fold") in (3, 4):
                groups.setdefault("layman 3-4", []).append(i)
        wanted = {v for v in args.variants.split(",") if v}
        measure = ir_measures.parse_measure("nDCG@10")
        for name, sims in variants.items():
            if wanted and name not in wanted:
                continue
            run = {}
            for i, q in enumerate(queries):
                top = np.argsort(-sims[i])[:100]
                run[q["_id"]] = {doc_of[aids[j]]: float(sims[i, j]) for j in top}
            per_q = {m.query_id: m.value for m in ir_measures.iter_calc([measure], qrels, run)}
            res = {
                g: round(float(np.mean([per_q.get(queries[i]["_id"], 0.0) for i in idx])), 4)
                for g, idx in groups.items()
            }
            print(json.dumps({"variant": name, **res}, ensure_ascii=False), flush=True)
    finally:
        kb.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
