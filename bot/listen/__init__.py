"""Listening: watching mailboxes for replies, out-of-office, bounces and unsubscribes (watcher.py).

What a message is, is bot/core/inbound.py's question; what happens then is
bot/services/replies.py's. This package is the edge: IMAP, leases, cursors, threads.
"""
