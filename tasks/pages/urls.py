"""Routes of the pages (included at the site root).

Not namespaced: settings.LOGIN_URL and LOGOUT_REDIRECT_URL name the route "login".
"""

from django.contrib.auth import views as auth_views
from django.urls import path

from tasks.pages import account, catalog, fork, live, views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("tasks/new", views.task_new, name="page-task-new"),
    path("tasks/<uuid:task_id>/", views.task_detail, name="page-task"),
    path("tasks/<uuid:task_id>/live", live.task_live, name="page-task-live"),
    path("tasks/<uuid:task_id>/row", live.task_row, name="page-task-row"),
    path("tasks/<uuid:task_id>/respond", views.task_respond, name="page-task-respond"),
    path("tasks/<uuid:task_id>/fork", fork.task_fork_page, name="page-task-fork"),
    path("tasks/<uuid:task_id>/<slug:action>", views.task_control, name="page-task-control"),
    path("prompts/", catalog.prompts_page, name="page-prompts"),
    path("tools/", catalog.tools_page, name="page-tools"),
    path("account/", account.account_page, name="page-account"),
    path("account/rotate-key", account.rotate_key, name="page-account-rotate-key"),
]
