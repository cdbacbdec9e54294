"""Users' roles and grids, personal access tokens, failed logins, and the append-only access log.

The rules Django cannot declare are triggers: a grid worker's grid is level 3, and
``access_log`` refuses UPDATE, DELETE and TRUNCATE.
"""

import django.db.models.deletion
import django.db.models.functions.datetime
from django.conf import settings
from django.db import migrations, models


ACCESS_RULES = r"""
CREATE OR REPLACE FUNCTION onemap_access_profiles_check_grid() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    grid_level smallint;
BEGIN
    IF NEW.grid_id IS NULL THEN
        RETURN NEW;
    END IF;
    SELECT level INTO grid_level FROM grids WHERE id = NEW.grid_id;
    IF grid_level IS NOT NULL AND grid_level <> 3 THEN
        RAISE EXCEPTION 'access profile of user %: a grid worker must be bound to a level-3 grid, grid % is level %',
            NEW.user_id, NEW.grid_id, grid_level
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER access_profiles_check_grid
    BEFORE INSERT OR UPDATE OF grid_id ON access_profiles
    FOR EACH ROW EXECUTE FUNCTION onemap_access_profiles_check_grid();

-- a grid bound to a grid worker may not stop being level 3 under them
CREATE OR REPLACE FUNCTION onemap_grids_keep_worker_level() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.level <> 3 AND EXISTS (SELECT 1 FROM access_profiles WHERE grid_id = NEW.id) THEN
        RAISE EXCEPTION 'grid %: grid workers are bound to it, so it must stay level 3', NEW.code
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER grids_keep_worker_level
    AFTER UPDATE OF level ON grids
    FOR EACH ROW EXECUTE FUNCTION onemap_grids_keep_worker_level();

CREATE OR REPLACE FUNCTION onemap_access_log_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'access_log is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER access_log_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON access_log
    FOR EACH STATEMENT EXECUTE FUNCTION onemap_access_log_append_only();
"""

UNDO = r"""
DROP TRIGGER IF EXISTS access_log_append_only ON access_log;
DROP TRIGGER IF EXISTS grids_keep_worker_level ON grids;
DROP TRIGGER IF EXISTS access_profiles_check_grid ON access_profiles;
DROP FUNCTION IF EXISTS onemap_access_log_append_only();
DROP FUNCTION IF EXISTS onemap_grids_keep_worker_level();
DROP FUNCTION IF EXISTS onemap_access_profiles_check_grid();
"""


class Migration(migrations.Migration):

    dependencies = [
        ('auth', '0012_alter_user_first_name_max_length'),
        ('onemap', '0002_grid_hierarchy_rules'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='AccessLogEntry',
            fields=[
                ('id', models.BigAutoField(primary_key=True, serialize=False)),
                ('at', models.DateTimeField(db_default=django.db.models.functions.datetime.Now())),
                ('user_id', models.BigIntegerField(blank=True, null=True)),
                ('username', models.TextField(blank=True, null=True)),
                ('role', models.TextField()),
                ('route', models.TextField(help_text='e.g. /ogc/collections/care_subjects/items')),
                ('collection', models.TextField()),
                ('record_id', models.TextField(blank=True, null=True)),
                ('remote_addr', models.GenericIPAddressField(blank=True, null=True)),
            ],
            options={
                'db_table': 'access_log',
                'indexes': [models.Index(fields=['at'], name='access_log_at_idx'), models.Index(fields=['collection', 'record_id'], name='access_log_record_idx')],
            },
        ),
        migrations.CreateModel(
            name='LoginFailure',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('at', models.DateTimeField(db_default=django.db.models.functions.datetime.Now())),
                ('remote_addr', models.GenericIPAddressField(blank=True, null=True)),
                ('username', models.CharField(blank=True, default='', help_text='Lower-cased; empty for Bearer', max_length=150)),
            ],
            options={
                'db_table': 'login_failures',
                'indexes': [models.Index(fields=['remote_addr', 'at'], name='login_failures_addr_at_idx'), models.Index(fields=['username', 'at'], name='login_failures_user_at_idx'), models.Index(fields=['at'], name='login_failures_at_idx')],
            },
        ),
        migrations.CreateModel(
            name='AccessProfile',
            fields=[
                ('user', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='access_profile', serialize=False, to=settings.AUTH_USER_MODEL)),
                ('role', models.CharField(choices=[('administrator', 'administrator'), ('commander', 'commander'), ('analyst', 'analyst'), ('grid_worker', 'grid worker'), ('department', 'department')], max_length=20)),
                ('department', models.CharField(blank=True, default='', max_length=100)),
                ('created_at', models.DateTimeField(auto_now_add=True, db_default=django.db.models.functions.datetime.Now())),
                ('grid', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='access_profiles', to='onemap.grid')),
            ],
            options={
                'db_table': 'access_profiles',
                'constraints': [models.CheckConstraint(condition=models.Q(('role__in', ('administrator', 'commander', 'analyst', 'grid_worker', 'department'))), name='access_profiles_role_known'), models.CheckConstraint(condition=models.Q(models.Q(('grid__isnull', False), ('role', 'grid_worker')), models.Q(models.Q(('role', 'grid_worker'), _negated=True), ('grid__isnull', True)), _connector='OR'), name='access_profiles_grid_iff_grid_worker')],
            },
        ),
        migrations.CreateModel(
            name='AccessToken',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(help_text='What the token is for, e.g. qgis-laptop', max_length=100)),
                ('digest', models.CharField(help_text='hex SHA-256 of the token', max_length=64)),
                ('hint', models.CharField(help_text="The token's first characters, to tell tokens apart", max_length=12)),
                ('created_at', models.DateTimeField(auto_now_add=True, db_default=django.db.models.functions.datetime.Now())),
                ('last_used_at', models.DateTimeField(blank=True, help_text='Updated at most once a minute', null=True)),
                ('expires_at', models.DateTimeField(blank=True, null=True)),
                ('revoked_at', models.DateTimeField(blank=True, null=True)),
                ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='access_tokens', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'db_table': 'access_tokens',
                'constraints': [models.UniqueConstraint(fields=('digest',), name='access_tokens_digest_unique'), models.CheckConstraint(condition=models.Q(('digest__regex', '^[0-9a-f]{64}$')), name='access_tokens_digest_hex')],
            },
        ),
        migrations.RunSQL(ACCESS_RULES, UNDO),
    ]
