"""``gatewatch simulate``: realistic API traffic, deterministic for a seed, in every
supported log format.

* ``traffic``: ``SimulationConfig``, ``build_actors``, and the engine (``run``,
  ``generate``) that merges actors' requests in simulated-time order.
* ``actor``: the ``Actor`` contract and the ``Emitter`` that turns an actor's choice
  into a ``SimRequest`` (``request``).
* ``users``: accounts, how populations connect (home, corporate NAT, mobile CGNAT),
  and user sessions; ``automated``: partners, health probes, crawlers.
* ``endpoints``, ``catalogue``, ``network``, ``identity``: the API surface, the
  vocabulary, address pools, ids and credentials.
* ``render``: one renderer per log format (``RENDERERS``); ``output``: writing lines,
  optionally paced in wall time.

An attack episode is one more ``Actor`` whose ``Emitter`` carries an ``attack_id``:
pass it to ``run`` with ``build_actors(config)`` and the benign traffic stays the same.
"""
