"""Web pages: the first page, a map of the loaded units."""

from pathlib import Path

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from api.access import PUBLIC

router = APIRouter(include_in_schema=False, dependencies=[Depends(PUBLIC)])
templates = Jinja2Templates(directory=Path(__file__).parent.parent / "templates")


@router.get("/", response_class=HTMLResponse)
def index(request: Request) -> HTMLResponse:
    """Map of the administrative units, with search and point lookup."""
    return templates.TemplateResponse(request, "index.html", {})
