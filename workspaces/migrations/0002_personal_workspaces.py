"""Every existing user gets a personal workspace (admin of it), and the database refuses to
change or delete an audit row (TRUNCATE, used only by test tear-downs, is not a row event)."""

from django.db import migrations

from workspaces.migration_support import give_every_user_a_workspace

APPEND_ONLY = """
CREATE FUNCTION workspaces_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only';
END $$;
CREATE TRIGGER workspaces_auditevent_append_only BEFORE UPDATE OR DELETE ON workspaces_auditevent
    FOR EACH ROW EXECUTE FUNCTION workspaces_audit_append_only();
"""
DROP = """
DROP TRIGGER IF EXISTS workspaces_auditevent_append_only ON workspaces_auditevent;
DROP FUNCTION IF EXISTS workspaces_audit_append_only();
"""


class Migration(migrations.Migration):
    dependencies = [("workspaces", "0001_initial")]

    operations = [
        migrations.RunSQL(APPEND_ONLY, DROP),
        migrations.RunPython(give_every_user_a_workspace, migrations.RunPython.noop),
    ]
