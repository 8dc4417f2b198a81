"""Tracking: experiments, runs, params, metrics, tags and artifacts, shaped like MLflow's.

``entities`` holds the plain records, ``sql`` the SQLAlchemy store (SQLite by default,
PostgreSQL for a team), ``search`` the filter grammar of ``search_runs``, ``client`` the
explicit-id API and ``fluent`` the ``flowml.log_metric(...)`` one. Nothing here is
imported by ``import flowml`` until it is used.
"""
