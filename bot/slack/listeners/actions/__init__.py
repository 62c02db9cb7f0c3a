"""Slack actions listeners: every module here with a `register(app, deps)` is wired in (see ../__init__.py)."""
