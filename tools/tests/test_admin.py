import pytest

from tools.defaults import load_defaults
from tools.models import ToolSetting

pytestmark = pytest.mark.django_db


def test_staff_can_list_and_disable_tools(client, staff_user):
    load_defaults()
    client.force_login(staff_user)
    response = client.get("/admin/tools/toolsetting/")
    assert response.status_code == 200
    assert b"Evaluate an arithmetic expression" in response.content
    setting = ToolSetting.objects.get(name="calculator")
    response = client.post(f"/admin/tools/toolsetting/{setting.pk}/change/", {"enabled": ""})
    assert response.status_code == 302
    setting.refresh_from_db()
    assert setting.enabled is False


def test_non_staff_cannot_use_the_admin(client, user):
    client.force_login(user)
    assert client.get("/admin/tools/toolsetting/").status_code == 302


def test_openapi_schema_includes_the_tools_endpoints(auth_client):
    response = auth_client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert any(path.startswith("/api/v1/tools") for path in paths)
