"""Process managers: policies that turn events into actions on the outside world."""
