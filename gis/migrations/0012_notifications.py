"""The notification outbox (``notifications``, ``notification_attempts``) and in-app notifications on the live feed.

An outbox row is written in the transaction of the change it tells of; the worker sends it.
``live_events.notification_id`` carries an in-app notification to the big screen's feed
(kind ``notification``). The job queue's own tables come with ``procrastinate.contrib.django``.
"""

import django.db.models.deletion
import django.db.models.functions.datetime
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('onemap', '0011_calendar_overrides'),
    ]

    operations = [
        migrations.AddField(
            model_name='liveevent',
            name='notification_id',
            field=models.BigIntegerField(blank=True, null=True),
        ),
        migrations.CreateModel(
            name='Notification',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('key', models.CharField(help_text='Idempotency key: one notification per key, sent with every attempt', max_length=200, unique=True)),
                ('channel', models.CharField(choices=[('in_app', 'in_app'), ('dingtalk', 'dingtalk'), ('sms', 'sms')], max_length=10)),
                ('recipient', models.CharField(help_text='A user name (in_app), robot name (dingtalk) or phone (sms)', max_length=200)),
                ('subject_kind', models.CharField(help_text='What it is about, e.g. case', max_length=30)),
                ('subject_id', models.BigIntegerField(blank=True, null=True)),
                ('payload', models.JSONField(blank=True, default=dict, help_text='{title, text, ...}')),
                ('state', models.CharField(choices=[('pending', 'pending'), ('sending', 'sending'), ('delivered', 'delivered'), ('failed', 'failed'), ('dead', 'dead'), ('coalesced', 'coalesced')], default='pending', max_length=10)),
                ('attempts', models.PositiveSmallIntegerField(default=0)),
                ('next_attempt_at', models.DateTimeField(blank=True, db_default=django.db.models.functions.datetime.Now(), null=True)),
                ('last_error', models.TextField(blank=True, default='')),
                ('created_at', models.DateTimeField(db_default=django.db.models.functions.datetime.Now())),
                ('delivered_at', models.DateTimeField(blank=True, null=True)),
                ('summary', models.ForeignKey(blank=True, help_text='The summary it was coalesced into (dingtalk storms)', null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='members', to='onemap.notification')),
            ],
            options={
                'db_table': 'notifications',
            },
        ),
        migrations.CreateModel(
            name='NotificationAttempt',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('channel', models.CharField(max_length=10)),
                ('recipient', models.CharField(max_length=200)),
                ('at', models.DateTimeField(db_default=django.db.models.functions.datetime.Now())),
                ('outcome', models.TextField(blank=True, default='', help_text='ok, or the error; empty while (or if cut off) sending')),
                ('notification', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='attempt_log', to='onemap.notification')),
            ],
            options={
                'db_table': 'notification_attempts',
            },
        ),
        migrations.AddIndex(
            model_name='notification',
            index=models.Index(condition=models.Q(('state__in', ['pending', 'sending', 'failed'])), fields=['next_attempt_at'], name='notifications_due_idx'),
        ),
        migrations.AddIndex(
            model_name='notification',
            index=models.Index(condition=models.Q(('state', 'dead')), fields=['created_at'], name='notifications_dead_idx'),
        ),
        migrations.AddIndex(
            model_name='notification',
            index=models.Index(fields=['subject_kind', 'subject_id'], name='notifications_subject_idx'),
        ),
        migrations.AddConstraint(
            model_name='notification',
            constraint=models.CheckConstraint(condition=models.Q(('channel__in', ['in_app', 'dingtalk', 'sms'])), name='notifications_channel_known'),
        ),
        migrations.AddConstraint(
            model_name='notification',
            constraint=models.CheckConstraint(condition=models.Q(('state__in', ['pending', 'sending', 'delivered', 'failed', 'dead', 'coalesced'])), name='notifications_state_known'),
        ),
        migrations.AddIndex(
            model_name='notificationattempt',
            index=models.Index(fields=['channel', 'recipient', 'at'], name='notification_attempts_rate_idx'),
        ),
    ]
