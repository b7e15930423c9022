"""The ASGI application of the HTTP API: routes, error handlers, docs, console files.

:func:`build_app` assembles the FastAPI application around a
:class:`~pyrstmdb.server.http.gateway.Gateway` and the subscription hub:

* ``/v1/…`` routes (:mod:`.routes`, :mod:`.streams`), behind the body limit
  and bearer authentication (:mod:`.guards`);
* ``/openapi.json`` (OpenAPI 3.1 from the typed models), ``/docs`` (Swagger UI
  from files shipped in a Python package, no CDN), ``/health``;
* everything else: the web console's files from :data:`STATIC_DIR`
  (``index.html`` for ``/``). A path under ``/v1/`` that matches no route is
  a JSON 404, and a known route with the wrong method a JSON 405.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles

from pyrstmdb import __version__
from pyrstmdb.protocol import MAX_PAYLOAD
from pyrstmdb.server.http import console_api, errors, models, routes, streams
from pyrstmdb.server.http.gateway import Gateway
from pyrstmdb.server.http.guards import BearerAuth, BodyLimit
from pyrstmdb.server.http.sse import EventStream
from pyrstmdb.subscriptions import Hub

STATIC_DIR = Path(__file__).resolve().parent / "static"
DOCS_ASSETS = "/docs/assets"
KEEPALIVE_SECS = 15.0

DESCRIPTION = """The pyrstmdb HTTP API: the operations of the RCP protocol as JSON over HTTP.

Results are the RCP result objects of the same operation, field for field. Errors are
`{"error": {"code", "message", "retryable", "details"}}` with the RCP error code.
Event streams are Server-Sent Events. When authentication is required, send
`Authorization: Bearer <token>`."""


class _Console:
    """The console's files; ``/v1/…`` paths that reach here match no route (404)."""

    def __init__(self, directory: Path) -> None:
        self._files = StaticFiles(directory=directory, html=True, check_dir=False)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or path.startswith("/v1/") or path == "/v1":
            raise HTTPException(404)
        await self._files(scope, receive, send)


def _docs_assets() -> Path:
    return Path(str(files("fastapi_offline") / "static"))


def build_app(
    gateway: Gateway,
    hub: Hub,
    *,
    auth_required: bool,
    token_hashes: frozenset[str],
    keepalive_secs: float = KEEPALIVE_SECS,
    static_dir: Path = STATIC_DIR,
) -> FastAPI:
    app = FastAPI(
        title="pyrstmdb HTTP API",
        version=__version__,
        description=DESCRIPTION,
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    app.state.gateway = gateway
    app.state.hub = hub
    app.state.keepalive_secs = keepalive_secs
    app.state.streams = set[EventStream]()
    errors.install(app)
    system = _system_router()
    console = console_api.console_router(gateway.core, gateway.waiter)
    for router in (routes.router, streams.router, system, console):
        app.include_router(router)
    app.state.route_methods = [
        (route.path_regex, set(route.methods or ()))
        for router in (routes.router, streams.router, system, console)
        for route in router.routes
        if isinstance(route, APIRoute)
    ]
    _document_bearer_auth(app)
    app.mount(DOCS_ASSETS, StaticFiles(directory=_docs_assets()), name="docs-assets")
    app.router.default = _Console(static_dir)
    app.add_middleware(BearerAuth, required=auth_required, token_hashes=token_hashes)
    app.add_middleware(BodyLimit, limit=MAX_PAYLOAD)
    return app


def _document_bearer_auth(app: FastAPI) -> None:
    """Describe the bearer token in the OpenAPI document (optional: servers may not require
    it), so the reference's "Authorize" button works when ``auth.required`` is set."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            schemes = document.setdefault("components", {}).setdefault("securitySchemes", {})
            schemes["bearer"] = {"type": "http", "scheme": "bearer"}
            document["security"] = [{}, {"bearer": []}]
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _system_router() -> APIRouter:
    router = APIRouter()

    @router.get("/health", response_model=models.Health, tags=["system"])
    async def health() -> Response:
        """Liveness: the server is up."""
        return routes.json({"status": "ok"})

    @router.get("/docs", include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="pyrstmdb HTTP API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
        )

    return router
