"""The exception that ends a start for a reason the student can act on, told in the reader's language."""

from __future__ import annotations

from jupyterhub.spawner import SpawnException

from .i18n import Message


class StartFailed(SpawnException):
    """A SpawnException whose message is a :class:`~mydocker_hub.i18n.Message`.

    JupyterHub reads ``jupyterhub_message`` and ``jupyterhub_html_message`` while it serves the
    progress page, the "not running" page or an error page: they are put in words there, in the
    language of that browser. The log keeps ``log_message``, in English.
    """

    def __init__(self, message: Message, *, reason: str, log_message: str = "", status_code: int = 500):
        super().__init__(str(message), reason=reason, log_message=log_message or str(message), status_code=status_code)
        self.localizable = message

    @property
    def jupyterhub_message(self) -> str:
        return self.localizable.localized()

    @property
    def jupyterhub_html_message(self) -> str:
        # replaces JupyterHub's English "Spawn failed: ..." on the progress page
        return str(Message("The environment could not start: %(reason)s", reason=self.localizable).localized_html())
