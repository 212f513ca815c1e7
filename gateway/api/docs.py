"""`GET /openapi.json` and `GET /docs`, a self-contained page (no CDN) that renders it."""

from __future__ import annotations

from importlib import resources

from flask import Blueprint, Response, current_app

from gateway.codecs import dumps
from gateway.openapi import build_document
from gateway.responses import json_response

blueprint = Blueprint("docs", __name__)


@blueprint.get("/openapi.json")
def openapi_json() -> Response:
    return json_response(dumps(build_document(current_app._get_current_object())))  # type: ignore[attr-defined]


@blueprint.get("/docs")
def docs_page() -> Response:
    page = resources.files("gateway").joinpath("static/docs.html").read_bytes()
    return Response(page, content_type="text/html; charset=utf-8")
