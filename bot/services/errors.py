"""Errors a rep or an admin reads: each one is a single clear sentence."""


class ServiceError(ValueError):
    """Bad input or a refused action; str() is the message to show as is."""


class UnknownCampaign(ServiceError):
    def __init__(self, name: str) -> None:
        super().__init__(f"There is no campaign named “{name}”.")
        self.name = name


class NotYourSend(ServiceError):
    def __init__(self) -> None:
        super().__init__("This is not your task: only the rep who owns it can act on it.")


class EnrollmentError(ServiceError):
    """A person cannot be removed, paused or resumed as asked."""
