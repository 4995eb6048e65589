"""int8 (dynamic quantisation) ONNX variant of the embedding model against the float32 one kb uses.

Quantises kb's exported ONNX model with ``onnxruntime.quantization.quantize_dynamic`` (int8 weights, MatMul and
Gather), then, interleaved in one process: encode speed of queries (one at a time, as a search does) and of
passages (batches), and vector-only nDCG@10 on tidb-faq-dev (documents encoded whole as ``title + text``, exact
inner-product top 10, ``ir_measures``). The adoption rule of issue 14: int8 becomes the default only when
nDCG@10 drops by at most 0.005.

    .venv/bin/python bench/quantized_onnx.py --data-dir DIR [--out bench/results]

``DIR`` is a data folder whose model cache holds the exported model (any folder ``kb`` has opened with m3e-small).
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from pathlib import Path
from typing import Any

import ir_measures
import numpy as np
import onnxruntime as ort
from onnxruntime.quantization import QuantType, quantize_dynamic

from kb.config import Settings
from kb.search.embedders.factory import load_embedder

ROOT = Path(__file__).resolve().parents[1]
EVAL = ROOT.parent / "shared" / "data" / "eval" / "tidb-faq-dev"


def ndcg10(embedder: Any, docs: dict[str, str], queries: dict[str, str], qrels: list[Any]) -> float:
    """Vector-only nDCG@10 of ``embedder`` over ``docs`` for ``queries``."""
    ids = list(docs)
    matrix = embedder.encode_passages([docs[i] for i in ids])
    qids = list(queries)
    qv = embedder.encode_queries([queries[q] for q in qids])
    scores = qv @ matrix.T
    run = [
        ir_measures.ScoredDoc(qid, ids[j], float(scores[row, j]))
        for row, qid in enumerate(qids)
        for j in np.argsort(-scores[row])[:10]
    ]
    return float(ir_measures.calc_aggregate([ir_measures.nDCG @ 10], qrels, run)[ir_measures.nDCG @ 10])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT / "var" / "bench-peer")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    settings = Settings(data_dir=args.data_dir, embedding_model="m3e-small", embedding_backend="onnx")
    fp32 = load_embedder(settings.embedding_model, "", 32, "onnx", settings.model_cache_dir)
    fp32.load()
    int8_path = fp32.onnx_path.with_name(fp32.onnx_path.stem + "-int8.onnx")
    if not int8_path.exists():
        quantize_dynamic(str(fp32.onnx_path), str(int8_path), weight_type=QuantType.QInt8)
    int8 = copy.copy(fp32)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    options.log_severity_level = 3
    int8._session = ort.InferenceSession(str(int8_path), options, providers=["CPUExecutionProvider"])

    docs = {}
    for line in (EVAL / "corpus.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        docs[row["_id"]] = f"{row.get('title', '')}\n{row['text']}"
    queries = {
        r["_id"]: r["text"] for r in map(json.loads, (EVAL / "queries.jsonl").read_text(encoding="utf-8").splitlines())
    }
    qrels: list[Any] = []
    for line in (EVAL / "qrels.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        qid, did, rel = line.split("\t")
        qrels.append(ir_measures.Qrel(qid, did, int(rel)))

    query_s: dict[str, list[float]] = {"fp32": [], "int8": []}
    passage_s: dict[str, list[float]] = {"fp32": [], "int8": []}
    models = {"fp32": fp32, "int8": int8}
    texts = list(queries.values())
    passages = list(docs.values())[:256]
    for model in models.values():  # warm-up
        model.encode_queries(texts[:5])
    for i, text in enumerate(texts):
        for name in ("fp32", "int8") if i % 2 else ("int8", "fp32"):
            t0 = time.perf_counter()
            models[name].encode_queries([text])
            query_s[name].append(time.perf_counter() - t0)
    for start in range(0, len(passages), 32):
        for name, model in models.items():
            t0 = time.perf_counter()
            model.encode_passages(passages[start : start + 32])
            passage_s[name].append(time.perf_counter() - t0)
    quality = {name: round(ndcg10(model, docs, queries, qrels), 4) for name, model in models.items()}
    sample = passages[:64]
    agreement = float(np.mean(np.sum(fp32.encode_passages(sample) * int8.encode_passages(sample), axis=1)))
    data = {
        "model": "m3e-small",
        "file_mb": {
            "fp32": round(fp32.onnx_path.stat().st_size / 2**20, 1),
            "int8": round(int8_path.stat().st_size / 2**20, 1),
        },
        "query_ms_p50": {n: round(statistics.median(s) * 1000, 2) for n, s in query_s.items()},
        "passages_per_s": {n: round(len(passages) / sum(s), 1) for n, s in passage_s.items()},
        "ndcg@10_vector_tidb_faq_dev": quality,
        "mean_cosine_fp32_int8": round(agreement, 4),
        "adopt": quality["fp32"] - quality["int8"] <= 0.005,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "onnx-int8.json").write_text(json.dumps(data, indent=2), encoding="utf-8")
    print(json.dumps(data, indent=2))


if __name__ == "__main__":
    main()
