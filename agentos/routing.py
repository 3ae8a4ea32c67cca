"""Websocket routes. Apps add their consumers here."""

from django.urls import re_path

from tasks.consumers import TaskConsumer

websocket_urlpatterns: list = [
    # With or without the trailing slash, like every HTTP API path.
    re_path(r"^ws/tasks/(?P<task_id>[^/]+)/?$", TaskConsumer.as_asgi()),
]
