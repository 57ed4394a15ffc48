"""Model risk management: validation, policies, approvals, roles, model cards, data protection.

Modules stay independent of each other where they can; the promotion gate (``gate.py``)
ties policies and approvals to the registry's protected aliases through its hook.
"""
