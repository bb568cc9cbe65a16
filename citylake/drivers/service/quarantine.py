"""The liaison's rejected rows over HTTP (:mod:`citylake.stages.rejects`).

* ``GET /api/v1/quarantine`` — the caller department's resources and their batches with
  quarantined rows (an administrator: every department's);
* ``GET /api/v1/quarantine/{resource}.xlsx?batch=ID`` — the quarantined rows of one batch (every
  batch with quarantined rows when ``batch`` is left out) as an XLSX to correct and resend: values
  as sent, unmasked, so only the resource's own department or an administrator may have it
  (another department: 403; the public: 401). Every download is written to the audit log.

:func:`router` is given the app's key dependency (``citylake.drivers.service.app.department``,
behind ``Keyed``) rather than importing the app, which includes this router.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from citylake.stages import rejects, share

API = "/api/v1"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ACTION = "quarantine_download"
Batch = Annotated[str | None, Query(description="a batch id; every batch with quarantined rows when left out")]


def router(keyed: Callable[..., share.Caller]) -> APIRouter:
    """The quarantine routes; ``keyed`` resolves the calling department or administrator (401 for
    the public)."""
    routes = APIRouter(prefix=API, tags=["quarantine"])
    caller = Depends(keyed)

    @routes.get("/quarantine", summary="the caller's batches with quarantined rows")
    def listing(request: Request, who: share.Caller = caller) -> dict:
        state = request.app.state.citylake
        resources = rejects.department_batches(state.settings, state.regs, None if who.is_admin else who.holder)
        for r in resources:
            r["download"] = f"{API}/quarantine/{r['resource']}.xlsx"
        return {"caller": who.holder, "timezone": state.settings.timezone, "resources": resources}

    @routes.get("/quarantine/{resource}.xlsx", response_class=FileResponse,
                summary="a resource's quarantined rows as XLSX, for its own department to correct and resend")
    def download(resource: str, request: Request, batch: Batch = None,
                 who: share.Caller = caller) -> FileResponse:
        state = request.app.state.citylake
        reg = state.reg(resource)
        if not (who.is_admin or who.holder == reg.department):
            raise share.Forbidden(f"the quarantined rows of {reg.resource} are for its own department "
                                  f"({reg.department}) or an administrator")
        fd, path = tempfile.mkstemp(prefix="citylake-quarantine-", suffix=".xlsx")
        os.close(fd)
        try:
            written = rejects.write_workbook(state.settings, reg, path, batch)
            acc = share.Access("admin" if who.is_admin else "own", [f.name for f in reg.fields],
                               [f.name for f in reg.fields if f.sensitivity in ("personal", "restricted")])
            with state.session() as s:
                share.audit(s, who, ACTION, reg, acc, written.rows)
        except rejects.NoQuarantine as exc:
            os.unlink(path)
            raise share.NotFound(str(exc)) from None
        except BaseException:
            os.unlink(path)
            raise
        name = f"{reg.resource}-quarantine" + (f"-{written.batches[0].batch_id}" if batch else "") + ".xlsx"
        return FileResponse(path, media_type=XLSX, filename=name, background=BackgroundTask(os.unlink, path))

    return routes
