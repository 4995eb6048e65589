"""The 100k-chunk bench corpus: real text from five sources, imported into one kb, embeddings cached once.

Sources (all real text, none generated):

- the four shared Markdown collections (windows-troubleshooting, k8s-troubleshooting, tidb-faq, linux-command);
- the TiDB documentation tarball (``shared/data/articles/tidb-docs-full``, 1,213 pages);
- the 47,837 real IT tickets (``shared/data/tickets/it-tickets-en``), each written as a resolved-ticket document
  (title: its first words; body: its text and topic group; English, lower-cased by its publisher);
- manual pages of this machine's Debian packages (``/usr/share/man/man1`` and ``man8``, roff turned into
  Markdown headings and paragraphs), in name order, as many as it takes to pass ``--target`` chunks: with
  m3e-small chunking the first three sources give about 78k chunks, not 100k.

All documents are imported in one seeded random order (so every prefix mixes the sources) in batches of
``--batch`` files, each batch written to the database and applied to the index like ``kb import`` does
(``ArticleStore.upsert_imported`` per file, then ``IndexManager.apply_pending`` over the whole batch). When the
chunk count first passes each of ``--snapshots`` the data folder is copied (``kb-<n>k``) for ``bench/scale.py``
to measure.

Passage embeddings go through :class:`EmbeddingCache` (``var/scale-100k/embeddings/<model>/``: one ``.npy`` of
float32 vectors and one of SHA-1 keys of the embedded text per encoded batch), so a re-run encodes nothing that
was encoded before, and an interrupted run goes on where it stopped.

    .venv/bin/python bench/corpus_100k.py [--model m3e-small-int8] [--work var/scale-100k]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import random
import re
import resource
import shutil
import sys
import tarfile
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from kb.articles.chunking import embedding_input
from kb.articles.content import ArticleContent
from kb.config import Settings
from kb.errors import ArticleFormatError, PayloadTooLargeError
from kb.ingest.markdown import IMPORT_BATCH_FILES, read_article_file
from kb.search.embedders.base import Embedder
from kb.search.embedders.factory import load_embedder
from kb.search.embedders.hashing import HashingEmbedder
from kb.service import KnowledgeBase

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
SHARED_FOLDERS = ["windows-troubleshooting", "k8s-troubleshooting", "tidb-faq", "linux-command"]
TICKETS = SHARED / "tickets" / "it-tickets-en" / "all_tickets_processed_improved_v3.csv.zip"
#: Longest heading kept from a manual page, characters (longer ones leave a chunk no room for text).
MAX_HEADING = 60
MAN_DIRS = [Path("/usr/share/man/man1"), Path("/usr/share/man/man8")]


class EmbeddingCache:
    """An :class:`~kb.search.embedders.base.Embedder` that remembers ``inner``'s passage vectors on disk.

    Keys are the SHA-1 of the exact text embedded; each encoded batch adds ``NNNNNN.keys.npy`` (``(n, 20)``
    uint8) and ``NNNNNN.vec.npy`` (``(n, d)`` float32) under ``folder``. Vectors are read back by memory map,
    one shard at a time, so the cache adds only its key table (~5 MB per 100k) to the importing process.
    Queries are always encoded by ``inner``.
    """

    def __init__(self, inner: Embedder, folder: Path) -> None:
        self.inner = inner
        self.name = inner.name
        self.query_instruction = inner.query_instruction
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._where: dict[bytes, tuple[int, int]] = {}
        self._shards = 0
        for keys_file in sorted(folder.glob("*.keys.npy")):
            shard = int(keys_file.name.split(".")[0])
            if not (folder / f"{shard:06d}.vec.npy").exists():
                continue
            for row, key in enumerate(np.load(keys_file)):
                self._where[key.tobytes()] = (shard, row)
            self._shards = max(self._shards, shard + 1)
        self.hits = 0
        self.encoded = 0
        self.encode_s = 0.0

    @property
    def size(self) -> int:
        """Vectors remembered."""
        return len(self._where)

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    @property
    def max_seq_length(self) -> int:
        return self.inner.max_seq_length

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def encode_queries(self, texts: list[str]) -> NDArray[np.float32]:
        return self.inner.encode_queries(texts)

    def encode_passages(self, texts: list[str]) -> NDArray[np.float32]:
        keys = [hashlib.sha1(t.encode("utf-8")).digest() for t in texts]
        missing = list(dict.fromkeys(k for k in keys if k not in self._where))
        if missing:
            first = {k: i for i, k in reversed(list(enumerate(keys)))}
            started = time.perf_counter()
            vectors = self.inner.encode_passages([texts[first[k]] for k in missing])
            self.encode_s += time.perf_counter() - started
            self.encoded += len(missing)
            shard = self._shards
            np.save(self.folder / f"{shard:06d}.vec.npy", vectors.astype(np.float32))
            np.save(self.folder / f"{shard:06d}.keys.npy", np.frombuffer(b"".join(missing), np.uint8).reshape(-1, 20))
            self._shards += 1
            for row, key in enumerate(missing):
                self._where[key] = (shard, row)
        self.hits += len(keys) - len(missing)
        out = np.empty((len(keys), self.dimension), dtype=np.float32)
        by_shard: dict[int, list[tuple[int, int]]] = {}
        for i, key in enumerate(keys):
            shard, row = self._where[key]
            by_shard.setdefault(shard, []).append((i, row))
        for shard, pairs in by_shard.items():
            stored = np.load(self.folder / f"{shard:06d}.vec.npy", mmap_mode="r")
            out[[i for i, _ in pairs]] = stored[[r for _, r in pairs]]
            del stored
        return out


def bench_embedder(model: str, model_cache: Path) -> Embedder:
    """``model`` as kb loads it, or for ``hash512`` the test encoder at m3e-small's 512 dimensions (so the vector
    leg's cost is that of the real model's index; it is not semantic)."""
    if model == "hash512":
        return HashingEmbedder(dimension=512)
    return load_embedder(model, "", 32, "onnx", model_cache)


def roff_to_markdown(text: str) -> str | None:
    """A manual page's roff source as Markdown: ``.TH`` the title, ``.SH``/``.SS`` headings, text lines kept,
    font escapes and other requests dropped; None for a page that only includes another (``.so``)."""
    lines: list[str] = []
    title = ""
    for raw in text.splitlines():
        if raw.startswith(".so "):
            return None
        if raw.startswith(('.\\"', "'\\\"", '.\\\\"')):
            continue
        line = re.sub(r"\\f(\[[^\]]*\]|\(..|.)", "", raw)
        line = re.sub(r"\\\((em|en)", "—", line)
        line = re.sub(r"\\\(..|\\\[[^\]]*\]|\\[&|^%]|\\s[-+]?\d", "", line)
        line = line.replace("\\-", "-").replace("\\e", "\\").replace('\\"', "")
        if line.startswith((".", "'")):
            request, _, rest = line[1:].partition(" ")
            rest = rest.strip().replace('"', "")
            if request == "TH":
                title = rest.split(" ")[0].lower()
            elif request in ("SH", "SS"):
                lines.append(("## " if request == "SH" else "### ") + rest.title()[:MAX_HEADING])
            elif request in ("B", "I", "BR", "IR", "RB", "BI", "IB", "RI", "TP", "IP") and rest:
                lines.append(rest)
            elif request in ("PP", "P", "LP", "sp", "br"):
                lines.append("")
            continue
        lines.append(line)
    body = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    if not title or len(body) < 200:
        return None
    return f"# {title}\n\n{body}\n"


def write_sources(work: Path, man_pages: int) -> dict[str, list[Path]]:
    """Write (once) the tarball, ticket and manual-page documents under ``work/src``; the files of each source."""
    src = work / "src"
    done = src / ".written"
    if not done.exists():
        shutil.rmtree(src, ignore_errors=True)
        src.mkdir(parents=True)
        for tarball in sorted((SHARED / "articles" / "tidb-docs-full").glob("*.tar.gz")):
            with tarfile.open(tarball) as tar:
                tar.extractall(src / "tidb-docs-full", filter="data")
        tickets = src / "tickets"
        with zipfile.ZipFile(TICKETS) as archive, archive.open(archive.namelist()[0]) as raw:
            import csv
            import io

            reader = csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8"))
            for n, row in enumerate(reader, start=1):
                words = row["Document"].split()
                folder = tickets / row["Topic_group"].lower().replace(" ", "-")
                folder.mkdir(parents=True, exist_ok=True)
                (folder / f"ticket-{n:05d}.md").write_text(
                    f"# {' '.join(words[:8]) or 'ticket'}\n\n{row['Document']}\n\n"
                    f"## Resolution\n\nResolved ticket {n} of topic group {row['Topic_group']}.\n",
                    encoding="utf-8",
                )
        man = src / "man"
        man.mkdir()
        written = 0
        for path in sorted(p for d in MAN_DIRS for p in d.glob("*.gz")):
            if written >= man_pages:
                break
            try:
                markdown = roff_to_markdown(gzip.decompress(path.read_bytes()).decode("utf-8", "replace"))
            except (OSError, EOFError):
                continue
            if markdown:
                (man / (path.name.removesuffix(".gz") + ".md")).write_text(markdown, encoding="utf-8")
                written += 1
        done.write_text("ok", encoding="utf-8")
    sources = {name: sorted((SHARED / "articles" / name).rglob("*.md")) for name in SHARED_FOLDERS}
    sources["tidb-docs-full"] = sorted((src / "tidb-docs-full").rglob("*.md"))
    sources["tickets"] = sorted((src / "tickets").rglob("*.md"))
    sources["man"] = sorted((src / "man").rglob("*.md"))
    return sources


def _chunkable(content: ArticleContent, kb: KnowledgeBase) -> bool:
    """Whether kb's chunker has room for text under ``content``'s title (:func:`kb.articles.chunking.chunk_article`
    raises ValueError when the title alone leaves fewer than 16 tokens, and one such document would stop the whole
    import batch in ``apply_pending``). Cheap: the title's tokens only, not a second chunking of the body."""
    return kb.embedder.count_tokens(embedding_input(content.title, (), "")) + 17 <= kb.index.max_chunk_tokens


