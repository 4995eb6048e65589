"""Adapting the embedding model to one knowledge base (``kb model adapt``).

- :mod:`~kb.model.pairs`: the training pairs a KB holds: (title / heading path, section text) of every chunk
  and (resolved ticket, the article that resolved it).
- :mod:`~kb.model.adapt`: fine-tuning a sentence-transformers model on those pairs on the CPU
  (MultipleNegativesRankingLoss, in-batch negatives) and saving the new model folder with its manifest.
"""
