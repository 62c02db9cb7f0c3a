"""Salesforce: email tasks, sent emails and replies written as Tasks (sync.py), over the REST API (client.py)."""
