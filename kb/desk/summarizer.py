"""Optional rewriting of distilled drafts by a language model behind an OpenAI-compatible endpoint.

Off by default: set ``KB_SUMMARIZER_URL`` (for example ``http://127.0.0.1:8000/v1`` of a local vLLM or Ollama
server) and ``KB_SUMMARIZER_MODEL``. The draft sent is the one :mod:`kb.desk.distill` wrote, so it is already
redacted; the answer is redacted again and must keep every section of the KCS template, otherwise the original
draft is kept (a summariser may only improve wording, never drop a section or invent contact data).

Protocol: ``POST {url}/chat/completions`` with ``{"model", "messages", "temperature": 0}`` (OpenAI Chat Completions
API); the rewritten Markdown is ``choices[0].message.content``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import httpx

from kb.articles.kcs import SECTIONS
from kb.ingest.redaction import Redactor

logger = logging.getLogger(__name__)

SYSTEM_PROMPT = (
    "你是 IT 服务台的知识库编辑。把用户给出的知识条目草稿改写成通顺、简洁的中文，"
    "保留全部事实、命令、错误代码和工单号，不要编造任何内容；"
    "必须保留这些二级标题及其顺序：" + " / ".join(f"## {s}" for s in SECTIONS) + "。"
    "只输出改写后的 Markdown 正文。"
)


@dataclass(frozen=True)
class Summarizer:
    """A client of one OpenAI-compatible endpoint: ``url`` up to ``/v1``, ``model``, optional ``api_key``,
    ``timeout_s`` seconds per request."""

    url: str
    model: str
    api_key: str | None = None
    timeout_s: float = 60.0

    def rewrite(self, title: str, body: str, redactor: Redactor) -> str | None:
        """The rewritten body, or None when the endpoint fails or its answer drops a template section (the caller
        keeps its draft). Never raises for endpoint trouble: distillation goes on without the rewrite."""
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        payload = {
            "model": self.model,
            "temperature": 0,
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": f"# {title}\n\n{body}"},
            ],
        }
        try:
            response = httpx.post(
                f"{self.url.rstrip('/')}/chat/completions", json=payload, headers=headers, timeout=self.timeout_s
            )
            response.raise_for_status()
            text = str(response.json()["choices"][0]["message"]["content"])
        except (httpx.HTTPError, KeyError, IndexError, TypeError, ValueError) as exc:
            logger.warning("summarizer %s failed, keeping the draft: %s", self.url, exc)
            return None
        text = redactor.redact(text.strip())
        if text.startswith("# "):  # the title line we sent may come back
            text = text.split("\n", 1)[1].strip() if "\n" in text else ""
        missing = [s for s in SECTIONS if f"## {s}" not in text]
        if missing:
            logger.warning("summarizer answer lacks sections %s, keeping the draft", ", ".join(missing))
            return None
        return text + "\n"
