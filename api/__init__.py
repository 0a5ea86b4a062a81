"""The HTTP API (FastAPI): converts HTTP to application commands and results back to JSON."""
