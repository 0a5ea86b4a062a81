"""Stagekeeper's domain: aggregates, ports and the application service. No I/O here."""
