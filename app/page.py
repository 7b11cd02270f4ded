"""The web page at `/`: its HTML, JavaScript and CSS are files of this package (uPlot vendored from npm)."""

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from app.access.permissions import PUBLIC

WEB_DIR = Path(__file__).resolve().parent / "web"


def install_web_page(app: FastAPI) -> None:
    app.mount("/web", StaticFiles(directory=WEB_DIR), name="web")

    @app.get("/", include_in_schema=False, dependencies=[PUBLIC])
    def index() -> FileResponse:
        return FileResponse(WEB_DIR / "index.html", headers={"Cache-Control": "no-cache"})
