"""Search: text analysis, the BM25 and vector legs, fusion and the index manager."""
