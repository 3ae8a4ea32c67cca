"""Signals of the tasks app.

``task_status_changed(sender=Task, task=<Task>, status=<str>)`` is sent after the commit of a
step that changed a task's status (tasks/store.py). Other apps react to it without the
tasks app importing them (the triggers app sends its signed callbacks from here).
"""

from __future__ import annotations

from django.dispatch import Signal, receiver

task_status_changed = Signal()


@receiver(task_status_changed, dispatch_uid="tasks.remember_result")
def remember_result(sender, task, status: str, **kwargs) -> None:
    """A completed task's result goes to memory right after the result step's commit and
    publication (tasks/execution.py ``task_result_remember``, idempotent by its key), so the
    step does not wait for the embedding and the index update. A failure is logged by the
    sender and leaves the task's result as it is."""
    if status == "completed" and task.result:
        from tasks.execution import task_result_remember

        task_result_remember(task_id=task.pk)
