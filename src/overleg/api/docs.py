"""The API's documentation pages, served from the service itself, never from a CDN.

Swagger UI (``/docs``) and ReDoc (``/redoc``) load their scripts and styles from the assets
the ``fastapi-offline`` package ships, mounted at ``/docs-assets``: the pages work without
internet, and no third-party JavaScript runs in a youth-care application. Every answer of
the service carries a strict Content-Security-Policy: nothing may be loaded from elsewhere;
on the two pages, scripts only from the service and the pages' own inline script, allowed by
its hash.
"""

from __future__ import annotations

import base64
import hashlib
import re
from importlib.resources import files

from fastapi import FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders

ASSETS_URL = "/docs-assets"
ASSETS = files("fastapi_offline") / "static"
DOCS_PAGES = ("/docs", "/docs/oauth2-redirect", "/redoc")

# Everything else the service answers is data: nothing in it may load or run anything.
API_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def page_policy(html: str) -> str:
    """The policy of one documentation page: the service's own assets, and its inline
    scripts by their SHA-256 (ReDoc also runs a worker from a blob URL and inline styles)."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in _INLINE_SCRIPT.findall(html)
    )
    return (
        "default-src 'none'; "
        f"script-src 'self' {hashes}; "
        "style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
        "worker-src 'self' blob:; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ).replace("  ", " ")


def _page(html: HTMLResponse) -> HTMLResponse:
    body = bytes(html.body).decode()
    return HTMLResponse(body, headers={"Content-Security-Policy": page_policy(body)})


def install(api: FastAPI) -> None:
    """Serve /docs and /redoc from the packaged assets, with their policies; and give every
    other answer the API's policy (``secured``). The app is built with ``docs_url=None,
    redoc_url=None``."""
    api.mount(ASSETS_URL, StaticFiles(directory=str(ASSETS)), name="docs-assets")
    openapi_url = api.openapi_url or "/openapi.json"

    @api.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return _page(
            get_swagger_ui_html(
                openapi_url=openapi_url,
                title=f"{api.title}: API",
                oauth2_redirect_url="/docs/oauth2-redirect",
                swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
                swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
                swagger_favicon_url=f"{ASSETS_URL}/favicon.png",
            )
        )

    @api.get("/docs/oauth2-redirect", include_in_schema=False)
    def swagger_ui_redirect() -> HTMLResponse:
        return _page(get_swagger_ui_oauth2_redirect_html())

    @api.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return _page(
            get_redoc_html(
                openapi_url=openapi_url,
                title=f"{api.title}: API",
                redoc_js_url=f"{ASSETS_URL}/redoc.standalone.js",
                redoc_favicon_url=f"{ASSETS_URL}/favicon.png",
                with_google_fonts=False,
            )
        )


def secured(headers: MutableHeaders) -> None:
    """Give an answer that sets no policy of its own the API's (and ``nosniff``)."""
    if "content-security-policy" not in headers:
        headers["Content-Security-Policy"] = API_POLICY
    if "x-content-type-options" not in headers:
        headers["X-Content-Type-Options"] = "nosniff"
