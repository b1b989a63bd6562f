"""The BentoML service: ``bentoml serve serving.service:CIP`` (what ``cip serve`` runs).

Each worker process builds one :class:`serving.engine.Engine` at start (champions, online store,
Feast store, segment file, identity map, state database and event log), and two background
threads: one re-resolves the champions and re-reads the identity map and lake rows every
``serving.reload_interval_seconds`` (a promotion is picked up without a restart; requests in
flight keep the models they started with), one fires due cart timers.

The routes are a FastAPI app mounted on the service (BentoML's way to have path parameters,
header auth and our own status codes); BentoML adds ``/healthz``, ``/livez``, ``/readyz`` (ready
once the engine is built) and Prometheus ``/metrics`` with a latency histogram per endpoint.

Status codes: 401 without a valid API key, 403 for a role the endpoint does not allow, 404 for an
unknown customer, 422 for a malformed body (naming the field) or an event the events contract
rejects, 503 while starting; anything unexpected is a 500 with no internals, and the worker goes on.
"""

from __future__ import annotations

import gc
import hmac
import logging
import threading
import time
from typing import Any

import bentoml
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from cip.errors import CipError
from cip.settings import load_settings
from serving.config import ServingSettings
from serving.engine import BadRequest, Engine, UnknownCustomer
from serving.events import EventRejected
from serving.schemas import (
    CustomerProfile,
    ErrorBody,
    EventsRequest,
    EventsResponse,
    ScoreRequest,
    ScoreResponse,
)

log = logging.getLogger("cip.serving")


def _settings() -> ServingSettings:
    """The serving stage's settings (``CIP_*`` environment, ``cip.yaml``), as every stage loads its own."""
    return load_settings(ServingSettings)


SETTINGS = _settings()
CONFIG = SETTINGS.serving
#: Latency histogram buckets (seconds) fine enough for millisecond requests.
BUCKETS = [
    0.0005,
    0.001,
    0.0015,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
]

app = FastAPI(
    title="CIP real-time API",
    description="Scores, reasons, segments and next best action; Segment events; the 360° customer.",
    version="1",
)


class ApiError(Exception):
    def __init__(self, status: int, error: str, fix: str | None = None, field: str | None = None) -> None:
        self.status, self.body = status, ErrorBody(error=error, fix=fix, field=field)


def _json(status: int, body: ErrorBody) -> JSONResponse:
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status)


@app.exception_handler(ApiError)
async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
    return _json(exc.status, exc.body)


@app.exception_handler(RequestValidationError)
async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
    problems = exc.errors()
    first = problems[0] if problems else {"loc": ("body",), "msg": "invalid request"}
    if first.get("type") == "json_invalid":
        return _json(422, ErrorBody(error=f"the body is not valid JSON ({first.get('msg')})", field="body"))
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    field = ".".join(loc) or "body"
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return _json(
        422,
        ErrorBody(
            error=f"{field}: {first.get('msg', 'invalid')}{more}",
            field=field,
            fix="see the request schema at /docs.json",
        ),
    )


@app.exception_handler(CipError)
async def _cip_error(_: Request, exc: CipError) -> JSONResponse:
    if isinstance(exc, UnknownCustomer):
        return _json(404, ErrorBody(error=exc.message, fix=exc.fix, field="customer_id"))
    if isinstance(exc, EventRejected):
        return _json(422, ErrorBody(error=exc.message, fix=exc.fix, field=exc.field))
    if isinstance(exc, BadRequest):
        return _json(422, ErrorBody(error=exc.message, fix=exc.fix, field=exc.field))
    log.error("request failed: %s", exc)
    return _json(500, ErrorBody(error=exc.message, fix=exc.fix))


@app.exception_handler(Exception)
async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error")
    return _json(500, ErrorBody(error="internal error; the service logged it", fix="retry, or report it"))


def authorize(request: Request, endpoint: str) -> str:
    """The caller's role, or 401/403."""
    key = request.headers.get(CONFIG.api_key_header)
    if not key:
        raise ApiError(
            401, f"missing API key header {CONFIG.api_key_header}", fix="send your key in that header"
        )
    role = next(
        (r for k, r in CONFIG.api_keys.items() if hmac.compare_digest(k.encode(), key.encode())), None
    )
    if role is None:
        raise ApiError(401, "unknown API key", fix="use a key from serving.api_keys")
    allowed = CONFIG.permissions.get(endpoint, [])
    if role not in allowed:
        raise ApiError(
            403, f"role '{role}' may not call {endpoint}", fix=f"use a key with role {' or '.join(allowed)}"
        )
    return role


