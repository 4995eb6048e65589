"""Tuning of a long-running kb process once it is warm (``kb serve``, each of its ``--workers``, the applier process).

CPython's cycle collector visits, in a full (generation-2) collection, every container object it tracks. A warm
``kb serve`` tracks several hundred thousand that live as long as the process (modules, classes, the FastAPI app,
the SQLAlchemy engine, the index views opened at start-up), so each full pass cost ~0.2 s at load and one search
paid it (bench/results/peer-shared-s11.md). :func:`freeze_after_warmup` moves them into the permanent generation,
which no collection visits, as CPython's documentation recommends for long-lived objects
(https://docs.python.org/3/library/gc.html#gc.freeze); measured effect: bench/results/gc-freeze-s12.md.
"""

from __future__ import annotations

import gc
import logging

logger = logging.getLogger(__name__)


def freeze_after_warmup(enabled: bool = True) -> int:
    """Collect the start-up garbage once, then freeze every object the cycle collector tracks now (:func:`gc.freeze`).

    Call it once per process, after the knowledge base is open (model loaded, index views built) and before the
    first request; objects made later (per-text caches filled by searches) stay collectable as before. The
    ``gc.collect()`` first keeps unreachable start-up cycles from being frozen, hence never freed.

    Args:
        enabled: ``Settings.gc_freeze`` (``KB_GC_FREEZE``); False does nothing (the A/B of the bench).

    Returns:
        Objects now in the permanent generation (:func:`gc.get_freeze_count`; cumulative over calls), 0 when
        ``enabled`` is False.
    """
    if not enabled:
        return 0
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    logger.info("gc.freeze(): %d long-lived objects moved out of the cycle collector's passes", frozen)
    return frozen
