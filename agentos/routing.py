"""Websocket routes. Apps add their consumers here."""

from channels.generic.websocket import AsyncWebsocketConsumer
from django.urls import re_path

from tasks.consumers import TaskConsumer

CLOSE_NOT_FOUND = 4404


class NotFoundConsumer(AsyncWebsocketConsumer):
    """Any other path: refused with close code 4404.

    Without a catch-all route Channels' URLRouter raises, and daphne answers the handshake
    with a 500 and logs an ERROR traceback per request, which anyone can trigger.
    Accepting before closing delivers the code (a close before the handshake completes
    reaches the client as an HTTP 403).
    """

    async def connect(self) -> None:
        await self.accept()
        await self.close(code=CLOSE_NOT_FOUND)


websocket_urlpatterns: list = [
    # With or without the trailing slash, like every HTTP API path.
    re_path(r"^ws/tasks/(?P<task_id>[^/]+)/?$", TaskConsumer.as_asgi()),
    re_path(r"", NotFoundConsumer.as_asgi()),
]
