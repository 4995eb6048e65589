"""Text of real Chinese mail: headers and bodies decoded the way mail clients in China actually send them.

- Charsets labelled ``gb2312``, ``gbk``, ``cp936``, ``x-gbk``… are decoded as **GB18030**, the superset of all of
  them (WHATWG Encoding Standard: the labels gb2312, gbk and x-gbk all name the GBK decoder, and GB18030 decodes
  every GBK byte sequence). Mail labelled gb2312 routinely holds GBK-only characters (镕, 堃, 喆, 〖…〗).
- Raw 8-bit header bytes (no RFC 2047 encoded word; Foxmail and older Outlook do this) and parts with a missing,
  ``x-unknown``, ``unknown-8bit`` or unknown charset are tried as UTF-8 first (strict), then GB18030, then
  decoded as UTF-8 with replacement characters: never an exception.
- HTML-only bodies become text with inscriptis (drops ``<style>`` and ``<script>``, keeps paragraphs and line
  breaks).
"""

from __future__ import annotations

import codecs
import email.header
from email.message import Message

from inscriptis import get_text

#: Labels decoded as GB18030 (a superset of each).
GB_LABELS = frozenset({"gb2312", "gb_2312", "gb_2312-80", "gbk", "x-gbk", "cp936", "ms936", "windows-936",
                       "euc-cn", "x-euc-cn", "csgb2312", "gb18030", "chinese", "iso-ir-58"})  # fmt: skip


def decode_bytes(data: bytes, charset: str | None) -> str:
    """``data`` as text: by ``charset`` (GB labels as GB18030), else UTF-8, else GB18030, else UTF-8 with U+FFFD.

    Never raises: an unknown or wrong label falls back as for no label.
    """
    label = (charset or "").strip().strip('"').lower()
    if label in GB_LABELS:
        return data.decode("gb18030", "replace")
    if label and label not in {"us-ascii", "ascii", "utf-8", "utf8"}:
        try:
            codecs.lookup(label)
            return data.decode(label)
        except (LookupError, UnicodeDecodeError):
            pass  # x-unknown, unknown-8bit, or the label lies: guess as for no label
    for guess in ("utf-8", "gb18030"):
        try:
            return data.decode(guess)
        except UnicodeDecodeError:
            continue
    return data.decode("utf-8", "replace")


def header_text(message: Message, name: str) -> str:
    """The decoded value of header ``name`` of ``message`` (parsed with ``policy=compat32``), whitespace folded.

    RFC 2047 encoded words are decoded with :func:`decode_bytes` (so ``=?gb2312?B?...?=`` holding GBK works); raw
    8-bit bytes (kept by the parser as surrogate escapes) are guessed the same way. "" when absent.
    """
    raw = message.get(name)
    if raw is None:
        return ""
    value = str(raw) if not isinstance(raw, email.header.Header) else raw.encode()
    parts: list[str] = []
    for chunk, charset in email.header.decode_header(value):
        # no encoded word: 8-bit bytes come back as surrogate escapes
        data = chunk.encode("utf-8", "surrogateescape") if isinstance(chunk, str) else chunk
        parts.append(decode_bytes(data, charset))
    return " ".join("".join(parts).split())


def body_text(message: Message) -> str:
    """The text of the mail: the first ``text/plain`` part, else the first ``text/html`` part as text; "" if none.

    Attachments (``Content-Disposition: attachment``) are skipped. Lines are right-stripped; line breaks kept.
    """
    plain: Message | None = None
    html: Message | None = None
    for part in message.walk():
        if part.is_multipart() or part.get_content_disposition() == "attachment":
            continue
        kind = part.get_content_type()
        if kind == "text/plain" and plain is None:
            plain = part
        elif kind == "text/html" and html is None:
            html = part
    chosen = plain or html
    if chosen is None:
        return ""
    payload = chosen.get_payload(decode=True)
    data = payload if isinstance(payload, bytes) else b""
    text = decode_bytes(data, chosen.get_content_charset())
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if chosen is html:  # inscriptis indents blocks and may leave runs of empty lines
        lines = [line.strip() for line in get_text(text).split("\n")]
        lines = [line for i, line in enumerate(lines) if line or (i > 0 and lines[i - 1])]
    return "\n".join(line.rstrip() for line in lines).strip()
