"""Models of the tools app: an administrator's on/off switch per registered tool."""

from django.db import models


class ToolSetting(models.Model):
    """Whether a registered tool may be used; a tool without a row is enabled."""

    name = models.CharField(max_length=100, unique=True)
    enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({'enabled' if self.enabled else 'disabled'})"
