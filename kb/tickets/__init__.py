"""Tickets: importing exports through mappings (:mod:`kb.tickets.mapping`, :mod:`kb.tickets.importer`)."""
