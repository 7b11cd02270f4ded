"""Swagger UI (5.x, renders OpenAPI 3.1), served from the copy packaged in `fastapi_offline`.

No page or asset comes from a CDN, so `/docs` works without internet. (ReDoc is left out: its page
fetches its logo from a CDN.)"""

import base64
import hashlib
import re
from importlib.resources import files

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from app.access.permissions import PUBLIC

STATIC_PREFIX = "/static/docs"
ASSETS = files("fastapi_offline") / "static"  # swagger-ui-bundle.js, swagger-ui.css, favicon.png


INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def install_docs(app: FastAPI) -> list[str]:
    """Serve Swagger UI at /docs; returns the SHA-256 (base64) of its inline start-up script, which the
    Content Security Policy allows by hash (no other inline script runs)."""
    app.mount(STATIC_PREFIX, StaticFiles(directory=str(ASSETS)), name="docs-assets")
    page = get_swagger_ui_html(
        openapi_url=app.openapi_url or "/openapi.json",
        title=f"{app.title} - Swagger UI",
        swagger_js_url=f"{STATIC_PREFIX}/swagger-ui-bundle.js",
        swagger_css_url=f"{STATIC_PREFIX}/swagger-ui.css",
        swagger_favicon_url=f"{STATIC_PREFIX}/favicon.png",
    )
    body = bytes(page.body)

    @app.get("/docs", include_in_schema=False, dependencies=[PUBLIC])
    def swagger_ui() -> HTMLResponse:
        return HTMLResponse(body)

    scripts = INLINE_SCRIPT.findall(body.decode())
    return [base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() for script in scripts]
