"""Who may be delivered where: consents per purpose from the golden records, unsubscribes and
bounces from the e-mail events, and the reason each left-out customer is suppressed.

:func:`contacts` reads the lake (I/O at the edge); :func:`suppression` is a pure function of that
frame and a destination.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from cip.errors import MissingInputError
from cip.lake import Lake
from pipelines.batch.config import Destination

KEY = "customer_id"
#: Reasons a member is not exported, in the order they are checked (a customer counts once, under
#: the first that applies).
REASONS = (
    "no_consent_email",
    "no_consent_sms",
    "no_consent_profiling",
    "unsubscribed",
    "bounced",
    "no_email",
    "no_phone",
    "no_identifier",
)
CONTACT_COLUMNS = (
    KEY,
    "email",
    "phone_e164",
    "consent_email",
    "consent_sms",
    "consent_profiling",
    "unsubscribed",
    "bounced",
)


def contacts(lake: Lake) -> pd.DataFrame:
    """Per customer with a profile: e-mail, E.164 phone, the three consents (null when never
    given), and whether the customer unsubscribed from e-mail (an ``unsubscribe`` event of the
    customer or of the profile's address) or the profile's address bounced."""
    if not lake.has("profiles"):
        raise MissingInputError("profiles do not exist", fix="run `cip profiles` first")
    con = lake.connect(["profiles", "email_events", "customer_email_events"])
    parts = []
    if lake.has("email_events"):
        parts.append(
            "SELECT p.customer_id, e.event_type FROM email_events e "
            "JOIN profiles p ON p.email = lower(trim(e.email)) "
            "WHERE e.event_type IN ('unsubscribe', 'bounce')"
        )
    if lake.has("customer_email_events"):
        parts.append(
            "SELECT customer_id, event_type FROM customer_email_events WHERE event_type = 'unsubscribe'"
        )
    events = " UNION ALL ".join(parts) or "SELECT NULL::VARCHAR AS customer_id, NULL::VARCHAR AS event_type"
    sql = f"""
        WITH ev AS ({events}),
        flags AS (
            SELECT customer_id,
                   bool_or(event_type = 'unsubscribe') AS unsubscribed,
                   bool_or(event_type = 'bounce') AS bounced
            FROM ev GROUP BY customer_id
        )
        SELECT p.customer_id, p.email, p.phone_e164,
               p.consent_email, p.consent_sms, p.consent_profiling,
               coalesce(f.unsubscribed, false) AS unsubscribed, coalesce(f.bounced, false) AS bounced
        FROM profiles p LEFT JOIN flags f USING (customer_id)
        ORDER BY p.customer_id
    """
    try:
        return con.execute(sql).df()
    finally:
        con.close()


def _true(values: pd.Series) -> np.ndarray:
    """True only where the flag is true (null consent is no consent)."""
    return pd.array(values, dtype="boolean").fillna(False).to_numpy(dtype=bool)


def _present(values: pd.Series) -> np.ndarray:
    """True where the value is text with something besides white space."""
    try:
        text = pa.array(values.to_numpy(dtype=object), type=pa.string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # not all text: the slower, general way
        return (
            (values.notna() & (values.astype("string").str.strip() != "")).fillna(False).to_numpy(dtype=bool)
        )
    filled = pc.not_equal(pc.utf8_trim_whitespace(text), "")
    return pc.fill_null(filled, False).to_numpy(zero_copy_only=False).astype(bool)


def suppression(frame: pd.DataFrame, destination: Destination) -> pd.Series:
    """Per row of ``frame`` (the :func:`contacts` columns), the reason it may not be delivered to
    ``destination``, or None when it may."""
    n = len(frame)
    email, phone = _present(frame["email"]), _present(frame["phone_e164"])
    bounced = _true(frame["bounced"])
    checks: dict[str, np.ndarray] = {}
    for purpose in ("email", "sms", "profiling"):
        if purpose in destination.purposes:
            checks[f"no_consent_{purpose}"] = ~_true(frame[f"consent_{purpose}"])
    if "unsubscribed" in destination.suppress:
        checks["unsubscribed"] = _true(frame["unsubscribed"])
    if "bounced" in destination.suppress:
        checks["bounced"] = bounced
    if "email" in destination.purposes:
        checks["no_email"] = ~email
    if "sms" in destination.purposes:
        checks["no_phone"] = ~phone
    if destination.format == "hashed_audience":  # a bounced address is no identifier
        checks["no_identifier"] = ~((email & ~bounced) | phone)
    reason = np.full(n, None, dtype=object)
    for name in REASONS:
        hit = checks.get(name)
        if hit is not None:
            reason[(reason == None) & hit] = name  # noqa: E711 - elementwise on an object array
    return pd.Series(reason, index=frame.index, name="reason")


def counts(reasons: pd.Series) -> dict[str, int]:
    """Suppressed customers by reason (reasons in :data:`REASONS` order; none left out)."""
    vc = reasons.dropna().value_counts()
    return {r: int(vc[r]) for r in REASONS if r in vc.index}
