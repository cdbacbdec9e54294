# People counted per hour by courtyard cameras (issue 17: people at the door); no identity.

import django.db.models.deletion
import django.db.models.functions.datetime
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('onemap', '0023_camera_health'),
    ]

    operations = [
        migrations.CreateModel(
            name='PeopleCount',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('hour', models.DateTimeField(help_text="start of the hour (UTC), date_trunc('hour', ...)")),
                ('count', models.PositiveIntegerField(default=0)),
                ('last_pass_at', models.DateTimeField(help_text='the latest pass counted: an older one is not counted again')),
                ('updated_at', models.DateTimeField(db_default=django.db.models.functions.datetime.Now())),
                ('building', models.ForeignKey(blank=True, help_text="the camera's building, or the nearest one within 100 m of it", null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='people_counts', to='onemap.building')),
                ('camera', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='people_counts', to='onemap.camera')),
            ],
            options={
                'db_table': 'people_counts',
                'constraints': [models.UniqueConstraint(fields=('camera', 'hour'), name='people_counts_camera_hour_unique')],
            },
        ),
    ]
