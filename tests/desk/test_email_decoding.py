"""Real Chinese mail (issue 10): GBK text labelled gb2312, RFC 2047 in gb2312/gbk/gb18030, raw 8-bit GBK headers,
``charset=x-unknown``, HTML-only bodies, NUL and control characters. The test mail is built with the ``email``
package the way Foxmail / Outlook / webmail send it, and delivered as bytes."""

from __future__ import annotations

import base64
from email.message import EmailMessage

import pytest
from fastapi.testclient import TestClient

from kb.desk.channels.email import handle_message
from kb.desk.channels.mail_text import decode_bytes
from kb.service import KnowledgeBase
from tests.helpers import kb_of

#: 镕 and 堃 are in GBK but not in GB2312; 𠮷 (U+20BB7) only in GB18030 (four bytes).
GBK_ONLY = "朱镕基的邮箱堃喆无法登录"
GB18030_ONLY = "𠮷野家订餐系统打不开"


def _mail(subject_header: str, body: bytes, content_type: str, cte: str = "base64") -> bytes:
    payload = base64.encodebytes(body) if cte == "base64" else body
    head = (
        "From: =?gbk?b?" + base64.b64encode("王强".encode("gbk")).decode() + "?= <wang.qiang@example.com>\r\n"
        "To: helpdesk@example.com\r\n"
        f"Subject: {subject_header}\r\n"
        "Message-ID: <cn-1@example.com>\r\n"
        "MIME-Version: 1.0\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Transfer-Encoding: {cte}\r\n\r\n"
    )
    return head.encode("ascii") + payload


def _file(kb: KnowledgeBase, raw: bytes) -> tuple[str, str]:
    result = handle_message(kb.tickets, raw, "日常服务")
    ticket = kb.desk.get(result.ticket_id)
    return ticket.title, ticket.description


@pytest.mark.parametrize(
    ("codec", "label", "text"),
    [("gbk", "gb2312", GBK_ONLY), ("gbk", "gbk", GBK_ONLY), ("gb18030", "gb18030", GB18030_ONLY),
     ("gb18030", "gb2312", GB18030_ONLY)],
)  # fmt: skip
def test_rfc2047_subjects_and_bodies_in_gb_charsets(client: TestClient, codec: str, label: str, text: str) -> None:
    subject = "=?" + label + "?B?" + base64.b64encode(text.encode(codec)).decode() + "?="
    raw = _mail(subject, f"{text}\r\n请尽快处理。\r\n".encode(codec), f'text/plain; charset="{label}"')
    title, description = _file(kb_of(client), raw)
    assert title == text
    assert description == f"{text}\n请尽快处理。"


def test_raw_8bit_gbk_subject_and_body(client: TestClient) -> None:
    raw = (
        b"From: wang.qiang@example.com\r\nTo: helpdesk@example.com\r\nSubject: " + "打印机脱机，无法打印".encode("gbk")
        + b"\r\nMessage-ID: <raw-8bit@example.com>\r\nContent-Type: text/plain\r\n"
        + b"Content-Transfer-Encoding: 8bit\r\n\r\n"
        + "三楼的打印机显示脱机。\r\n".encode("gbk")
    )  # fmt: skip
    assert _file(kb_of(client), raw) == ("打印机脱机，无法打印", "三楼的打印机显示脱机。")


@pytest.mark.parametrize("codec", ["utf-8", "gbk"])
def test_x_unknown_charset_is_guessed_not_a_500(client: TestClient, codec: str) -> None:
    raw = _mail("VPN", "VPN 连接失败，错误 809。".encode(codec), "text/plain; charset=x-unknown", cte="8bit")
    assert _file(kb_of(client), raw) == ("VPN", "VPN 连接失败，错误 809。")


def test_html_only_mail_drops_style_and_script_and_keeps_paragraphs(client: TestClient) -> None:
    html = (
        "<html><head><style>p { color: red; }</style><script>alert('x')</script></head><body>"
        "<p>您好：</p><p>邮箱<b>无法</b>登录，提示密码错误。<br>已经重置过一次。</p><div>谢谢</div></body></html>"
    )
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "li@example.com", "helpdesk@example.com", "邮箱无法登录"
    message.set_content(html, subtype="html", charset="gbk")
    title, description = _file(kb_of(client), message.as_bytes())
    assert title == "邮箱无法登录"
    assert description == "您好：\n\n邮箱无法登录，提示密码错误。\n已经重置过一次。\n\n谢谢"


def test_nul_and_control_characters_are_removed(client: TestClient) -> None:
    raw = _mail("=?utf-8?B?" + base64.b64encode("共享盘\x00打不开\x1b".encode()).decode() + "?=",
                "S 盘\x00打不开\x07\r\n请处理\x0c。".encode(), "text/plain; charset=utf-8")  # fmt: skip
    assert _file(kb_of(client), raw) == ("共享盘打不开", "S 盘打不开\n请处理。")


def test_decode_bytes_never_raises() -> None:
    assert decode_bytes("镕".encode("gbk"), "gb2312") == "镕"
    assert decode_bytes(b"\xff\xfe\xfd", "utf-8") == decode_bytes(b"\xff\xfe\xfd", None)
    assert decode_bytes("错误".encode("gbk"), "no-such-charset") == "错误"
    assert decode_bytes("错误".encode(), "iso-2022-jp") == "错误"  # the label lies: guessed
