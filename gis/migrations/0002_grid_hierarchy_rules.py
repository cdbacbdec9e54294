"""Database rules Django cannot declare: the grid hierarchy stays consistent."""

from django.db import migrations

GRID_RULES = r"""
CREATE OR REPLACE FUNCTION onemap_grids_check_hierarchy() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    p record;
BEGIN
    IF NEW.parent_id IS NULL THEN
        IF NEW.level <> 1 THEN
            RAISE EXCEPTION 'grid %: a level-% grid needs a parent', NEW.code, NEW.level
                USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
    END IF;
    SELECT level, code INTO p FROM grids WHERE id = NEW.parent_id;
    IF p.level <> NEW.level - 1 THEN
        RAISE EXCEPTION 'grid %: level % cannot sit under a level-% parent', NEW.code, NEW.level, p.level
            USING ERRCODE = 'check_violation';
    END IF;
    IF left(NEW.code, length(p.code)) <> p.code OR length(NEW.code) <= length(p.code) THEN
        RAISE EXCEPTION 'grid %: code must extend its parent''s code %', NEW.code, p.code
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER grids_check_hierarchy
    BEFORE INSERT OR UPDATE OF level, parent_id, code ON grids
    FOR EACH ROW EXECUTE FUNCTION onemap_grids_check_hierarchy();

-- a parent may not change level or code under its children
CREATE OR REPLACE FUNCTION onemap_grids_check_children() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM grids c
        WHERE c.parent_id = NEW.id
          AND (c.level <> NEW.level + 1 OR left(c.code, length(NEW.code)) <> NEW.code)
    ) THEN
        RAISE EXCEPTION 'grid %: its children no longer fit its level or code', NEW.code
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER grids_check_children
    AFTER UPDATE OF level, code ON grids
    FOR EACH ROW EXECUTE FUNCTION onemap_grids_check_children();
"""

UNDO = r"""
DROP TRIGGER IF EXISTS grids_check_children ON grids;
DROP TRIGGER IF EXISTS grids_check_hierarchy ON grids;
DROP FUNCTION IF EXISTS onemap_grids_check_children();
DROP FUNCTION IF EXISTS onemap_grids_check_hierarchy();
"""


class Migration(migrations.Migration):
    dependencies = [("onemap", "0001_initial")]
    operations = [migrations.RunSQL(GRID_RULES, UNDO)]
