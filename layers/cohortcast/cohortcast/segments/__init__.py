"""Segments: rules (`rules.parse_rule`), templates, evaluation, backfill and sweeps.

Nothing is imported here, so importing one module of the package does not load the others: the
rule engine (`segments.engine.compile_rule`) loads only where a rule is compiled.
"""
