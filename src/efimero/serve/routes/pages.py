"""The demo page at `/` (the client library itself is served from /static)."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(tags=["pages"])


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def demo_page() -> HTMLResponse:
    return HTMLResponse(resources.files("efimero.serve").joinpath("static/index.html").read_text(encoding="utf-8"))
