"""A rep's own mailbox: server URLs, encrypted credentials, the login check, limits.

Light to import on purpose: the sender process (bot/delivery/sender.py) reaches
urls.py and check.py through the SMTP transport.
"""
