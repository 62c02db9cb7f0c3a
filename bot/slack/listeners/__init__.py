"""Slack listeners, one package per kind: commands, actions, views, events.

Each package registers every module in it: a module with a `register(app, deps)`
function is all a new listener needs.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

from slack_bolt import App

from bot.slack.context import Deps


def register(app: App, deps: Deps) -> None:
    """Wire every listener to the app."""
    from bot.slack.listeners import actions, commands, events, views

    for package in (commands, actions, views, events):
        register_package(package, app, deps)


def register_package(package: ModuleType, app: App, deps: Deps) -> None:
    """Call `register(app, deps)` of each module of `package`, in name order."""
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda info: info.name):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        hook = getattr(module, "register", None)
        if callable(hook):
            hook(app, deps)
