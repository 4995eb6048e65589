"""GET /search."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import TypeAdapter
from starlette.concurrency import run_in_threadpool

from kb.api.deps import KB, CurrentUser, requires
from kb.api.guard import GuardedRoute
from kb.api.params import MAX_ID
from kb.articles.filters import ArticleFilter
from kb.identity.permissions import Permission as P
from kb.identity.scopes import readable_article
from kb.search.results import SearchRequest, SearchResult

router = APIRouter(tags=["search"], route_class=GuardedRoute)

#: The answer of ``GET /search`` encoded to JSON bytes by pydantic-core in one call: the same bytes as FastAPI's
#: ``response_model`` path (validate in a worker thread, convert to Python, ``json.dumps``): 1.44 ms a 10-hit
#: answer without the thread hop against 0.016 ms (one process, load average 15 on 2 cores).
SEARCH_RESULT_JSON = TypeAdapter(SearchResult)


def _split(values: list[str] | None) -> tuple[str, ...]:
    return tuple(v.strip() for value in values or [] for v in value.split(",") if v.strip())


@router.get("/search", response_model=SearchResult, dependencies=[requires(P.SEARCH)])
async def search(
    request: Request,
    user: CurrentUser,
    q: Annotated[str, Query(description="Query text, at most 1,000 characters.")] = "",
    mode: Annotated[str, Query(description="hybrid (default), bm25 or vector.")] = "hybrid",
    limit: Annotated[int, Query(description="Articles to return, 1 to 100.")] = 10,
    kind: Annotated[list[str] | None, Query(description="Kinds, comma-separated or repeated.")] = None,
    service: Annotated[list[str] | None, Query()] = None,
    tags: Annotated[list[str] | None, Query(description="All of these tags.")] = None,
    status: Annotated[list[str] | None, Query(description="Statuses; default published.")] = None,
    explain: bool = False,
    fusion: Annotated[str | None, Query(description="weighted (default) or rrf.")] = None,
    bm25_weight: Annotated[float | None, Query(description="Weighted fusion: BM25 weight, 0 to 1.")] = None,
) -> Response:
    """Hybrid search over articles (see :mod:`kb.search.engine`); the JSON of a :class:`SearchResult`.

    Async, with the search itself in one worker thread, and the knowledge base read from the app state rather
    than through the sync ``KB`` dependency: the filters, the request and the JSON encoding are microseconds of
    CPU, and each sync dependency or handler costs a thread hop (a hand-off of the GIL between the event loop and
    a worker, which waits up to ``sys.getswitchinterval()`` when the loop is busy): 3 hops a request, was 4.
    The user stays the ``CurrentUser`` dependency (tests override it)."""
    kb = request.app.state.kb
    statuses = _split(status) or ("published",)
    if set(statuses) != {"published"}:
        user.require_editor("Searching articles that are not published")
    flt = ArticleFilter(
        statuses=statuses,
        kinds=_split(kind),
        services=_split(service),
        tags=_split(tags),
        viewer=user,
    )
    asked = SearchRequest(
        query=q, mode=mode, limit=limit, filters=flt, explain=explain, fusion=fusion, bm25_weight=bm25_weight
    )
    result = await run_in_threadpool(kb.engine.search, asked)
    return Response(SEARCH_RESULT_JSON.dump_json(result), media_type="application/json")


@router.get("/search/why", dependencies=[requires(P.SEARCH)])
def why(
    kb: KB,
    user: CurrentUser,
    q: Annotated[str, Query(description="The query.")],
    article_id: Annotated[int, Query(ge=1, le=MAX_ID, description="The article expected (or not) in the answer.")],
) -> dict[str, Any]:
    """Why an article did or did not match a query (see :mod:`kb.search.why`). 404 for an unknown article."""
    readable_article(user, kb.store.get(article_id))
    return kb.engine.why(q, article_id, user).as_json()