def role_for(endpoint: str) -> Any:
    """A dependency giving the caller's role for ``endpoint`` (checked before the body is validated)."""

    def check(request: Request) -> str:
        return authorize(request, endpoint)

    return Depends(check)


def _freeze_heap(again: bool = False) -> None:
    """Keep the loaded models, identity map and lake rows (hundreds of thousands of long-lived
    objects) out of the cyclic garbage collector: without this, a full collection every few hundred
    requests scans them all and stalls a request by about 200 ms (the p99 at one connection)."""
    if again:
        gc.unfreeze()  # what a reload dropped can be collected once
    gc.collect()
    gc.freeze()


def _respond(model: Any) -> Response:
    return Response(model.model_dump_json(), media_type="application/json")


@bentoml.asgi_app(app, path="/")
@bentoml.service(
    name="cip",
    workers=CONFIG.workers,
    traffic={"timeout": 30},
    metrics={"enabled": True, "namespace": "cip", "duration": {"buckets": BUCKETS}},
    logging={"access": {"enabled": CONFIG.access_log}},
)
class CIP:
    """Customer intelligence in real time."""

    def __init__(self) -> None:
        self.settings = _settings()
        self.engine = Engine(self.settings)
        _freeze_heap()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(
                target=self._every, args=(CONFIG.reload_interval_seconds, self.refresh), daemon=True
            ),
            threading.Thread(
                target=self._every, args=(CONFIG.trigger_sweep_seconds, self.engine.sweep), daemon=True
            ),
        ]
        for t in self._threads:
            t.start()
        log.info("CIP serving models %s", self.engine.scorer.versions)

    def refresh(self) -> None:
        """The engine's periodic reload; what it loaded joins the frozen heap."""
        if any(self.engine.refresh().values()):
            _freeze_heap(again=True)

    def _every(self, seconds: float, work: Any) -> None:
        while not self._stop.wait(seconds):
            try:
                work()
            except Exception:
                log.exception("background %s failed", getattr(work, "__name__", work))

    def __is_ready__(self) -> bool:
        return self.engine is not None

    @bentoml.on_shutdown
    def shutdown(self) -> None:
        self._stop.set()
        self.engine.close()

    @app.post(
        "/score",
        response_model=ScoreResponse,
        responses={
            401: {"model": ErrorBody},
            403: {"model": ErrorBody},
            404: {"model": ErrorBody},
            422: {"model": ErrorBody},
        },
    )
    async def score(self, body: ScoreRequest, role: str = role_for("score")) -> Response:
        """Scores, next best action, segments, reasons, model versions and freshness per customer."""
        return _respond(self.engine.score(body))

    @app.post(
        "/events",
        response_model=EventsResponse,
        responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}, 422: {"model": ErrorBody}},
    )
    def events(self, body: EventsRequest, role: str = role_for("events")) -> Response:
        """Segment track/identify/page/alias events (one, or ``{"batch": [...]}``): logged durably,
        resolved to a customer, pushed to the online store, checked against trigger rules."""
        return _respond(self.engine.ingest(body.payloads()))

    @app.get(
        "/customers/{customer_id}",
        response_model=CustomerProfile,
        responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}, 404: {"model": ErrorBody}},
    )
    def customer(self, customer_id: str, role: str = role_for("customers")) -> Response:
        """The 360° customer: golden record (PII for allowed roles), identities, traits, consent, scores."""
        return _respond(self.engine.customer(customer_id, pii=role in CONFIG.pii_roles))

    @app.get("/info")
    def info(self, request: Request) -> dict[str, Any]:
        """Loaded model versions, services and state (any valid key)."""
        key = request.headers.get(CONFIG.api_key_header)
        if not key or key not in CONFIG.api_keys:
            raise ApiError(401, "missing or unknown API key", fix=f"send a key in {CONFIG.api_key_header}")
        return {**self.engine.health(), "time": time.time()}
