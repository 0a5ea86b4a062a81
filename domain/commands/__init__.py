"""Command handlers of the application, one module per aggregate family."""
