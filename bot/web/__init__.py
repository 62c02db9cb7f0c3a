"""Pages `bot serve` answers for people outside Slack (the unsubscribe page)."""
