"""The feature catalogue: every feature of CIP is declared here, once.

The snapshot SQL (``features.snapshots``), the Feast objects (``features.repo``), the
online writer's value encoding (``features.online``) and the per-model feature lists
(:func:`service_features`) are all derived from these declarations. Nothing outside ``features/``
spells a feature name.

Conventions: a snapshot taken on date ``d`` has ``event_timestamp = d 00:00 UTC`` and only sees
activity with ``ts < d 00:00 UTC``; a window of ``w`` days covers ``[d - w days, d)``. In the SQL,
times are integers (UTC epoch seconds, epoch days): ``snap.s`` is the snapshot instant; timestamp
features are given in epoch seconds and typed by the snapshot query.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from cip.categories import CATEGORIES
from cip.errors import UnknownNameError

ENTITY = "customer"
JOIN_KEY = "customer_id"
TIMESTAMP_FIELD = "event_timestamp"
#: Request-time input of the on-demand views (UTC instant the features are asked for).
REQUEST_TS = "request_ts"
PROJECT = "cip"

Kind = Literal["float", "int", "timestamp", "timestamp_list"]

#: Source of all batch views: one Parquet file per snapshot date.
SNAPSHOT_TABLE = "customer_snapshots"
#: Push source (fresh events) and the stream view fed by it.
PUSH_SOURCE = "customer_events_push"

TXN_WINDOWS: tuple[int, ...] = (7, 30, 90, 365)
ENGAGEMENT_WINDOWS: tuple[int, ...] = (30, 90)
CAMPAIGN_WINDOWS: tuple[int, ...] = (90, 365)
#: Longest look-back of any windowed feature (days); lifetime features look further.
MAX_WINDOW_DAYS = 365
#: An order within this many days of an exposure is a response; counted only once matured.
RESPONSE_WINDOW_DAYS = 14
#: The fresh (pushed) counters look back this far.
FRESH_WINDOW_MINUTES = 60

#: Events of `customer_events` counted by the engagement view: feature stem -> event name.
WEB_EVENTS: dict[str, str] = {
    "page_views": "page",
    "product_views": "Product Viewed",
    "cart_adds": "Product Added",
    "checkouts": "Checkout Started",
}
ORDER_CHANNELS: tuple[str, ...] = ("web", "app", "store")


@dataclass(frozen=True)
class Feature:
    """One feature column.

    ``sql`` is an expression over the aggregate relations of the snapshot query (see
    ``features.snapshots``); ``None`` for features that are not computed from snapshots
    (on-demand and pushed ones).
    """

    name: str
    view: str
    kind: Kind
    description: str
    sql: str | None = None
    #: Internal state of a view (kept online, never served to a model).
    internal: bool = False


@dataclass(frozen=True)
class View:
    """A Feast feature view (batch, stream or on-demand)."""

    name: str
    kind: Literal["batch", "stream", "on_demand"]
    description: str
    features: tuple[Feature, ...] = field(default=())


def _r(expr: str, digits: int) -> str:
    return f"round({expr}, {digits})"


def _ratio(num: str, den: str, digits: int = 4) -> str:
    return f"round(CAST({num} AS DOUBLE) / nullif({den}, 0), {digits})"


def _days_before_snapshot(sec: str) -> str:
    return f"round((snap.s - {sec}) / 86400.0, 4)"


# --- batch views (snapshots) ------------------------------------------------------------------
# Money is summed in integer cents (exact, so snapshots are reproducible bit for bit).
_ORDERS_LIFE = "coalesce(st.o_n, 0)"
_SPEND_LIFE = "coalesce(st.o_spend, 0)"
_LAST_PURCHASE = "st.o_last"

PROFILE = View(
    "customer_profile",
    "batch",
    "RFM, tenure, channel mix and category affinities as of the snapshot date.",
    (
        Feature(
            "recency_days",
            "customer_profile",
            "float",
            "Days from the last order to the snapshot.",
            _days_before_snapshot(_LAST_PURCHASE),
        ),
        Feature("frequency", "customer_profile", "int", "Orders ever placed.", _ORDERS_LIFE),
        Feature(
            "monetary",
            "customer_profile",
            "float",
            "Lifetime spend (base currency).",
            _r(f"{_SPEND_LIFE} / 100.0", 2),
        ),
        Feature(
            "aov",
            "customer_profile",
            "float",
            "Average order value (lifetime).",
            _ratio(f"{_SPEND_LIFE} / 100.0", _ORDERS_LIFE, 2),
        ),
        Feature(
            "tenure_days",
            "customer_profile",
            "float",
            "Days from the first activity of any kind to the snapshot.",
            _days_before_snapshot("sp.first_s"),
        ),
        *(
            Feature(
                f"share_{c}_365d",
                "customer_profile",
                "float",
                f"Share of the last 365 days' orders placed via {c}.",
                _ratio(f"coalesce(o.n_{c}_365d, 0)", "o.n_365d"),
            )
            for c in ORDER_CHANNELS
        ),
        *(
            Feature(
                f"affinity_{c}_365d",
                "customer_profile",
                "float",
                f"Share of the last 365 days' line spend in {c}.",
                _ratio(f"coalesce(o.spend_{c}_365d, 0)", "o.line_spend_365d"),
            )
            for c in CATEGORIES
        ),
        Feature(
            "first_seen_ts", "customer_profile", "timestamp", "First activity of any kind.", "sp.first_s"
        ),
        Feature(
            "last_purchase_ts",
            "customer_profile",
            "timestamp",
            "Last order before the snapshot.",
            _LAST_PURCHASE,
        ),
    ),
)

_txn: list[Feature] = []
for _w in TXN_WINDOWS:
    _txn.append(
        Feature(
            f"orders_{_w}d",
            "customer_transactions",
            "int",
            f"Orders in the last {_w} days.",
            f"coalesce(o.n_{_w}d, 0)",
        )
    )
    _txn.append(
        Feature(
            f"spend_{_w}d",
            "customer_transactions",
            "float",
            f"Spend in the last {_w} days.",
            _r(f"coalesce(o.spend_{_w}d, 0) / 100.0", 2),
        )
    )
    _txn.append(
        Feature(
            f"categories_{_w}d",
            "customer_transactions",
            "int",
            f"Distinct categories bought in the last {_w} days.",
            f"coalesce(o.categories_{_w}d, 0)",
        )
    )
_txn += [
    Feature(
        "spend_trend_30_90",
        "customer_transactions",
        "float",
        "Spend of the last 30 days over the 30-day average of the last 90 (null without spend).",
        _ratio("coalesce(o.spend_30d, 0)", "o.spend_90d / 3.0"),
    ),
    Feature(
        "orders_trend_30_90",
        "customer_transactions",
        "float",
        "Orders of the last 30 days over the 30-day average of the last 90.",
        _ratio("coalesce(o.n_30d, 0)", "o.n_90d / 3.0"),
    ),
    Feature(
        "spend_trend_90_365",
        "customer_transactions",
        "float",
        "Spend of the last 90 days over the quarterly average of the last 365.",
        _ratio("coalesce(o.spend_90d, 0)", "o.spend_365d / 4.0"),
    ),
]
TRANSACTIONS = View(
    "customer_transactions",
    "batch",
    "Windowed order counts, spend, category breadth and trends.",
    tuple(_txn),
)

_eng: list[Feature] = []
for _w in ENGAGEMENT_WINDOWS:
    for _stem in ("sends", "opens", "clicks"):
        _eng.append(
            Feature(
                f"email_{_stem}_{_w}d",
                "customer_engagement",
                "int",
                f"E-mail {_stem} in the last {_w} days.",
                f"coalesce(m.{_stem}_{_w}d, 0)",
            )
        )
    _eng.append(
        Feature(
            f"email_open_rate_{_w}d",
            "customer_engagement",
            "float",
            f"Opens per send in the last {_w} days.",
            _ratio(f"coalesce(m.opens_{_w}d, 0)", f"m.sends_{_w}d"),
        )
    )
    _eng.append(
        Feature(
            f"email_click_rate_{_w}d",
            "customer_engagement",
            "float",
            f"Clicks per send in the last {_w} days.",
            _ratio(f"coalesce(m.clicks_{_w}d, 0)", f"m.sends_{_w}d"),
        )
    )
    for _stem in WEB_EVENTS:
        _eng.append(
            Feature(
                f"{_stem}_{_w}d",
                "customer_engagement",
                "int",
                f"{WEB_EVENTS[_stem]} events in the last {_w} days.",
                f"coalesce(e.{_stem}_{_w}d, 0)",
            )
        )
    _eng.append(
        Feature(
            f"active_days_{_w}d",
            "customer_engagement",
            "int",
            f"Days with any web/app event in the last {_w} days.",
            f"coalesce(e.active_days_{_w}d, 0)",
        )
    )
_eng += [
    Feature(
        "email_unsubscribed",
        "customer_engagement",
        "int",
        "1 if the customer ever unsubscribed from e-mail.",
        "CAST(coalesce(st.m_unsubs, 0) > 0 AS BIGINT)",
    ),
    Feature(
        "last_seen_ts",
        "customer_engagement",
        "timestamp",
        "Last web/app event, order, e-mail open or click before the snapshot.",
        "greatest(st.e_last, st.o_last, st.m_last)",
    ),
]
ENGAGEMENT = View(
    "customer_engagement",
    "batch",
    "E-mail and web/app engagement, unsubscribe flag and last-seen time.",
    tuple(_eng),
)

_cmp: list[Feature] = []
for _w in CAMPAIGN_WINDOWS:
    _cmp.append(
        Feature(
            f"offers_{_w}d",
            "customer_campaigns",
            "int",
            f"Offers received in the last {_w} days.",
            f"coalesce(x.offers_{_w}d, 0)",
        )
    )
    _cmp.append(
        Feature(
            f"offers_responded_{_w}d",
            "customer_campaigns",
            "int",
            f"Offers of the last {_w} days answered by an order within {RESPONSE_WINDOW_DAYS} days "
            "(counted once the response window has closed before the snapshot).",
            f"coalesce(x.responded_{_w}d, 0)",
        )
    )
_cmp.append(
    Feature(
        "offer_response_rate_365d",
        "customer_campaigns",
        "float",
        "Responded over matured offers of the last 365 days.",
        _ratio("coalesce(x.responded_365d, 0)", "x.matured_365d"),
    )
)
CAMPAIGNS = View("customer_campaigns", "batch", "Offers received and answered (no leakage).", tuple(_cmp))

# --- stream view (pushed fresh events) --------------------------------------------------------
FRESH = View(
    "customer_fresh",
    "stream",
    f"Web/app activity of the last {FRESH_WINDOW_MINUTES} minutes, pushed by serving.",
    (
        Feature(
            "product_views_1h",
            "customer_fresh",
            "int",
            "Product views in the hour up to the last pushed event.",
        ),
        Feature(
            "cart_adds_1h", "customer_fresh", "int", "Cart adds in the hour up to the last pushed event."
        ),
        Feature("last_event_ts", "customer_fresh", "timestamp", "Time of the last pushed event."),
        Feature(
            "recent_view_ts",
            "customer_fresh",
            "timestamp_list",
            "Product views of the last hour (state).",
            internal=True,
        ),
        Feature(
            "recent_cart_ts",
            "customer_fresh",
            "timestamp_list",
            "Cart adds of the last hour (state).",
            internal=True,
        ),
    ),
)

# --- on-demand view (request time) --------------------------------------------------------------
#: name -> (source feature, description); value = (request_ts - source) in days.
ON_DEMAND_DAYS: dict[str, tuple[str, str]] = {
    "days_since_last_purchase": ("last_purchase_ts", "Days from the last order to request time."),
    "days_since_first_seen": ("first_seen_ts", "Days from the first activity to request time (live tenure)."),
    "days_since_last_seen": ("last_seen_ts", "Days from the last activity to request time."),
}
RECENCY = View(
    "customer_recency",
    "on_demand",
    "Recency at request time (python-mode on-demand transform).",
    tuple(Feature(n, "customer_recency", "float", d) for n, (_, d) in ON_DEMAND_DAYS.items()),
)

BATCH_VIEWS: tuple[View, ...] = (PROFILE, TRANSACTIONS, ENGAGEMENT, CAMPAIGNS)
VIEWS: dict[str, View] = {v.name: v for v in (*BATCH_VIEWS, FRESH, RECENCY)}
SNAPSHOT_FEATURES: tuple[Feature, ...] = tuple(f for v in BATCH_VIEWS for f in v.features)
ALL_FEATURES: tuple[Feature, ...] = tuple(f for v in VIEWS.values() for f in v.features)
FEATURES: dict[str, Feature] = {f.name: f for f in ALL_FEATURES}

#: One feature service per model: which views (whole) it serves.
SERVICES: dict[str, tuple[str, ...]] = {
    "churn_v1": ("customer_profile", "customer_transactions", "customer_engagement", "customer_recency"),
    "clv_v1": ("customer_profile", "customer_transactions", "customer_campaigns", "customer_recency"),
    "propensity_v1": (
        "customer_profile",
        "customer_engagement",
        "customer_campaigns",
        "customer_fresh",
        "customer_recency",
    ),
    "nba_v1": (
        "customer_profile",
        "customer_transactions",
        "customer_engagement",
        "customer_campaigns",
        "customer_fresh",
        "customer_recency",
    ),
}


def service_features(service: str) -> list[str]:
    """Feature column names a model trained on ``service`` gets, in a stable order."""
    try:
        views = SERVICES[service]
    except KeyError:
        raise unknown_service(service) from None
    return [f.name for v in views for f in VIEWS[v].features if not f.internal]


def unknown_service(service: str) -> UnknownNameError:
    """The error for a FeatureService name that is not declared here."""
    return UnknownNameError(
        f"unknown feature service '{service}'; the known services are {', '.join(SERVICES)}",
        fix="pass one of them (e.g. `--service churn_v1`)",
    )


def _check() -> None:
    names = [f.name for f in ALL_FEATURES]
    dupes = {n for n in names if names.count(n) > 1}
    assert not dupes, f"feature names declared twice: {dupes}"
    for f in SNAPSHOT_FEATURES:
        assert f.sql, f"batch feature {f.name} has no SQL"
    for src, _ in ON_DEMAND_DAYS.values():
        assert FEATURES[src].kind == "timestamp"


_check()
