"""Budgets and budget alerts (docs/budgets.md): the budgets file, threshold evaluation, the alerts table and the
webhook. Pure logic: no Dagster imports; the Dagster wiring is mlcost_pipeline/defs/budgets.py."""
