"""Routes under /hooks/ (included from agentos/urls.py)."""

from django.urls import path, re_path

from triggers import views

UUID = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"

urlpatterns = [
    path("<uuid:webhook_id>/", views.webhook_receive, name="webhook-receive"),
    # Senders that drop the trailing slash must not be redirected: a redirect loses the POST.
    re_path(rf"^(?P<webhook_id>{UUID})$", views.webhook_receive, name="webhook-receive-noslash"),
]
