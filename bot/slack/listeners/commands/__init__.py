"""Slack commands listeners; each module's `register(app, deps)` is called from ../__init__.py."""
