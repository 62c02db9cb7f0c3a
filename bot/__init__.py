"""campaign-bot: run sales email campaigns without leaving Slack."""

__version__ = "0.1.0"
