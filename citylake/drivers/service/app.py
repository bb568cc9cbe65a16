"""The data service: the share rules of :mod:`citylake.stages.share` over HTTP (FastAPI).

    citylake serve --host 127.0.0.1 --port 8700          # OpenAPI at /docs and /openapi.json
    citylake keys issue --department gaj                 # prints the key once

Callers send a key as ``Authorization: Bearer <key>``; without one they are the public. The
contract (``/api/v1``):

* ``GET /catalog`` — the public: open resources with their open fields; a department: every entry,
  with its share type and what the department may do with it;
* ``GET /open/{resource}/rows`` and ``/open/{resource}/download?format=csv|xlsx|json`` — anyone; open
  resources and their public fields only, 404 for anything else;
* ``POST /requests`` ``{resource, fields, purpose, unmasked}``, ``GET /requests?role=provider|consumer``,
  ``POST /requests/{id}/approve`` and ``/reject`` ``{reason}``;
* ``GET /resources/{resource}/rows?limit=&offset=&<field>=<value>`` — a department's rows under its
  basis (own, 无条件共享, or a grant), 403 with the reason otherwise;
* ``GET /audit`` — administrators: all; a department: its own resources'.

Every error is JSON ``{"error": "…"}`` with its status — unknown paths (404), wrong methods (405),
invalid parameters (422), too many requests (429, :mod:`citylake.drivers.service.limits`) and
unexpected failures (500: the traceback goes to the server's log only). Keys are never logged: the
log has no access lines, the audit log names the key's holder, the limits name a key by its digest.
The state lives in the directory database (``CITYLAKE_DIRECTORY_URL``; its migrations run at start).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session, sessionmaker
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from citylake import __version__
from citylake.core.registry import Registration, load_base_libraries, load_registrations
from citylake.core.settings import Settings
from citylake.drivers.service import quarantine
from citylake.drivers.service.limits import RateLimit
from citylake.drivers.service.site import router as site_router
from citylake.stages import share
from citylake.stages.publish import migrations
from citylake.stages.publish.models import ShareRequest
from citylake.stages.query import NotCuratedYet, QueryError, column_titles, directory_codes

API = "/api/v1"
log = logging.getLogger("citylake.service")
Limit = Annotated[int, Query(ge=1, le=share.MAX_PAGE, description="rows per page")]
Offset = Annotated[int, Query(ge=0, description="rows to skip")]
DOWNLOAD_TYPES = {"csv": "text/csv; charset=utf-8",
                  "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                  "json": "application/json"}


class RequestIn(BaseModel):
    resource: str
    fields: list[str] | None = Field(None, description="the fields asked for (all shared fields when left out)")
    purpose: str = Field(..., description="用途: what the data is for")
    unmasked: list[str] = Field(default_factory=list, description="personal fields asked for in the clear")


class DecisionIn(BaseModel):
    reason: str | None = None


class ServiceState:
    """What every request needs: the settings, the registrations, the database."""

    def __init__(self, settings: Settings):
        self.settings = settings
        regs = load_registrations(settings.resources_dir)
        self.regs: list[Registration] = regs + [lib.reg for lib in load_base_libraries(settings.resources_dir, regs)]
        self.by_resource = {r.resource: r for r in self.regs}
        migrations.prepare_sqlite(settings.directory_url)
        self.engine = create_engine(settings.directory_url)
        migrations.upgrade(self.engine)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self.sessions() as s, s.begin():
            yield s

    def is_live(self, key: str) -> bool:
        """Whether ``key`` is a live key (for the rate limits, which count a live key on its own)."""
        with self.session() as s:
            return share.find_key(s, key) is not None

    def reg(self, resource: str, *, public: bool = False) -> Registration:
        reg = self.by_resource.get(resource)
        if reg is None:
            raise share.NotFound(f"no resource {resource!r}" + ("" if public else
                                 f"; resources: {', '.join(sorted(self.by_resource))}"))
        return reg


def caller(request: Request) -> share.Caller:
    """The caller a request's bearer key names; the public without one; 401 for a bad key."""
    header = request.headers.get("authorization")
    if not header:
        return share.PUBLIC_CALLER
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise share.ShareError("send the key as 'Authorization: Bearer <key>'", status=401)
    state: ServiceState = request.app.state.citylake
    with state.session() as s:
        found = share.find_key(s, key.strip())
        if found is None:
            raise share.ShareError("unknown or revoked key", status=401)
        return share.Caller(found.holder, found.is_admin)


