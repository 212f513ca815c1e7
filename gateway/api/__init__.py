"""Thin Flask blueprints: parse the HTTP request, delegate to the service, encode."""
