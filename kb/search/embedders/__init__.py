"""Embedders: text -> ``(n, dimension)`` float32, L2-normalised vectors.

One interface and one module per implementation; :func:`kb.search.embedders.factory.load_embedder` picks one
by name:

- :mod:`~kb.search.embedders.base`: the :class:`~kb.search.embedders.base.Embedder` protocol,
  :func:`~kb.search.embedders.base.l2_normalize` and :func:`~kb.search.embedders.base.decode_vectors`
  (stored embedding bytes -> matrix).
- :mod:`~kb.search.embedders.hashing`: a deterministic test encoder (no model file).
- :mod:`~kb.search.embedders.sentence_transformers`: any sentence-transformers model (torch).
- :mod:`~kb.search.embedders.onnx`: m3e-small (mean-pooled BERT) on ONNX Runtime, the default.
- :mod:`~kb.search.embedders.factory`: the factory.
"""
