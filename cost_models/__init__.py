"""Analytical PPA models: pure, vectorised functions of (params, workload, target)."""