Anyone = Annotated[share.Caller, Depends(caller)]


def department(who: Anyone) -> share.Caller:
    """A caller with a key (a department or an administrator); 401 for the public."""
    if who.is_public:
        raise share.ShareError("this needs a key: 'Authorization: Bearer <key>'", status=401)
    return who


Keyed = Annotated[share.Caller, Depends(department)]


def create_app(settings: Settings | None = None) -> FastAPI:
    state = ServiceState(settings or Settings.from_env())
    app = FastAPI(title="citylake data service", version=__version__,
                  description="城市大数据资源中心 数据共享与开放接口 (一次汇集、多次共享)")
    app.state.citylake = state

    @app.exception_handler(share.ShareError)
    async def _share_error(_: Request, exc: share.ShareError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=exc.status)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        return JSONResponse({"error": f"invalid request: {problems}"}, status_code=422)

    app.add_middleware(RateLimit, per_key=state.settings.service_rate_per_minute,
                       anonymous=state.settings.service_anon_rate_per_minute, is_live=state.is_live)
    app.add_middleware(Unexpected)  # outermost: also what fails in the rate limits

    def _rows(reg: Registration, acc: share.Access, limit: int, offset: int, filters: dict[str, str]) -> dict:
        try:
            result = share.read(state.settings, state.regs, reg, acc, limit=limit, offset=offset, filters=filters)
            total = share.count(state.settings, state.regs, reg, acc, filters)
        except NotCuratedYet as exc:
            raise share.NotFound(str(exc)) from None
        except QueryError as exc:
            raise share.ShareError(str(exc)) from None
        titles = column_titles(reg)
        return {"resource": reg.resource, "basis": acc.basis, "fields": acc.fields,
                "titles": {f: titles.get(f, f) for f in acc.fields}, "unmasked": acc.unmasked,
                "total": total, "limit": limit, "offset": offset,
                "rows": share.records(result, state.settings.timezone)}

    def _filters(request: Request, known: tuple[str, ...]) -> dict[str, str]:
        return {k: v for k, v in request.query_params.items() if k not in known}

    # ---- the catalog -------------------------------------------------------------------------------
    @app.get(f"{API}/catalog", tags=["catalog"], summary="the directory as the caller may see it")
    def catalog(who: Anyone) -> dict:
        codes, _ = directory_codes(state.settings)
        entries = []
        with state.session() as s:
            for reg in state.regs:
                if reg.is_base:
                    continue
                titles = column_titles(reg)
                if who.is_public:
                    if not share.is_open(reg):
                        continue
                    fields = share.open_fields(reg)
                    entry = {"access": "open"}
                else:
                    fields = share.shared_fields(reg)
                    entry = {"share_type": reg.share.type, "share_condition": reg.share.condition,
                             "access": _access_word(s, who, reg)}
                entries.append({
                    "resource": reg.resource, "code": codes.get(reg.resource), "name": reg.name,
                    "provider": reg.department_name, "department": reg.department, "update_cycle": reg.update_cycle,
                    "open": share.is_open(reg), **entry,
                    "fields": [{"name": f, "title": titles.get(f, f)} for f in fields],
                })
        return {"caller": who.holder, "entries": sorted(entries, key=lambda e: (e["code"] or "", e["resource"]))}

    # ---- open data ----------------------------------------------------------------------------------
    @app.get(f"{API}/open/{{resource}}/rows", tags=["open data"], summary="rows of an open resource")
    def open_rows(resource: str, request: Request, limit: Limit = 100, offset: Offset = 0) -> dict:
        reg = state.reg(resource, public=True)
        with state.session() as s:
            acc = share.access(s, share.PUBLIC_CALLER, reg)
            out = _rows(reg, acc, limit, offset, _filters(request, ("limit", "offset")))
            share.audit(s, share.PUBLIC_CALLER, "open_rows", reg, acc, len(out["rows"]))
        return out

    @app.get(f"{API}/open/{{resource}}/download", tags=["open data"], summary="an open resource, whole")
    def open_download(resource: str, format: Annotated[str, Query(pattern="^(csv|xlsx|json)$")] = "csv") -> Response:
        reg = state.reg(resource, public=True)
        with state.session() as s:
            acc = share.access(s, share.PUBLIC_CALLER, reg)
            try:
                result = share.read(state.settings, state.regs, reg, acc, limit=None)
            except NotCuratedYet as exc:
                raise share.NotFound(str(exc)) from None
            body = share.download(result, format, state.settings.timezone)
            share.audit(s, share.PUBLIC_CALLER, "open_download", reg, acc, result.rows)
        return Response(body, media_type=DOWNLOAD_TYPES[format], headers={
            "Content-Disposition": f'attachment; filename="{reg.resource}.{format}"'})

    # ---- rows for departments ----------------------------------------------------------------------------
    @app.get(f"{API}/resources/{{resource}}/rows", tags=["sharing"], summary="rows under the caller's basis")
    def rows(resource: str, request: Request, who: Keyed, limit: Limit = 100, offset: Offset = 0) -> dict:
        reg = state.reg(resource)
        with state.session() as s:
            acc = share.access(s, who, reg)
            out = _rows(reg, acc, limit, offset, _filters(request, ("limit", "offset")))
            share.audit(s, who, "rows", reg, acc, len(out["rows"]))
        return out

    # ---- requests ----------------------------------------------------------------------------------------
    @app.post(f"{API}/requests", tags=["sharing"], status_code=201, summary="ask for a 有条件共享 resource")
    def ask(body: RequestIn, who: Keyed) -> dict:
        reg = state.reg(body.resource)
        with state.session() as s:
            req = share.create_request(s, who, reg, body.fields, body.purpose, body.unmasked)
            return share.request_dict(req)

    @app.get(f"{API}/requests", tags=["sharing"], summary="the caller's requests, as provider or consumer")
    def requests(who: Keyed, role: Annotated[str, Query(pattern="^(provider|consumer)$")] = "consumer") -> dict:
        with state.session() as s:
            stmt = select(ShareRequest).order_by(ShareRequest.id.desc())
            if not who.is_admin:
                column = ShareRequest.provider if role == "provider" else ShareRequest.consumer
                stmt = stmt.where(column == who.holder)
            return {"role": role, "requests": [share.request_dict(r) for r in s.scalars(stmt)]}

    @app.post(f"{API}/requests/{{request_id}}/approve", tags=["sharing"], summary="the provider approves")
    def approve(request_id: int, who: Keyed, body: DecisionIn | None = None) -> dict:
        with state.session() as s:
            return share.request_dict(share.decide(s, who, request_id, True, body.reason if body else None))

    @app.post(f"{API}/requests/{{request_id}}/reject", tags=["sharing"], summary="the provider rejects, with a reason")
    def reject(request_id: int, body: DecisionIn, who: Keyed) -> dict:
        with state.session() as s:
            return share.request_dict(share.decide(s, who, request_id, False, body.reason))

    # ---- audit ---------------------------------------------------------------------------------------
    @app.get(f"{API}/audit", tags=["audit"], summary="who read what: all (admin) or the caller's resources")
    def audit(who: Keyed, limit: Limit = 100, offset: Offset = 0) -> dict:
        with state.session() as s:
            return {"entries": share.audit_log(s, who, limit=limit, offset=offset)}

    app.include_router(site_router)  # the directory pages: open portal, internal site behind a login
    app.include_router(quarantine.router(department))  # liaisons' rejected rows, as XLSX
    return app


class Unexpected:
    """ASGI middleware: an unexpected exception becomes ``500 {"error": …}``, its traceback logged on
    the server only (once: the exception is not raised on to the server, which would log it again)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception:
            log.exception("unexpected error answering %s %s", scope.get("method"), scope.get("path"))
            if started:  # part of the answer is out: all that is left is to break the connection
                raise
            await JSONResponse({"error": "internal error: the service could not answer; it is in the service's log"},
                               status_code=500)(scope, receive, send)


def _access_word(session: Session, who: share.Caller, reg: Registration) -> str:
    """own / unconditional / granted / request / not_shared: what the department may do with ``reg``."""
    try:
        acc = share.access(session, who, reg)
    except share.Forbidden:
        return "not_shared" if reg.share.type == share.NOT_SHARED else "request"
    return {"own": "own", share.UNCONDITIONAL: "unconditional", "grant": "granted"}.get(acc.basis, acc.basis)
