"""The ``self_service`` channel: the help centre's search and articles.

::

    GET /help/v1/search?q=roaming&limit=5  -> {"query", "total", "results": [{"id", "title", ...}]}
    GET /help/v1/articles/{id}             -> {"id", "title", "body", "updated_at"}
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

from democare._articles import article, search
from democare._http import json_response, not_found
from democare._parse import query_int, query_str

DEFAULT_RESULTS: Final = 5
MAX_RESULTS: Final = 20
MAX_QUERY_LENGTH: Final = 200

routes = web.RouteTableDef()


@routes.get("/help/v1/search")
async def search_articles(request: web.Request) -> web.Response:
    """The best-matching articles for ``q``; ``total`` counts every match, not just those shown."""
    query = query_str(request, "q", max_length=MAX_QUERY_LENGTH)
    limit = query_int(request, "limit", default=DEFAULT_RESULTS, minimum=1, maximum=MAX_RESULTS)
    hits = search(query)
    return json_response(
        {
            "query": query,
            "total": len(hits),
            "results": [
                {
                    "id": hit.article.article_id,
                    "title": hit.article.title,
                    "url": f"/help/v1/articles/{hit.article.article_id}",
                    "score": hit.score,
                }
                for hit in hits[:limit]
            ],
        }
    )


@routes.get("/help/v1/articles/{article_id}")
async def get_article(request: web.Request) -> web.Response:
    """One article in full."""
    found = article(request.match_info["article_id"])
    if found is None:
        raise not_found()
    return json_response(
        {
            "id": found.article_id,
            "title": found.title,
            "body": found.body,
            "updated_at": found.updated_at,
        }
    )
