"""The vector leg: oracle test against brute-force numpy; padding, empty index, removal (BL-25..28)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from kb.errors import IndexMismatchError
from kb.search.embedders.base import decode_vectors, l2_normalize
from kb.search.embedders.hashing import HashingEmbedder
from kb.search.vectors import VectorIndex, split_vector_id, vector_id


def _random_index(n: int, d: int = 64, seed: int = 0) -> tuple[VectorIndex, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    vectors = l2_normalize(rng.normal(size=(n, d)))
    ids = np.array([vector_id(i // 3 + 1, i % 3) for i in range(n)], dtype=np.int64)
    index = VectorIndex(d)
    index.add(ids, vectors)
    return index, ids, vectors


def test_faiss_top_k_equals_brute_force_numpy() -> None:
    index, ids, vectors = _random_index(500)
    rng = np.random.default_rng(1)
    for _ in range(20):
        query = l2_normalize(rng.normal(size=(1, 64)))[0]
        hits = index.search(query, 10)
        expected = np.argsort(-(vectors @ query), kind="stable")[:10]
        assert [vector_id(h.article_id, h.ord) for h in hits] == ids[expected].tolist()
        assert np.allclose([h.score for h in hits], (vectors @ query)[expected], atol=1e-5)


def test_fewer_vectors_than_k_gives_no_padding() -> None:  # BL-28
    index, _, _ = _random_index(3)
    hits = index.search(l2_normalize(np.ones((1, 64)))[0], 10)
    assert len(hits) == 3
    assert all(h.article_id >= 1 and -1.0 <= h.score <= 1.0 for h in hits)


def test_empty_index_answers_nothing() -> None:  # BL-27
    index = VectorIndex(64)
    assert index.search(l2_normalize(np.ones((1, 64)))[0], 25) == []


def test_remove_article_removes_all_its_chunks_and_survives_save_load(tmp_path: Path) -> None:  # BL-26
    index, _, vectors = _random_index(30)
    assert index.count_article(2) == 3
    assert index.remove_article(2) == 3
    assert index.remove_article(4) == 3
    path = tmp_path / "v.faiss"
    index.save(path)
    loaded = VectorIndex.load(path, 64)
    assert len(loaded) == 24
    for i, vec in enumerate(vectors):
        article_id = i // 3 + 1
        hits = loaded.search(vec, 1)
        if article_id in (2, 4):
            assert all(h.article_id not in (2, 4) for h in loaded.search(vec, 30))
        else:
            assert (hits[0].article_id, hits[0].ord) == (article_id, i % 3)


def test_remove_articles_removes_every_chunk_of_each_and_nothing_else() -> None:
    index, ids, vectors = _random_index(30)
    assert index.remove_articles([2, 4, 99]) == 6  # 99 has no vector
    assert index.remove_articles([2, 4]) == 0
    assert index.remove_articles([]) == 0
    assert len(index) == 24
    kept = {(h.article_id, h.ord) for h in index.search(vectors[0], 30)}
    assert len(kept) == 24
    assert not {a for a, _ in kept} & {2, 4}
    gone = ids[3]  # article 2, ord 0: its vector is no longer its own nearest neighbour
    assert all(vector_id(h.article_id, h.ord) != gone for h in index.search(vectors[3], 30))


def test_remove_articles_keeps_the_hnsw_snapshot_in_step() -> None:
    index, _, vectors = _random_index(300)
    index.search(vectors[0], 5, approximate=True)  # builds the snapshot
    index.remove_articles([1, 2])
    for row in (0, 3, 7):
        assert all(h.article_id not in (1, 2) for h in index.search(vectors[row], 10, approximate=True))


def test_remove_articles_removes_many_in_one_pass_and_equals_one_by_one(tmp_path: Path) -> None:
    batch, _, vectors = _random_index(30)
    single, _, _ = _random_index(30)
    assert batch.remove_articles([2, 4, 99]) == 6  # 99 has no vectors
    assert batch.remove_articles([]) == 0 and batch.remove_articles([99]) == 0
    assert single.remove_article(2) + single.remove_article(4) == 6
    batch.save(tmp_path / "v.faiss")
    loaded = VectorIndex.load(tmp_path / "v.faiss", 64)
    assert len(loaded) == len(single) == 24
    for vec in vectors:
        assert loaded.search(vec, 30) == single.search(vec, 30)
    assert loaded.count_article(2) == loaded.count_article(4) == 0 and loaded.count_article(3) == 3


def test_self_similarity_is_at_most_one() -> None:  # BL-25
    emb = HashingEmbedder()
    texts = [f"打印机 {i} 号卡纸，请检查进纸器 {i * 7}" for i in range(10)]
    vectors = emb.encode_passages(texts)
    index = VectorIndex(emb.dimension)
    index.add(np.array([vector_id(i + 1, 0) for i in range(10)], dtype=np.int64), vectors)
    for i, text in enumerate(texts):
        top = index.search(emb.encode_queries([text])[0], 1)[0]
        assert top.article_id == i + 1 and 0.99 <= top.score <= 1.0
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    assert vectors.dtype == np.float32 and vectors.flags.c_contiguous


def test_vector_id_round_trip() -> None:
    assert split_vector_id(vector_id(123456, 65535)) == (123456, 65535)


def test_decode_vectors_round_trips_stored_bytes() -> None:
    vectors = HashingEmbedder(dimension=32).encode_passages(["打印机卡纸", "VPN 连不上", ""])
    decoded = decode_vectors([row.tobytes() for row in vectors], 32)
    assert decoded.shape == (3, 32) and decoded.dtype == np.float32 and decoded.flags.writeable
    assert np.array_equal(decoded, vectors)
    assert decode_vectors([], 32).shape == (0, 32)


@pytest.mark.parametrize("blob", [None, b"", np.zeros(16, dtype=np.float32).tobytes()])
def test_decode_vectors_refuses_a_wrong_length(blob: bytes | None) -> None:
    good = np.zeros(32, dtype=np.float32).tobytes()
    with pytest.raises(IndexMismatchError, match="needs 128"):
        decode_vectors([good, blob], 32)


def test_searches_share_the_lock_and_a_write_waits_for_them() -> None:
    from kb.search.vectors import _ReadWriteLock

    lock = _ReadWriteLock()
    both_inside = threading.Barrier(2, timeout=10)
    order: list[str] = []

    def reader() -> None:
        with lock.read():
            both_inside.wait()  # raises BrokenBarrierError unless the two readers hold the lock together
            order.append("read")

    readers = [threading.Thread(target=reader) for _ in range(2)]
    for t in readers:
        t.start()
    for t in readers:
        t.join()
    assert order == ["read", "read"] and not both_inside.broken

    release = threading.Event()
    reading = threading.Event()

    def long_reader() -> None:
        with lock.read():
            reading.set()
            release.wait(10)
            order.append("reader done")

    def writer() -> None:
        with lock.write():
            order.append("write")

    held = threading.Thread(target=long_reader)
    held.start()
    reading.wait(10)
    waiting = threading.Thread(target=writer)
    waiting.start()
    waiting.join(0.2)
    assert waiting.is_alive()  # the write waits while a search holds the lock
    release.set()
    held.join()
    waiting.join(10)
    assert order[-2:] == ["reader done", "write"]


def test_concurrent_searches_while_vectors_are_added_see_whole_states() -> None:
    index = VectorIndex(8)
    rng = np.random.default_rng(3)
    base = rng.standard_normal((50, 8)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    index.add(np.arange(50, dtype=np.int64) << 16, base)
    errors: list[BaseException] = []

    def search() -> None:
        try:
            for _ in range(200):
                found = index.search_keys(base[0], 10)
                assert found[0][0] == (0, 0) and len(found) == 10
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=search) for _ in range(4)]
    for t in threads:
        t.start()
    for i in range(50, 150):
        vector = rng.standard_normal((1, 8)).astype(np.float32)
        index.add(np.array([i << 16], dtype=np.int64), vector / np.linalg.norm(vector))
    for t in threads:
        t.join()
    assert not errors and len(index) == 150


def test_a_search_from_a_new_thread_runs_faiss_on_one_openmp_thread() -> None:
    """OpenMP's thread count is per thread: the index opened in one thread, searched from a server worker thread,
    must set it there too (it was left at one per core, issue 14)."""
    import faiss

    index, _, vectors = _random_index(200)
    seen: list[int] = []

    def search() -> None:
        faiss.omp_set_num_threads(4)  # what a fresh thread inherits on a 4-core machine
        index.search(vectors[0], 5)
        seen.append(faiss.omp_get_max_threads())

    worker = threading.Thread(target=search)
    worker.start()
    worker.join()
    assert seen == [1]
