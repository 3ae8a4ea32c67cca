"""web_search (pluggable backend) and http_get (allowlisted hosts only, see tools.net)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import httpx
from django.conf import settings
from pydantic import BaseModel, ConfigDict, Field

from tools.builtins.memory_tools import search as memory_search
from tools.net import URLNotAllowed, safe_fetch
from tools.registry import ToolError, register

LOCAL_SOURCE = "local knowledge base"


class WebSearchArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str = Field(min_length=1, max_length=500, description="Search terms.")
    k: int = Field(default=5, ge=1, le=10, description="How many results.")


def local_backend(query: str, k: int) -> dict:
    """Searches the shared knowledge base in memory; no network is used."""
    hits = memory_search(query, None, k)
    results = [{"title": str(hit["metadata"].get("title") or hit["metadata"].get("source") or f"entry {hit['id']}"),
                "url": hit["metadata"].get("url"), "snippet": hit["content"][:500], "score": hit["score"]}
               for hit in hits]
    return {"source": LOCAL_SOURCE, "note": "results come from the local knowledge base, not the internet",
            "results": results}


def http_backend(url: str, query: str, k: int) -> dict:
    """GET <WEB_SEARCH_URL>?q=<query>&k=<k>, expecting {"results": [{"title", "url", "snippet"}]}.

    The search host must be on HTTP_GET_ALLOWED_HOSTS like any other outbound request.
    """
    separator = "&" if "?" in url else "?"
    try:
        response = safe_fetch(f"{url}{separator}{urlencode({'q': query, 'k': k})}",
                              headers={"Accept": "application/json"})
    except URLNotAllowed as error:
        raise ToolError(f"search backend refused: {error}") from None
    except httpx.HTTPError as error:
        raise ToolError(f"search backend unreachable: {type(error).__name__}") from None
    if response.status != 200:
        raise ToolError(f"search backend answered HTTP {response.status}")
    try:
        items = json.loads(response.text).get("results", [])
    except (ValueError, AttributeError):
        raise ToolError("search backend did not answer with a JSON object") from None
    results = [{"title": str(item.get("title", ""))[:300], "url": item.get("url"),
                "snippet": str(item.get("snippet", ""))[:500]} for item in items[:k] if isinstance(item, dict)]
    return {"source": url.split("?")[0], "results": results}


@register(name="web_search", args=WebSearchArgs, timeout_s=20.0,
          description="Search for information on a topic. Without a configured search service it searches "
                      "the local knowledge base and says so in 'source'.")
def web_search(arguments: WebSearchArgs, context: Any) -> dict:
    url = getattr(settings, "WEB_SEARCH_URL", None)
    if url:
        return http_backend(url, arguments.query, arguments.k)
    return local_backend(arguments.query, arguments.k)


class HttpGetArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(min_length=8, max_length=2000, pattern=r"^https?://",
                     description="An http(s) URL on an allowed host (HTTP_GET_ALLOWED_HOSTS).")


@register(name="http_get", args=HttpGetArgs, timeout_s=30.0,
          description="Fetch a web page or API response by URL (GET). Only allowlisted hosts; "
                      "the body is returned as text and cut at the size limit.")
def http_get(arguments: HttpGetArgs, context: Any) -> dict:
    try:
        response = safe_fetch(arguments.url)
    except URLNotAllowed as error:
        raise ToolError(str(error)) from None
    except httpx.TimeoutException:
        raise ToolError(f"no complete answer within {settings.HTTP_GET_TIMEOUT:g} s") from None
    except httpx.HTTPError as error:
        raise ToolError(f"request failed: {type(error).__name__}: {error}") from None
    return {"url": response.url, "status": response.status,
            "content_type": response.headers.get("content-type", ""), "text": response.text,
            "truncated": response.truncated}
