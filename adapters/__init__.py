"""Adapters: translation between the domain's ports and real infrastructure. No business rules."""
