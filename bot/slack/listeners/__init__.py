"""Slack listeners, one package per kind: commands, actions, views, events.

Each module has a `register(app, deps)` that wires its ids to plain functions; they
are all called here, by name, so that what the app answers can be read in one place.
"""

from __future__ import annotations

from slack_bolt import App

from bot.slack.context import Deps
from bot.slack.listeners.actions import mailbox as mailbox_actions
from bot.slack.listeners.actions import replies as reply_actions
from bot.slack.listeners.actions import tasks as task_actions
from bot.slack.listeners.commands import campaign as campaign_command
from bot.slack.listeners.commands import tasks as tasks_command
from bot.slack.listeners.events import app_home
from bot.slack.listeners.views import launch, task_edit, task_schedule
from bot.slack.listeners.views import mailbox as mailbox_views


def register(app: App, deps: Deps) -> None:
    """Wire every listener to the app."""
    campaign_command.register(app, deps)  # /campaign
    tasks_command.register(app, deps)  # /tasks
    task_actions.register(app, deps)  # Send, Edit, Schedule, Skip, Send again, Mark as sent
    mailbox_actions.register(app, deps)  # the Home tab's Connect and Disconnect
    reply_actions.register(app, deps)  # "Not a reply: go on"
    launch.register(app, deps)  # the send-at dialog of /campaign add
    task_edit.register(app, deps)
    task_schedule.register(app, deps)
    mailbox_views.register(app, deps)  # the Connect dialog
    app_home.register(app, deps)  # app_home_opened
