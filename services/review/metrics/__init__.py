"""What the Commission tracks: approval rates, processing times per stage, backlog, breaches.

facts: what one case contributes; projection: the per-case facts and aggregates kept in the
transactions that move the cases; reports: the summary and its CSV read from them; api: the
HTTP route. The arithmetic is in domain/statistics.py; docs/metrics.md defines each figure.
"""
