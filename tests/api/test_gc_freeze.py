"""The cycle-collector freeze of a warm process (:func:`kb.runtime.freeze_after_warmup`, ``KB_GC_FREEZE``)."""

from __future__ import annotations

import gc
import io
import signal
import weakref
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from kb.api import create_app
from kb.cli.applier import run_child
from kb.config import Settings
from kb.runtime import freeze_after_warmup
from kb.search.embedders.hashing import HashingEmbedder
from kb.search.text import TextAnalyzer
from kb.service import KnowledgeBase


class Cycle:
    """An object in a reference cycle with itself: only the cycle collector frees it."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """Start and end with an empty permanent generation (a freeze lasts for the test process)."""
    gc.unfreeze()
    yield
    gc.unfreeze()


def tracked_ids() -> set[int]:
    """Ids of the objects the cycle collector's passes visit (the permanent generation is not among them)."""
    return {id(o) for o in gc.get_objects()}


@pytest.mark.parametrize("enabled", [True, False])
def test_startup_freezes_the_warm_objects_only_when_enabled(
    settings: Settings, analyzer: TextAnalyzer, hash_embedder: HashingEmbedder, unfrozen: None, enabled: bool
) -> None:
    settings = settings.model_copy(update={"gc_freeze": enabled})
    service = KnowledgeBase(settings, embedder=hash_embedder, analyzer=analyzer)
    with TestClient(create_app(settings, kb=service)) as client:
        frozen, visited = gc.get_freeze_count(), tracked_ids()
        assert client.get("/health").status_code == 200
    if enabled:
        assert frozen > 0
        assert id(service) not in visited and id(service.engine) not in visited
    else:
        assert frozen == 0
        assert id(service) in visited


def test_freeze_collects_startup_garbage_first_and_later_garbage_stays_collectable(unfrozen: None) -> None:
    before = Cycle()
    gone_before = weakref.ref(before)
    del before
    assert freeze_after_warmup(True) > 0
    assert gone_before() is None  # collected, not frozen for the life of the process
    after = Cycle()
    gone_after = weakref.ref(after)
    del after
    gc.collect()
    assert gone_after() is None


def test_disabled_freezes_nothing(unfrozen: None) -> None:
    assert freeze_after_warmup(False) == 0
    assert gc.get_freeze_count() == 0


def test_applier_process_freezes_once_open(settings: Settings, unfrozen: None) -> None:
    settings = settings.model_copy(update={"gc_freeze": True, "index_applier_nice": 0})
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    stdout = io.StringIO()
    try:
        assert run_child(settings, io.StringIO(""), stdout) == 0  # stdin at EOF: the server is gone, it stops
    finally:
        for number, handler in handlers.items():
            signal.signal(number, handler)
    assert stdout.getvalue().strip() == "ready"
    assert gc.get_freeze_count() > 0
