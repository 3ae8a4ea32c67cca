"""Routes of this app under /api/v1/ (see agentos.api.slash_optional)."""

from agentos.api import slash_optional
from tasks.api import views
from tasks.api.execute import execute
from tasks.api.sse import task_stream
from tasks.api.timetravel import TaskExportView, TaskForkView, TaskImportView

TASK = r"tasks/(?P<task_id>[^/]+)"

urlpatterns = [
    slash_optional(r"execute", execute, name="execute"),
    slash_optional(r"auth/token", views.TokenCreateView.as_view(), name="auth-token"),
    slash_optional(r"tasks", views.TaskListCreateView.as_view(), name="task-list"),
    # Before the task detail route, which would take "import" for a task id.
    slash_optional(r"tasks/import", TaskImportView.as_view(), name="task-import"),
    slash_optional(TASK, views.TaskDetailView.as_view(), name="task-detail"),
    slash_optional(rf"{TASK}/steps", views.TaskStepsView.as_view(), name="task-steps"),
    slash_optional(rf"{TASK}/stream", task_stream, name="task-stream"),
    slash_optional(rf"{TASK}/stream-token", views.TaskStreamTokenView.as_view(), name="task-stream-token"),
    slash_optional(rf"{TASK}/pause", views.TaskPauseView.as_view(), name="task-pause"),
    slash_optional(rf"{TASK}/resume", views.TaskResumeView.as_view(), name="task-resume"),
    slash_optional(rf"{TASK}/cancel", views.TaskCancelView.as_view(), name="task-cancel"),
    slash_optional(rf"{TASK}/retry", views.TaskRetryView.as_view(), name="task-retry"),
    slash_optional(rf"{TASK}/respond", views.TaskRespondView.as_view(), name="task-respond"),
    slash_optional(rf"{TASK}/export", TaskExportView.as_view(), name="task-export"),
    slash_optional(rf"{TASK}/fork", TaskForkView.as_view(), name="task-fork"),
]
