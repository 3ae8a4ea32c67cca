"""Routes of this app under /api/v1/ (see agentos.api.slash_optional)."""

from agentos.api import slash_optional
from memory.views import MemoryView

urlpatterns = [slash_optional("memory", MemoryView.as_view(), name="memory")]
