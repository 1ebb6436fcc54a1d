"""Server-rendered pages: Jinja2 templates and static assets shipped in the package
(no CDN: the dashboard works in an air-gapped SOC)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import Response
from fastapi.templating import Jinja2Templates

HERE = Path(__file__).parent
STATIC = HERE / "static"
TEMPLATES = Jinja2Templates(
    env=jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True, auto_reload=False
    )
)


def render(
    request: Request, template: str, values: dict[str, Any], *, status: int = 200
) -> Response:
    return TEMPLATES.TemplateResponse(request, template, values, status_code=status)
