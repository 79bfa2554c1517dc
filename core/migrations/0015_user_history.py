"""History of user accounts and their roles, so "who gave this person the approver role, and
when" has an answer.

``core_user`` gets its own trigger functions: a row's history leaves out the password hash
(history is readable by more people than the hash may be) and says ``password_changed``
instead; an update that only moves ``last_login`` is not history. Role assignments
(``core_user_roles``, Django's many-to-many table with an integer id) are recorded under the
user they belong to: ``row_id`` is the user's id.
"""

from django.db import migrations

USER_FUNCTIONS = """
CREATE OR REPLACE FUNCTION coremis_history_user_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO core_history (table_name, row_id, operation, data, changed_at, user_id, context)
    SELECT TG_TABLE_NAME, n.id, 'I', to_jsonb(n) - 'password' - 'last_login', clock_timestamp(),
           coremis_history_actor(), coremis_history_context()
    FROM new_rows n;
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION coremis_history_user_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO core_history (table_name, row_id, operation, data, changed_at, user_id, context)
    SELECT TG_TABLE_NAME, n.id, 'U',
           (to_jsonb(n) - 'password' - 'last_login')
               || jsonb_build_object('password_changed', n.password IS DISTINCT FROM o.password),
           clock_timestamp(), coremis_history_actor(), coremis_history_context()
    FROM new_rows n JOIN old_rows o ON o.id = n.id
    WHERE (to_jsonb(n) - 'last_login') IS DISTINCT FROM (to_jsonb(o) - 'last_login');
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION coremis_history_user_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO core_history (table_name, row_id, operation, data, changed_at, user_id, context)
    SELECT TG_TABLE_NAME, o.id, 'D', to_jsonb(o) - 'password' - 'last_login', clock_timestamp(),
           coremis_history_actor(), coremis_history_context()
    FROM old_rows o;
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION coremis_history_user_role_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO core_history (table_name, row_id, operation, data, changed_at, user_id, context)
    SELECT TG_TABLE_NAME, n.user_id, 'I', jsonb_build_object('role_id', n.role_id), clock_timestamp(),
           coremis_history_actor(), coremis_history_context()
    FROM new_rows n;
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION coremis_history_user_role_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO core_history (table_name, row_id, operation, data, changed_at, user_id, context)
    SELECT TG_TABLE_NAME, o.user_id, 'D', jsonb_build_object('role_id', o.role_id), clock_timestamp(),
           coremis_history_actor(), coremis_history_context()
    FROM old_rows o;
    RETURN NULL;
END $$;
CREATE TRIGGER core_user_history_i AFTER INSERT ON core_user
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION coremis_history_user_inserted();
CREATE TRIGGER core_user_history_u AFTER UPDATE ON core_user
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION coremis_history_user_updated();
CREATE TRIGGER core_user_history_d AFTER DELETE ON core_user
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION coremis_history_user_deleted();
CREATE TRIGGER core_user_roles_history_i AFTER INSERT ON core_user_roles
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION coremis_history_user_role_inserted();
CREATE TRIGGER core_user_roles_history_d AFTER DELETE ON core_user_roles
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION coremis_history_user_role_deleted();
"""

DROP_USER_FUNCTIONS = """
DROP FUNCTION IF EXISTS coremis_history_user_inserted() CASCADE;
DROP FUNCTION IF EXISTS coremis_history_user_updated() CASCADE;
DROP FUNCTION IF EXISTS coremis_history_user_deleted() CASCADE;
DROP FUNCTION IF EXISTS coremis_history_user_role_inserted() CASCADE;
DROP FUNCTION IF EXISTS coremis_history_user_role_deleted() CASCADE;
"""


class Migration(migrations.Migration):
    dependencies = [("core", "0014_login_session_previous_token")]

    operations = [migrations.RunSQL(USER_FUNCTIONS, DROP_USER_FUNCTIONS)]
