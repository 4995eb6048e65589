"""The Chinese words of the pages (:mod:`kb.web.labels`) cover every value kb stores: a new article kind, ticket
status, channel, event kind, role or error code added without its word fails here instead of reading in English
on a page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kb import errors
from kb.articles.content import KINDS, STATUSES, VISIBILITIES
from kb.identity.audit import DENIED, FAILURE, SUCCESS
from kb.identity.permissions import GRANTS
from kb.ingest.mapping import TICKET_CHANNELS, TICKET_STATUSES
from kb.web import labels
from kb.web.templating import environment

DESK = Path(errors.__file__).resolve().parent / "desk"


def _event_kinds() -> set[str]:
    """Every literal event kind the desk writes: ``_event(session, ticket, "kind", ...)``, and
    ``kind = "a" if ... else "b"`` (assigned / reassigned)."""
    found: set[str] = set()
    for source in DESK.rglob("*.py"):
        text = source.read_text("utf-8")
        found |= set(re.findall(r'_event\(\s*session,\s*\w+,\s*"([a-z_]+)"', text))
        for pair in re.findall(r'\bkind = "([a-z_]+)" if .* else "([a-z_]+)"', text):
            found |= set(pair)
    return found


@pytest.mark.parametrize(
    ("values", "table"),
    [
        (KINDS, labels.ARTICLE_KINDS),
        (STATUSES, labels.ARTICLE_STATUSES),
        (VISIBILITIES, labels.VISIBILITIES),
        (TICKET_STATUSES, labels.TICKET_STATUSES),
        (TICKET_CHANNELS, labels.CHANNELS),
        (tuple(GRANTS), labels.ROLES),
        ((SUCCESS, FAILURE, DENIED), labels.AUDIT_RESULTS),
    ],
)
def test_every_stored_value_has_its_word(values: tuple[str, ...], table: dict[str, str]) -> None:
    assert set(values) <= set(table), set(values) - set(table)


def test_every_ticket_event_kind_has_its_word() -> None:
    kinds = _event_kinds()
    assert {"created", "note", "escalated", "closed", "assigned", "reassigned"} <= kinds  # the scan finds them
    assert kinds <= set(labels.TICKET_EVENTS), kinds - set(labels.TICKET_EVENTS)


def test_every_error_code_has_a_sentence_and_its_status_a_title() -> None:
    classes = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.KBError)]
    for cls in classes:
        if cls.code in ("insecure_configuration",):  # a start-up refusal, never a page
            continue
        assert cls.code in labels.ERROR_MESSAGES, cls.code
        assert cls.status in labels.ERROR_TITLES, cls.status


def test_the_label_filter_falls_back_and_refuses_unknown_tables() -> None:
    render = environment().from_string('{{ a|label("event") }}|{{ b|label("event") }}|{{ n|label("kind") }}')
    assert render.render(a="note", b="brand_new", n=None) == "工作记录|brand_new|"
    with pytest.raises(KeyError):
        labels.label("x", "no_such_table")
