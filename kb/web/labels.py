"""Every Chinese word the pages show for a value kb stores or answers in English: article kinds, statuses and
visibilities, ticket statuses, channels and event kinds, SLA states, roles, review reasons, audit results, and the
title and sentence of each error ``code`` (:mod:`kb.errors`). The one place for these words: templates use the
``label`` filter (:func:`label`), view code imports the tables. The JSON API keeps its English values and messages.

A value missing from its table is shown as it is stored (a new kind reads in English until it is added here); a
test walks the stored vocabularies (``kb.articles.content.KINDS`` ...) and fails on any word missing here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

#: Article kinds (:data:`kb.articles.content.KINDS`).
ARTICLE_KINDS = {
    "article": "文章",
    "troubleshooting": "故障排查",
    "how_to": "操作指南",
    "faq": "常见问题",
    "reference": "参考",
    "known_error": "已知错误",
    "post_incident_review": "事后复盘",
}
#: Article lifecycle statuses (:data:`kb.articles.content.STATUSES`).
ARTICLE_STATUSES = {"draft": "草稿", "in_review": "审核中", "published": "已发布", "retired": "已停用"}
#: Article visibilities (:data:`kb.articles.content.VISIBILITIES`).
VISIBILITIES = {"public": "公开", "internal": "内部", "restricted": "受限"}
#: Where an article came from (``Article.source``).
ARTICLE_SOURCES = {"api": "接口", "import": "导入", "editor": "编辑器", "distill": "工单提炼", "web": "网页"}
#: Ticket statuses (:data:`kb.desk.workflow` lifecycle).
TICKET_STATUSES = {
    "new": "新建",
    "assigned": "已分派",
    "in_progress": "处理中",
    "pending": "挂起",
    "resolved": "已解决",
    "closed": "已关闭",
}
#: Ticket channels (:data:`kb.ingest.mapping.TICKET_CHANNELS`).
CHANNELS = {"web": "网页", "email": "邮件", "im": "即时通讯", "phone": "电话", "api": "接口"}
#: Impact and urgency levels (:data:`kb.desk.stated.LEVELS`).
LEVELS = {"high": "高", "medium": "中", "low": "低"}
#: Ticket event kinds (``TicketEvent.kind``, written by :mod:`kb.desk.workflow` and :mod:`kb.desk.intake`).
TICKET_EVENTS = {
    "created": "创建",
    "suggested": "推荐文章",
    "follow_up": "追加来信",
    "reopened": "重新打开",
    "assigned": "分派",
    "reassigned": "改派",
    "escalated": "升级",
    "note": "工作记录",
    "status": "状态变更",
    "closed": "关闭",
    "deflected": "自助解决",
    "sla": "SLA 状态变化",
    "email": "邮件",
}
#: SLA states of a ticket (:mod:`kb.desk.sla`).
SLA_STATES = {"ok": "正常", "at_risk": "即将超时", "breached": "已超时"}
#: Roles (:data:`kb.identity.permissions.GRANTS`).
ROLES = {
    "requester": "报障用户",
    "agent": "一线座席",
    "engineer": "二线工程师",
    "desk_lead": "服务台主管",
    "kb_editor": "知识编辑",
    "sysadmin": "系统管理员",
    "secadmin": "安全管理员",
    "auditadmin": "审计管理员",
}
#: Reasons of the editor review queue (:meth:`kb.articles.feedback.FeedbackStore.review_queue`).
REVIEW_REASONS = {"expired": "已过审核期", "poor_feedback": "反馈差"}
#: Results of an audit record (:mod:`kb.identity.audit`).
AUDIT_RESULTS = {"success": "成功", "failure": "失败", "denied": "拒绝"}

#: The tables by the name templates give the ``label`` filter.
TABLES: Mapping[str, Mapping[str, str]] = {
    "kind": ARTICLE_KINDS,
    "article_status": ARTICLE_STATUSES,
    "visibility": VISIBILITIES,
    "source": ARTICLE_SOURCES,
    "ticket_status": TICKET_STATUSES,
    "channel": CHANNELS,
    "level": LEVELS,
    "event": TICKET_EVENTS,
    "sla": SLA_STATES,
    "role": ROLES,
    "reason": REVIEW_REASONS,
    "audit_result": AUDIT_RESULTS,
}

#: Title of an error page by HTTP status; statuses not listed use :data:`DEFAULT_ERROR_TITLE`.
ERROR_TITLES = {
    400: "请求有误",
    401: "需要登录",
    403: "没有权限",
    404: "找不到页面",
    405: "不支持此操作",
    409: "与当前状态冲突",
    411: "请求不完整",
    413: "内容太大",
    422: "输入有误",
    423: "账号已锁定",
    429: "操作太频繁",
    500: "系统出错",
    503: "服务暂不可用",
}
DEFAULT_ERROR_TITLE = "无法完成"
#: The sentence an error page shows for each error ``code`` (the English detail of the API stays below it, folded,
#: for the desk's second line); codes not listed show their status's title.
ERROR_MESSAGES = {
    "not_found": "要找的内容不存在，或您没有查看它的权限。",
    "unauthorized": "请先登录。",
    "forbidden": "您的角色没有这项操作的权限；如需要，请联系系统管理员分配角色。",
    "must_change_password": "请先修改口令。",
    "conflict": "内容与现有数据冲突（可能已被他人修改或重复），请刷新后重试。",
    "illegal_transition": "文章或工单的当前状态不允许这一步操作。",
    "article_not_published": "这篇文章尚未发布（或已停用），不能评价、计数或用于自助解决。",
    "supersede_cycle": "替代文章经由它自己的替代链又回到本文，不能这样停用；请选链外的文章。",
    "invalid_input": "输入的内容不符合要求，请检查后重试。",
    "query_too_long": "搜索词太长，请缩短后再试。",
    "invalid_article": "文章格式有误（前置信息或 Markdown），未保存。",
    "weak_password": "新口令不符合口令策略。",
    "reserved_name": "这个用户名是系统自用的名称（如 kb、cli、system、desk-history），请换一个。",
    "account_locked": "账号因多次登录失败已被锁定，请稍后再试或联系安全管理员。",
    "rate_limited": "请求太频繁，请稍后再试。",
    "payload_too_large": "提交的内容太大。",
    "length_required": "表单请求必须带 Content-Length。",
    "csrf_failed": "表单已过期或来源不明（CSRF 校验失败），请刷新页面后重试。",
    "method_not_allowed": "此页面不支持这种请求方式。",
    "index_mismatch": "搜索索引与当前模型不一致，需要重建索引，请联系系统管理员。",
    "index_unavailable": "搜索索引暂不可用，请稍后再试。",
    "model_unavailable": "语义模型暂不可用，请稍后再试。",
    "internal_error": "系统出错，已记录日志；请把请求编号告诉系统管理员。",
    "http_error": "请求无法完成。",
    "unknown_group": "没有这个处理组：只能分派给服务目录、账号或历史工单中有的处理组。",
    "unknown_assignee": "没有这个处理人，或其账号已停用、没有处理工单的角色。",
    "assignee_not_in_group": "处理人不在所选的处理组里。",
    "data_key_mismatch": "动态口令的密钥无法解开（数据密钥已更换），请联系安全管理员。",
}

#: The sentence of a refused login (the API's 401 names no reason a browser user can act on otherwise).
LOGIN_ERRORS = {"unauthorized": "用户名、口令或动态口令不正确。", "must_change_password": "请先修改口令。"}
#: A CJK ideograph (CJK Unified Ideographs): a message holding one is written for the pages, in Chinese.
CJK = re.compile("[\u4e00-\u9fff]")


def label(value: object, table: str) -> str:
    """The Chinese word for ``value`` in the table named ``table`` (a key of :data:`TABLES`), else ``value`` as
    text ('' for None).

    Raises:
        KeyError: ``table`` names no table (a template typo fails its test, not silently).
    """
    if value is None:
        return ""
    text = str(value)
    return TABLES[table].get(text, text)


def error_title(status: int) -> str:
    """The heading of an error page for HTTP ``status``."""
    return ERROR_TITLES.get(status, DEFAULT_ERROR_TITLE)


def error_sentence(code: str, status: int) -> str:
    """The Chinese sentence of error ``code`` (:data:`ERROR_MESSAGES`), else the title of ``status``."""
    return ERROR_MESSAGES.get(code, error_title(status) + "。")


def error_text(code: str, status: int, detail: str, overrides: Mapping[str, str] | None = None) -> tuple[str, str]:
    """(sentence, detail) a page shows for an error: ``detail`` itself when it is Chinese (the pages' own messages
    are) and then no detail; else the sentence of ``code`` (``overrides`` first, then :data:`ERROR_MESSAGES`,
    then the title of ``status``) and ``detail`` (the API's English sentence) for the folded 技术细节."""
    if CJK.search(detail):
        return detail, ""
    sentence = (overrides or {}).get(code) or error_sentence(code, status)
    return sentence, "" if detail == sentence else detail
