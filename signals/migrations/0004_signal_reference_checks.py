"""On PostgreSQL, the references of ``signals_signal`` are checked once per statement.

The row-by-row foreign keys from ``signals_signal`` to indicators, members, categories and
sharing groups are replaced by triggers that keep the same guarantees (decision 0003):

- after every ``INSERT``/``UPDATE``/``COPY`` on ``signals_signal``, one check over the
  statement's new rows refuses any row whose indicator, owner, category or audience group does
  not exist; the members, categories and groups named are locked ``FOR KEY SHARE`` as a
  foreign key would lock them, but once per distinct key instead of once per row;
- indicators are never deleted and never change id, so they need no lock: a trigger refuses
  ``DELETE`` and id changes on ``signals_indicator``;
- deleting (or re-keying) a member, category or group that a signal refers to is refused;
- ``TRUNCATE`` of a referenced table is refused unless ``signals_signal`` is emptied with it.

Django's model state keeps the foreign keys (SQLite keeps them as real constraints).
"""

from django.db import migrations

PARENTS = {
    "indicator_id": "signals_indicator",
    "owner_id": "accounts_member",
    "category_id": "signals_category",
    "audience_group_id": "accounts_sharinggroup",
}

CREATE = """
CREATE OR REPLACE FUNCTION beacon_signal_references_check() RETURNS trigger AS $$
DECLARE
    owners bigint[];
    categories bigint[];
    groups bigint[];
    locked integer;
BEGIN
    SELECT array_agg(DISTINCT owner_id), array_agg(DISTINCT category_id),
           array_agg(DISTINCT audience_group_id) FILTER (WHERE audience_group_id IS NOT NULL)
        INTO owners, categories, groups FROM new_rows;
    SELECT count(*) INTO locked
        FROM (SELECT 1 FROM accounts_member WHERE id = ANY(owners) FOR KEY SHARE) l;
    IF locked <> coalesce(cardinality(owners), 0) THEN
        RAISE EXCEPTION 'signals_signal.owner_id refers to a missing member'
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    SELECT count(*) INTO locked
        FROM (SELECT 1 FROM signals_category WHERE id = ANY(categories) FOR KEY SHARE) l;
    IF locked <> coalesce(cardinality(categories), 0) THEN
        RAISE EXCEPTION 'signals_signal.category_id refers to a missing category'
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    SELECT count(*) INTO locked
        FROM (SELECT 1 FROM accounts_sharinggroup WHERE id = ANY(groups) FOR KEY SHARE) l;
    IF locked <> coalesce(cardinality(groups), 0) THEN
        RAISE EXCEPTION 'signals_signal.audience_group_id refers to a missing sharing group'
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF EXISTS (SELECT 1 FROM new_rows n
               WHERE NOT EXISTS (SELECT 1 FROM signals_indicator p WHERE p.id = n.indicator_id)) THEN
        RAISE EXCEPTION 'signals_signal.indicator_id refers to a missing indicator'
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql
-- One index probe per new row: a hash join would read all of signals_indicator per statement.
SET enable_hashjoin = off SET enable_mergejoin = off;

CREATE OR REPLACE FUNCTION beacon_signal_parent_guard() RETURNS trigger AS $$
DECLARE
    referenced boolean;
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.id = OLD.id THEN
        RETURN NEW;
    END IF;
    IF TG_TABLE_NAME = 'signals_indicator' THEN
        RAISE EXCEPTION 'indicators are never deleted or re-keyed (% on signals_indicator)', TG_OP
            USING ERRCODE = 'restrict_violation';
    END IF;
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM signals_signal WHERE %I = $1)', TG_ARGV[0])
        INTO referenced USING OLD.id;
    IF referenced THEN
        RAISE EXCEPTION '% of %.id=% refused: signals refer to it', TG_OP, TG_TABLE_NAME, OLD.id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION beacon_signal_parent_truncate_guard() RETURNS trigger AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM signals_signal) THEN
        RAISE EXCEPTION 'TRUNCATE of % refused: signals refer to it', TG_TABLE_NAME
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER signals_signal_references_insert
    AFTER INSERT ON signals_signal REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION beacon_signal_references_check();
CREATE TRIGGER signals_signal_references_update
    AFTER UPDATE ON signals_signal REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION beacon_signal_references_check();
"""

PARENT_TRIGGERS = """
CREATE TRIGGER {table}_signal_guard
    BEFORE DELETE OR UPDATE OF id ON {table}
    FOR EACH ROW EXECUTE FUNCTION beacon_signal_parent_guard('{column}');
CREATE TRIGGER {table}_signal_truncate_guard
    AFTER TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION beacon_signal_parent_truncate_guard();
"""

DROP = """
DROP TRIGGER IF EXISTS signals_signal_references_insert ON signals_signal;
DROP TRIGGER IF EXISTS signals_signal_references_update ON signals_signal;
"""

DROP_PARENT = """
DROP TRIGGER IF EXISTS {table}_signal_guard ON {table};
DROP TRIGGER IF EXISTS {table}_signal_truncate_guard ON {table};
"""

DROP_FUNCTIONS = """
DROP FUNCTION IF EXISTS beacon_signal_references_check();
DROP FUNCTION IF EXISTS beacon_signal_parent_guard();
DROP FUNCTION IF EXISTS beacon_signal_parent_truncate_guard();
"""


def install(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.conname FROM pg_constraint c
            JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
            WHERE c.conrelid = 'signals_signal'::regclass AND c.contype = 'f'
              AND a.attname = ANY(%s)
            """,
            [list(PARENTS)],
        )
        for (name,) in cursor.fetchall():
            cursor.execute(f'ALTER TABLE signals_signal DROP CONSTRAINT "{name}"')
        cursor.execute(CREATE)
        for column, table in PARENTS.items():
            cursor.execute(PARENT_TRIGGERS.format(table=table, column=column))


def uninstall(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(DROP)
        for column, table in PARENTS.items():
            cursor.execute(DROP_PARENT.format(table=table))
            cursor.execute(
                f"ALTER TABLE signals_signal ADD CONSTRAINT signals_signal_{column}_fk "
                f"FOREIGN KEY ({column}) REFERENCES {table} (id) DEFERRABLE INITIALLY DEFERRED"
            )
        cursor.execute(DROP_FUNCTIONS)


class Migration(migrations.Migration):
    dependencies = [("signals", "0003_indicator_frames")]
    operations = [migrations.RunPython(install, uninstall)]
