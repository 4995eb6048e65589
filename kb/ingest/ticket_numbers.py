"""Ticket sources and numbers shared by the desk and the import: one number names one ticket.

``tickets.external_id`` is the number people use (``T00000042``, ``INC-0001``); ``article_usage``, the tickets an
article resolved and the desk's votes name tickets by it, so :mod:`kb.ingest.tickets` refuses an export row whose
number another source's ticket holds, or that has the shape of the desk's own numbers (which the desk would give a
later ticket), found by session 9's outside tester (L8).
"""

from __future__ import annotations

import re

#: ``tickets.source`` of the tickets the desk takes in itself (:mod:`kb.desk.workflow`); every other source is an
#: export's (:mod:`kb.ingest.tickets`).
DESK_SOURCE = "desk"
#: The numbers the desk gives its tickets (:func:`desk_number`): reserved, an import may not take one.
DESK_NUMBER = re.compile(r"T\d{8,}")


def desk_number(ticket_id: int) -> str:
    """The number the desk gives the ticket with database id ``ticket_id``: ``T`` and at least 8 digits
    (``T00000042``), matching :data:`DESK_NUMBER`."""
    return f"T{ticket_id:08d}"
