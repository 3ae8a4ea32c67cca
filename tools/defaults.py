"""Default data of the tools app: one ToolSetting row per registered tool."""

from tools.models import ToolSetting
from tools.registry import all_tools


def load_defaults() -> str:
    """Adds a row (enabled) for each registered tool that has none; never changes existing rows."""
    names = [spec.name for spec in all_tools()]
    existing = set(ToolSetting.objects.filter(name__in=names).values_list("name", flat=True))
    ToolSetting.objects.bulk_create([ToolSetting(name=name) for name in names if name not in existing],
                                    ignore_conflicts=True)
    disabled = ToolSetting.objects.filter(name__in=names, enabled=False).count()
    return f"{len(names)} tools ({len(names) - len(existing)} new, {disabled} disabled)"
