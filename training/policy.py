"""The next-best-action policy (pure): each action's expected incremental value net of its cost, and the
choice — the best action, or the control when no action is worth more than ``min_value``.

Money is the outcome's (revenue in the response window, base currency). An action ``a`` with cost
``(per_send c_a, share_of_revenue s_a)`` is worth, against sending the control ``c``::

    value_a = (1 - s_a) * (mu_c + uplift_a) - c_a  -  ((1 - s_c) * mu_c - c_c)

so a discount given to a customer who would buy anyway costs its share of that revenue too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from training.config import ActionCost


def _cost(costs: Mapping[str, ActionCost], action: str) -> tuple[float, float]:
    c = costs.get(action)
    return (0.0, 0.0) if c is None else (float(c.per_send), float(c.share_of_revenue))


def net_values(
    uplift: np.ndarray,
    baseline: np.ndarray,
    actions: Sequence[str],
    control: str,
    costs: Mapping[str, ActionCost],
) -> np.ndarray:
    """Incremental value net of cost of ``(control, *actions)`` per row, ``(n, 1 + K)``; column 0
    (the control) is 0. ``uplift`` is ``(n, K)`` in ``actions`` order, ``baseline`` the expected
    outcome under the control."""
    uplift = np.asarray(uplift, dtype=float)
    baseline = np.asarray(baseline, dtype=float)
    c_per, c_share = _cost(costs, control)
    control_net = (1.0 - c_share) * baseline - c_per
    out = np.zeros((len(baseline), 1 + len(actions)))
    for k, a in enumerate(actions):
        per, share = _cost(costs, a)
        out[:, 1 + k] = (1.0 - share) * (baseline + uplift[:, k]) - per - control_net
    return out


def choose(values: np.ndarray, min_value: float = 0.0) -> np.ndarray:
    """Column chosen per row: the best treatment when its value exceeds ``min_value``, else 0 (control)."""
    values = np.asarray(values, dtype=float)
    if values.shape[1] == 1:
        return np.zeros(len(values), dtype=np.int64)
    best = 1 + np.argmax(values[:, 1:], axis=1)
    top = values[np.arange(len(values)), best]
    return np.where(top > min_value, best, 0).astype(np.int64)


def realized_net(y: np.ndarray, action: np.ndarray, costs: Mapping[str, ActionCost]) -> np.ndarray:
    """The net value each logged row realized: ``(1 - s_A) * y - c_A`` for its action ``A``."""
    y = np.asarray(y, dtype=float)
    action = np.asarray(action, dtype=object)
    out = y.copy()
    for a in np.unique(action):
        per, share = _cost(costs, str(a))
        m = action == a
        out[m] = (1.0 - share) * y[m] - per
    return out


def alternatives(
    values: np.ndarray, actions: Sequence[str], chosen: np.ndarray, digits: int = 4
) -> list[list[dict[str, Any]]]:
    """Per row, every action but the chosen one as ``{action, value}``, best first."""
    order = np.argsort(-values, axis=1, kind="stable")
    return [
        [{"action": actions[j], "value": round(float(values[i, j]), digits)} for j in row if j != chosen[i]]
        for i, row in enumerate(order)
    ]
