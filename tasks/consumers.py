"""Websocket ws/tasks/<id>/: a snapshot of the task, then every step and status change live.

Close codes: 4401 not authenticated, 4404 no such task (or another user's), 4400 bad
``?after=`` or a control message over CONTROL_MESSAGE_MAX_CHARS or nested too deep. An open
socket re-checks its caller before it sends an event or runs a control message (at most
every LIVE_ACCESS_RECHECK_SECONDS): a revoked API key or a deactivated user closes it with
4401, a caller removed from the task's workspace with 4404. Clients
may also send control messages (parsed by agentos.jsonguard, like API bodies)::

    {"action": "pause" | "resume" | "cancel"}
    {"action": "respond", "answer": "..."}  or  {"action": "respond", "approve": true, "comment": "..."}

which call the same services as the REST API and are answered with
``{"type": "ack", "action", "task"}`` or ``{"type": "error", "action", "error": {...}}``.
"""

from __future__ import annotations

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from agentos.api import ApplicationError, _first_validation_error, error_body
from agentos.jsonguard import JSONRejected, parse_json
from observability import live_clients
from tasks.api.auth import AccessCheck, query_param, scope_user
from tasks.api.events import StepSequencer, group_name, in_db_thread, parse_after, read_snapshot, task_for

CLOSE_BAD_REQUEST = 4400
CLOSE_UNAUTHENTICATED = 4401
CLOSE_NOT_FOUND = 4404
# The largest control message is a respond with a 4,000-character answer and a comment.
CONTROL_MESSAGE_MAX_CHARS = 16_384
# {"action": ..., "answer": ...} is flat; a little room for clients that nest a field.
CONTROL_MESSAGE_MAX_DEPTH = 4


def run_action(*, user, task_id, content: dict) -> dict:
    """Apply one control message through the services; returns the task afterwards."""
    from tasks.api.serializers import RespondInputSerializer
    from tasks.presenters import task_to_dict
    from workspaces.task_actions import task_act

    task = task_for(user, task_id)
    action = content.get("action")
    if action in ("pause", "resume", "cancel"):
        task_act(actor=user, task=task, action=action)
    elif action == "respond":
        serializer = RespondInputSerializer(data={k: v for k, v in content.items() if k != "action"})
        if not serializer.is_valid():
            field, message, code = _first_validation_error(serializer.errors)
            raise ApplicationError(message, field=field, code=code)
        task_act(actor=user, task=task, action="respond", **serializer.validated_data)
    else:
        raise ApplicationError("action must be one of pause, resume, cancel, respond.", field="action")
    task.refresh_from_db()
    return task_to_dict(task)


class TaskConsumer(AsyncJsonWebsocketConsumer):
    group: str | None = None

    async def connect(self) -> None:
        # Accept before closing: a close sent before the handshake completes reaches the
        # client as an HTTP 403 without our close code.
        task_id = self.scope["url_route"]["kwargs"]["task_id"]
        self.user = await scope_user(self.scope, task_id)
        if not self.user.is_authenticated:
            return await self._refuse(CLOSE_UNAUTHENTICATED)
        try:
            self.task = await in_db_thread(task_for)(self.user, task_id)
            after = parse_after(query_param(self.scope.get("query_string", b""), "after"))
        except ApplicationError as exc:
            return await self._refuse(CLOSE_NOT_FOUND if exc.status_code == 404 else CLOSE_BAD_REQUEST)
        # Join the group before reading the snapshot: a step committed in between arrives
        # both in the snapshot and live, and the sequencer drops the second copy. Messages
        # for this consumer are dispatched only after connect() returns, so none can
        # overtake the snapshot.
        self.access = AccessCheck(self.user, query_param(self.scope.get("query_string", b""), "token"), self.task.pk)
        self.group = group_name(self.task.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await live_clients.joined(self.group, self.channel_name)
        await self.accept()
        snapshot = await in_db_thread(read_snapshot)(self.task, after)
        self.sequencer = StepSequencer(self.task, after)
        steps = self.sequencer.take_snapshot(snapshot)
        await self.send_json({"type": "snapshot", "task": snapshot.task, "steps": steps})

    async def _refuse(self, code: int) -> None:
        await self.accept()
        await self.close(code=code)

    async def _access_lost(self) -> bool:
        """Close the socket when its caller may no longer follow the task (AccessCheck)."""
        reason = await self.access.lost()
        if reason is not None:
            await self.close(code=CLOSE_UNAUTHENTICATED if reason == "unauthenticated" else CLOSE_NOT_FOUND)
        return reason is not None

    async def task_event(self, message: dict) -> None:
        """A ``task.event`` from tasks.live.publish."""
        if await self._access_lost():
            return
        for event in await self.sequencer.admit(message["event"]):
            await self.send_json(event)

    async def receive(self, text_data=None, bytes_data=None, **kwargs) -> None:
        message = text_data if text_data is not None else bytes_data
        if message is not None and len(message) > CONTROL_MESSAGE_MAX_CHARS:
            # Not a control message any client of ours sends: close rather than parse it.
            await self.close(code=CLOSE_BAD_REQUEST)
            return
        try:
            content = parse_json(message, max_depth=CONTROL_MESSAGE_MAX_DEPTH) if message is not None else None
        except JSONRejected as error:
            if error.code == "invalid_json":  # nested too deep: no client of ours sends that
                await self.close(code=CLOSE_BAD_REQUEST)
                return
            # Not JSON, a non-finite number, unstorable text: answered like an API body.
            await self._reply_error(None, ApplicationError(error.message, code=error.code, field=error.field))
            return
        if not isinstance(content, dict):
            await self._reply_error(None, ApplicationError("A control message is a JSON object.", code="parse_error"))
            return
        action = content.get("action")
        if await self._access_lost():
            return
        try:
            task = await in_db_thread(run_action)(user=self.user, task_id=self.task.pk, content=content)
        except ApplicationError as exc:
            await self._reply_error(action, exc)
            return
        await self.send_json({"type": "ack", "action": action, "task": task})

    async def _reply_error(self, action, exc: ApplicationError) -> None:
        await self.send_json({"type": "error", "action": action, **error_body(exc.code, exc.message, exc.field)})

    async def disconnect(self, code: int) -> None:
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)
            await live_clients.left(self.group, self.channel_name)
