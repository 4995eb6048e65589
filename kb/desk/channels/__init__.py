"""Intake channels: adapters that parse a message (e-mail, IM), call one use case of :mod:`kb.desk.intake`, and
answer in the channel's own terms."""
