"""The knowledge-centred (KCS) article template: 症状 / 环境 / 原因 / 解决方法 / 适用范围.

KCS v6 (Consortium for Service Innovation, "KCS v6 Practices Guide", "Content Standard") structures an article as
Issue (symptoms in the requester's words), Environment, Cause, Resolution; we add the scope it applies to.
Known-error articles made from post-incident reviews and drafts distilled from tickets use it.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Section headings, in order.
SECTIONS = ("症状", "环境", "原因", "解决方法", "适用范围")


@dataclass(frozen=True)
class KcsArticle:
    """The five parts of a KCS article, each Markdown (empty when unknown)."""

    symptom: str
    environment: str
    cause: str
    resolution: str
    scope: str

    def to_markdown(self) -> str:
        """The article body: one ``## `` section per part in :data:`SECTIONS` order; an unknown part says so."""
        parts = (self.symptom, self.environment, self.cause, self.resolution, self.scope)
        return (
            "\n\n".join(
                f"## {title}\n\n{text.strip() or '（待补充）'}" for title, text in zip(SECTIONS, parts, strict=True)
            )
            + "\n"
        )
