"""Prediction serving: the hot path (``app.py``), kept apart from the management API.

Modules: ``ids`` (request and prediction ids), ``records`` (what is logged), ``model_cache``
(lazy LRU of loaded versions), ``protocols/`` (native, MLflow, Open Inference v2),
``deployments`` (endpoints, traffic splits, shadows), ``prediction_log`` (durable journal,
compaction to Parquet), ``feedback``.
"""
