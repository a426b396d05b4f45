"""Cascade tiers: small proxy runs at growing scale that predict how the full model will do.

`scaling` fits a scaling law to the proxy runs' results and predicts the full-size metric with a
bootstrap interval; `dynamics` flags unhealthy training in each run and scores the risk over all.
Both are pure analysis (no Ray, no training): the tiers call them on finished runs.
"""
