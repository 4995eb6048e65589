"""The pages for people (the agent workbench): server-rendered Jinja2 templates with autoescape, htmx for partial
updates and Apache ECharts for charts, both vendored under ``static/vendor`` (no CDN, no build step).

Pages live under ``/ui/`` except the home page ``/``, so they never collide with the JSON API. They call the same
use cases as the API (``kb.service.KnowledgeBase`` and its stores) and the same permission check
(:class:`kb.api.deps.Requires`); :mod:`kb.web.app` builds the whole application (API + pages).
"""
