"""An HTTP error of the hub's pages: its reason in the reader's language on the error page, in English in the log."""

from __future__ import annotations

from tornado import web

from ..i18n import Message


class PageError(web.HTTPError):
    """JupyterHub's error page reads ``jupyterhub_message`` while serving the request, in its language."""

    def __init__(self, status_code: int, message: Message):
        super().__init__(status_code, "%s", str(message))
        self.said = message

    @property
    def jupyterhub_message(self) -> str:
        return self.said.localized()