def rss_mib() -> dict[str, float]:
    """This process's resident set now and at its peak (``/proc/self/status`` VmRSS, VmHWM), MiB."""
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return {k: round(int(status[k].split()[0]) / 1024, 1) for k in ("VmRSS", "VmHWM", "RssAnon", "RssFile")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="m3e-small-int8")
    parser.add_argument("--work", type=Path, default=ROOT / "var" / "scale-100k")
    parser.add_argument("--target", type=int, default=100_000, help="stop once this many chunks are indexed")
    parser.add_argument("--man-pages", type=int, default=9000)
    parser.add_argument("--batch", type=int, default=IMPORT_BATCH_FILES, help="files per import batch")
    parser.add_argument("--snapshots", default="10000,50000")
    args = parser.parse_args()
    work: Path = args.work
    sources = write_sources(work, args.man_pages)
    order = [(name, path) for name, paths in sources.items() for path in paths]
    random.Random(14).shuffle(order)
    kb_dir = work / f"kb-{args.model}"
    settings = Settings(data_dir=kb_dir, embedding_model=args.model, model_cache=ROOT / "var" / "models")
    inner = bench_embedder(args.model, settings.model_cache_dir)
    cache = EmbeddingCache(inner, work / "embeddings" / args.model)
    kb = KnowledgeBase(settings, embedder=cache).open()
    snapshots = sorted(int(s) for s in args.snapshots.split(",") if s)
    log_path = work / f"import-{args.model}.jsonl"
    started, cpu_started = time.perf_counter(), time.process_time()
    chunks = kb.index.status().db_chunks
    position = int((kb_dir / "position").read_text()) if (kb_dir / "position").exists() else 0
    try:
        while position < len(order) and chunks < args.target:
            batch = order[position : position + args.batch]
            for name, path in batch:
                try:
                    content = read_article_file(path)
                except (ArticleFormatError, PayloadTooLargeError):
                    continue
                if content is not None and _chunkable(content, kb):
                    base = SHARED / "articles" / name if name in SHARED_FOLDERS else work / "src" / name
                    kb.store.upsert_imported(name, path.relative_to(base).as_posix(), content, "bench")
            kb.index.apply_pending(batch_size=args.batch)
            position += len(batch)
            (kb_dir / "position").write_text(str(position))
            chunks = len(kb.index.generation.vectors)
            row: dict[str, Any] = {
                "files": position,
                "chunks": chunks,
                "s": round(time.perf_counter() - started, 1),
                "cpu_s": round(time.process_time() - cpu_started, 1),
                "encoded": cache.encoded,
                "encode_s": round(cache.encode_s, 1),
                "cache_hits": cache.hits,
                "rss": rss_mib(),
                "load": [round(x, 2) for x in os.getloadavg()],
            }
            with log_path.open("a", encoding="utf-8") as log:
                log.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)
            for size in snapshots:
                dest = work / f"kb-{size // 1000}k-{args.model}"
                if chunks >= size and not dest.exists():
                    tmp = dest.with_name(dest.name + ".tmp")
                    shutil.rmtree(tmp, ignore_errors=True)
                    shutil.copytree(kb_dir, tmp, ignore=shutil.ignore_patterns("models", "*.lock"))
                    tmp.rename(dest)
    finally:
        kb.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"done": position >= len(order) or chunks >= args.target, "chunks": chunks, "peak_mib": peak}))
    sys.exit(0)


if __name__ == "__main__":
    main()
