"""The service's work, without HTTP: score customers, take events, show a customer.

Everything that can be done once is done in :meth:`Engine.__init__`: the champions are loaded
through the scoring runtime (``training.scoring.Scorer``), the online store and the Feast store
are opened, the segment file, thresholds, identity map and lake rows are read. Per request there
is one online read, one ``Scorer.score`` call and the assembly of the answer.
``serving/service.py`` puts it behind BentoML; tests may also call it in process.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from cip.contracts import OFFERS
from cip.errors import CipError, UnknownNameError
from cip.lake import Lake
from cip.live import event_log_dir, state_path
from features import catalog as cat
from serving.config import ServingSettings
from serving.event_log import EventLog
from serving.events import EventRejected, LiveEvent, accept
from serving.fast_features import LAST_EVENT, OnlineFeatureReader
from serving.fast_score import FastResult, FastScorer
from serving.identity import IdentityIndex
from serving.lake_rows import LakeRows, plain
from serving.schemas import (
    Alternative,
    CustomerProfile,
    CustomerScore,
    EventResult,
    EventsResponse,
    Firing,
    Freshness,
    Identity,
    NextBestAction,
    Reason,
    ScoreRequest,
    ScoreResponse,
)
from serving.state import State
from serving.triggers import Fired, Triggers
from training.scoring import Scorer
from training.segments import SegmentBook, latest_thresholds, load_segments, score_fields

log = logging.getLogger("cip.serving")

#: Golden-record fields only roles in ``serving.pii_roles`` see.
PII_FIELDS = (
    "first_name",
    "last_name",
    "email",
    "phone_e164",
    "birth_date",
    "street",
    "city",
    "postcode",
    "loyalty_id",
)
CONSENT_FIELDS = ("consent_email", "consent_sms", "consent_profiling")


class UnknownCustomer(CipError):
    """Customer ids that neither the identity map nor live events know (HTTP 404)."""

    def __init__(self, ids: Sequence[str]) -> None:
        self.ids = list(ids)
        shown = ", ".join(self.ids[:5]) + (" …" if len(self.ids) > 5 else "")
        super().__init__(
            f"unknown customer id{'s' if len(self.ids) > 1 else ''}: {shown}",
            fix="use a customer_id of `cip identity run` (see GET /customers/{id}) or one returned by POST /events",
        )


class BadRequest(CipError):
    """A request that is well-formed JSON but cannot be served (HTTP 422); names the field."""

    def __init__(self, field: str, message: str, fix: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}", fix=fix)


def _num(v: Any) -> float | None:
    if v is None:
        return None
    f = float(v)
    return None if math.isnan(f) else f


def next_best_action(rec: dict[str, Any]) -> NextBestAction | None:
    """The NBA part of one customer's scores, or None when no NBA model is loaded. Alternatives come
    from an ``alternatives`` column (list of ``{action, value}``, as the NBA runtime returns them) or,
    failing that, from ``nba_value_<action>`` columns; best first, the chosen action left out."""
    action = rec.get("next_best_action")
    if action is None or (isinstance(action, float) and math.isnan(action)):
        return None
    given = rec.get("alternatives")
    if isinstance(given, (list, tuple)):
        pairs = [(str(a["action"]), a.get("value")) for a in given if isinstance(a, dict) and "action" in a]
    else:
        pairs = [(c.removeprefix("nba_value_"), rec[c]) for c in rec if c.startswith("nba_value_")]
        pairs = [(a, v) for a, v in pairs if a in OFFERS]
    alts = sorted(
        (Alternative(action=a, value=_num(v)) for a, v in pairs if a != action),
        key=lambda a: -(a.value if a.value is not None else -math.inf),
    )
    return NextBestAction(action=str(action), expected_value=_num(rec.get("nba_value")), alternatives=alts)


class Engine:
    """Models, stores and state of one worker process."""

    def __init__(self, settings: ServingSettings) -> None:
        self.settings = settings
        self.config = settings.serving
        self.scorer = Scorer.load(settings)
        self.reader = OnlineFeatureReader(settings, self.scorer.feature_columns, self.scorer.services)
        self.fast = FastScorer(self.reader.columns, threads=self.config.reason_threads)
        self.book: SegmentBook = load_segments(settings)
        self.thresholds = latest_thresholds(settings)
        lake = Lake(settings.lake_dir)
        self.lake = lake
        self.identity = IdentityIndex(settings.lake_dir, settings.identity.id_prefix)
        self.profiles = LakeRows(lake, "profiles")
        trait_cols = sorted(self.book.fields - set(score_fields()))
        self.traits = LakeRows(lake, "traits")
        self._trait_fields = trait_cols
        self.batch_scores = LakeRows(lake, "scores")
        self.state = State(state_path(settings))
        self.log = EventLog(
            event_log_dir(settings),
            max_events=self.config.segment_max_events,
            max_seconds=self.config.segment_max_seconds,
        )
        self.triggers = Triggers(list(self.config.triggers))
        self.triggers.check_scores(self.scorer.score_columns)
        self.currencies = self._currencies()
        self._store: Any = None
        self._store_lock = threading.Lock()
        self._provisional = self.state.provisional_ids()
        self._open_feast()

    # --- start-up -----------------------------------------------------------------------------------
    def _currencies(self) -> set[str]:
        """Currencies an event's amount may be in: the base one and those with FX rates in the lake
        (what ``cip ingest`` converts; an amount in any other stops the ingest of its file)."""
        known = {self.settings.base_currency}
        if self.lake.has("fx_rates"):
            rated = self.lake.read("fx_rates", ["currency"])["currency"].dropna().str.upper()
            known |= set(rated) & (set(self.settings.ingest.currencies) | set(rated))
        return known

    def _open_feast(self) -> None:
        from features.store import open_store

        self._store = open_store(self.settings)
        self._store.service(self.scorer.services[0])  # reads the registry now, not on the first event

    # --- periodic -----------------------------------------------------------------------------------
    def refresh(self) -> dict[str, bool]:
        """Pick up what changed: a promoted champion, a new identity map, lake rows, thresholds."""
        changed = {"models": False, "identity": False, "thresholds": False}
        try:
            if self.scorer.reload_if_changed(self.settings):
                changed["models"] = True
                if self.scorer.feature_columns != self.reader.columns:
                    self.reader = OnlineFeatureReader(
                        self.settings, self.scorer.feature_columns, self.scorer.services
                    )
                    self.fast = FastScorer(self.reader.columns, threads=self.config.reason_threads)
                log.info("champions now %s", self.scorer.versions)
        except Exception:  # the registry may be busy: keep serving the loaded models
            log.exception("champion reload failed; serving %s", self.scorer.versions)
        changed["identity"] = self.identity.reload_if_changed()
        for rows in (self.profiles, self.traits, self.batch_scores):
            rows.reload_if_changed()
        th = latest_thresholds(self.settings)
        if th != self.thresholds and not (th and self.thresholds and th[0] == self.thresholds[0]):
            self.thresholds, changed["thresholds"] = th, True
        self.log.rotate_if_due()
        return changed

    def sweep(self, now: datetime | None = None) -> list[Fired]:
        """Fire due cart timers."""
        with self.state.transaction() as con:
            return self.triggers.sweep(con, now or datetime.now(UTC))

    def close(self) -> None:
        self.log.close()
        self.state.close()

    # --- who is known -------------------------------------------------------------------------------
    def is_provisional(self, customer_id: str) -> bool:
        if customer_id in self.identity.customers:
            return False
        if customer_id in self._provisional:
            return True
        row = self.state.query(
            "SELECT 1 FROM identity_links WHERE customer_id = ? AND kind = 'provisional' LIMIT 1",
            [customer_id],
        )
        if row:
            self._provisional.add(customer_id)
        return bool(row)

    def is_known(self, customer_id: str) -> bool:
        return customer_id in self.identity.customers or self.is_provisional(customer_id)

    # --- POST /score --------------------------------------------------------------------------------
    def score(self, request: ScoreRequest) -> ScoreResponse:
        ids = request.customer_ids
        if len(ids) > self.config.max_customers_per_request:
            raise BadRequest(
                "customer_ids",
                f"{len(ids)} ids; at most {self.config.max_customers_per_request} per request",
                fix="split the request, or raise serving.max_customers_per_request",
            )
        unknown = [c for c in dict.fromkeys(ids) if not self.is_known(c)]
        if unknown:
            raise UnknownCustomer(unknown)
        scorer = self.scorer  # one set of models for the whole request, even if a reload swaps them
        if request.models is not None:
            bad = [m for m in request.models if m not in scorer.versions]
            if bad:
                raise BadRequest(
                    "models",
                    f"no loaded model called {', '.join(bad)}",
                    fix=f"choose from {', '.join(scorer.versions)}",
                )
        if request.as_of is not None and request.as_of.tzinfo is None:
            raise BadRequest("as_of", "has no timezone", fix="give an instant, e.g. 2026-06-30T23:59:59Z")
        k = self.settings.training.reasons if request.reasons is None else request.reasons
        request_ts = (request.as_of or datetime.now(UTC)).astimezone(UTC)
        reader, fast = self.reader, self.fast
        rows = reader.read(list(ids), request_ts)
        result = fast.score(
            scorer, rows.matrix, ids, reasons=k, models=request.models, frame=lambda: rows.frame
        )
        customers = self._assemble(ids, rows, result, request.include_features)
        th = self.thresholds[1] if self.thresholds else {}
        return ScoreResponse(
            model_versions=result.versions,
            segments_run=self.thresholds[0] if self.thresholds else None,
            segments_skipped=self.book.skipped(th),
            customers=customers,
        )

    def _assemble(
        self, ids: Sequence[str], rows: Any, result: FastResult, include_features: bool
    ) -> list[CustomerScore]:
        columns: dict[str, Any] = {c: v.tolist() for c, v in result.columns.items()}
        if result.extra is not None:
            columns |= {c: result.extra[c].tolist() for c in result.extra.columns}
        th = self.thresholds[1] if self.thresholds else {}
        prop_cols = [c for c in columns if c.startswith("propensity_")]
        out = []
        feature_records = rows.frame.to_dict("records") if include_features else None
        for i, cid in enumerate(ids):
            rec = {c: v[i] for c, v in columns.items()}
            segment_input = {
                k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in rec.items()
            }
            for f in self._trait_fields:
                segment_input[f] = self.traits.value(cid, f)
            nba = next_best_action(rec)
            out.append(
                CustomerScore(
                    customer_id=cid,
                    provisional=self.is_provisional(cid),
                    churn_probability=_num(rec.get("churn_probability")),
                    clv_365d=_num(rec.get("clv_365d")),
                    propensity={c.removeprefix("propensity_"): _num(rec[c]) for c in prop_cols},
                    next_best_action=nba,
                    segments=self.book.segments_for(segment_input, th),
                    reasons={m: [Reason(**r) for r in per[i]] for m, per in result.reasons.items()},
                    freshness=Freshness(
                        snapshot_ts=rows.snapshot_ts[i],
                        last_event_ts=rows.last_event_ts[i],
                        request_ts=rows.request_ts,
                    ),
                    features=(
                        {k: plain(v) for k, v in feature_records[i].items() if k != cat.JOIN_KEY}
                        if feature_records is not None
                        else None
                    ),
                )
            )
        return out

    # --- POST /events -------------------------------------------------------------------------------
    def ingest(self, payloads: Sequence[dict[str, Any]]) -> EventsResponse:
        """Check every event (all or nothing), append them to the log (fsync), then resolve
        customers, record links and trigger state in one transaction, push fresh features and
        evaluate score triggers."""
        now = datetime.now(UTC)
        events: list[LiveEvent] = []
        for i, payload in enumerate(payloads):
            try:
                events.append(
                    accept(
                        payload,
                        currencies=self.currencies,
                        now=now,
                        future_tolerance_hours=self.settings.ingest.future_tolerance_hours,
                    )
                )
            except EventRejected as exc:
                raise EventRejected(exc.reason, exc.field, i if len(payloads) > 1 else None) from None
        seen = self._seen([e.message_id for e in events])
        fresh: list[LiveEvent] = []
        batch_ids: set[str] = set()
        for e in events:
            if e.message_id not in seen and e.message_id not in batch_ids:
                fresh.append(e)
                batch_ids.add(e.message_id)
        if fresh:
            self.log.append(e.payload for e in fresh)  # durable from here on
        results: dict[str, EventResult] = {}
        customers: dict[str, str] = {}
        with self.state.transaction() as con:
            for e in fresh:
                res = self.identity.resolve(con, e, now)
                customers[e.message_id] = res.customer_id
                if res.provisional:
                    self._provisional.add(res.customer_id)
                con.execute(
                    "INSERT OR IGNORE INTO events_seen (message_id, customer_id, ts, seen_at) VALUES (?, ?, ?, ?)",
                    (e.message_id, res.customer_id, e.ts.isoformat(), now.isoformat()),
                )
                self.triggers.on_event(con, e, res.customer_id)
                results[e.message_id] = EventResult(
                    message_id=e.message_id,
                    customer_id=res.customer_id,
                    provisional=res.provisional,
                    linked=res.linked,
                )
        if fresh:
            self._push(fresh, customers)
            self._score_triggers(fresh, customers, results, now)
        out = []
        reported: set[str] = set()
        for e in events:
            if e.message_id in results and e.message_id not in reported:
                reported.add(e.message_id)
                out.append(results[e.message_id])
            else:
                cid = seen.get(e.message_id) or customers.get(e.message_id) or ""
                out.append(
                    EventResult(
                        message_id=e.message_id,
                        customer_id=cid,
                        provisional=self.is_provisional(cid),
                        duplicate=True,
                    )
                )
        return EventsResponse(accepted=len(fresh), results=out)

    def _seen(self, message_ids: list[str]) -> dict[str, str]:
        marks = ", ".join("?" * len(message_ids))
        rows = self.state.query(
            f"SELECT message_id, customer_id FROM events_seen WHERE message_id IN ({marks})", message_ids
        )
        return dict(rows)

    def _push(self, events: list[LiveEvent], customers: dict[str, str]) -> None:
        frame = pd.DataFrame(
            {
                cat.JOIN_KEY: [customers[e.message_id] for e in events],
                "ts": [e.ts for e in events],
                "event": [e.event for e in events],
            }
        )
        with self._store_lock:  # the push reads the customers' fresh state, then writes it
            self._store.push_events(frame)

    def _score_triggers(
        self,
        events: list[LiveEvent],
        customers: dict[str, str],
        results: dict[str, EventResult],
        now: datetime,
    ) -> None:
        wanted = [e for e in events if self.triggers.wants_scores(e)]
        if not wanted:
            return
        ids = list(dict.fromkeys(customers[e.message_id] for e in wanted))
        scorer, reader, fast = self.scorer, self.reader, self.fast
        rows = reader.read(ids, now)
        result = fast.score(scorer, rows.matrix, ids, reasons=0, frame=lambda: rows.frame)
        scores = {cid: {c: float(v[i]) for c, v in result.columns.items()} for i, cid in enumerate(ids)}
        if result.extra is not None:
            for i, cid in enumerate(ids):
                scores[cid] |= result.extra.iloc[i].to_dict()
        with self.state.transaction() as con:
            for e in wanted:
                cid = customers[e.message_id]
                for hit in self.triggers.on_scores(con, e, cid, scores[cid], now):
                    results[e.message_id].triggers.append(
                        Firing(rule=hit.rule, customer_id=hit.customer_id, key=hit.key, fired_at=hit.fired_at)
                    )

    # --- GET /customers/{id} ------------------------------------------------------------------------
    def customer(self, customer_id: str, *, pii: bool) -> CustomerProfile:
        if not self.is_known(customer_id):
            raise UnknownCustomer([customer_id])
        golden = self.profiles.row(customer_id)
        consent = {k: golden.get(k) for k in CONSENT_FIELDS} if golden else None
        if golden is not None and not pii:
            golden = {k: v for k, v in golden.items() if k not in PII_FIELDS}
        identities = [
            Identity(type=t, value=v if pii else None, source="identity_map", first_seen=fs)
            for t, v, fs in self.identity.nodes_of(customer_id)
        ]
        for link in self.state.links_of(customer_id):
            t, v = link["node"].split(":", 1)
            identities.append(
                Identity(type=t, value=v if pii else None, source="live", first_seen=link["created_at"])
            )
        live = self.score(ScoreRequest(customer_ids=[customer_id])).customers[0]
        return CustomerProfile(
            customer_id=customer_id,
            provisional=self.is_provisional(customer_id),
            pii_visible=pii,
            golden_record=golden,
            identities=identities,
            traits=self.traits.row(customer_id),
            consent=consent,
            batch_scores=self.batch_scores.row(customer_id),
            live_score=live,
        )

    # --- misc ---------------------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        return {
            "models": self.scorer.versions,
            "services": self.scorer.services,
            "identity_customers": len(self.identity.customers),
            "segments_run": self.thresholds[0] if self.thresholds else None,
            "event_log_segment": str(self.log.current) if self.log.current else None,
        }


__all__ = ["BadRequest", "Engine", "UnknownCustomer", "UnknownNameError", "LAST_EVENT"]
