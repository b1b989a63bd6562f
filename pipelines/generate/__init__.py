"""Synthetic world generator: a messy multi-channel customer world with ground truth.

Entry point: :func:`pipelines.generate.pipeline.generate_world` writes ``out_dir/raw`` (the raw
folder of docs/sources.md) and ``out_dir/truth`` (never read by pipelines). Same arguments give
byte-identical raw files.

Modules: ``config`` (constants, calendar, seeded streams), ``pools`` (names, streets, cities),
``phones`` (validated phone pools and formats), ``messy`` (pure dirtying functions), ``people``
(latent persons), ``accounts`` (CRM accounts and traps), ``behaviour`` (purchases, devices,
sessions, events), ``campaigns`` (offers, e-mail engagement, responses), ``planted`` (bad rows),
``ids`` (vectorized id / timestamp strings), ``sources`` + ``writers`` + ``outputs`` (file
formatting), ``truth`` (labels, links), ``pipeline`` (orchestration).

Format choices within docs/sources.md:

* events: one file per UTC month ``events/YYYY-MM.jsonl``; timestamps have milliseconds, web events
  are in UTC (``Z``), app events carry the customer's local offset (``+02:00``). ``userId`` is
  ``null`` on anonymous events. ``Product Added`` also has ``properties.quantity``; ``Checkout
  Started`` has ``properties.value`` and ``properties.currency``. Planted bad lines are appended at
  the end of month files (2099 ones too).
* crm ``created_at``/``updated_at``: seconds, the customer's local offset. POS
  ``transaction_time``: store wall-clock time. E-mail and exposure times: UTC seconds with ``Z``.
* ids: crm ``C`` + 8 digits, loyalty ``L`` + 9, transaction ``T`` + 10, order ``O`` + 9, exposure
  ``E`` + 9, campaign ``K`` + 4, store ``S`` + 3, product ``SKU`` + 5, person ``P`` + 7.
"""
