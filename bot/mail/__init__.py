"""A rep's own mailbox: server URLs, encrypted credentials, the login check, limits."""
