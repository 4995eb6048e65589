"""The service desk loop: ticket workflow, SLA-aware escalation, suggestions (kb.desk.workflow, kb.desk.suggest)."""
