"""Read models built from the event store's notification log (see projections/follower.py)."""
