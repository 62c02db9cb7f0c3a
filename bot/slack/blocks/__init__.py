"""Every Slack message, modal and Home view, built with slack_sdk's Block Kit models."""
