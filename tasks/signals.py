"""Signals of the tasks app.

``task_status_changed(sender=Task, task=<Task>, status=<str>)`` is sent after the commit of a
step that changed a task's status (tasks/store.py). Other apps react to it without the
tasks app importing them (the triggers app sends its signed callbacks from here).
"""

from __future__ import annotations

from django.dispatch import Signal

task_status_changed = Signal()
