"""The working calendar's overrides: a day the operator makes a day off (a typhoon) or a working day.

Case time limits count working time; China's public holidays and 调休 days come from the
package ``chinese_calendar``, and this table holds the days that differ from it.
"""

import django.db.models.functions.datetime
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("onemap", "0010_cases")]

    operations = [
        migrations.CreateModel(
            name="CalendarOverride",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("day", models.DateField(help_text="the local date (Asia/Shanghai) the override is for", unique=True)),
                ("working", models.BooleanField(
                    help_text="true: a working day with the usual hours; false: a day off")),
                ("reason", models.TextField(
                    help_text="why, as the operator gave it, e.g. 台风停工 (typhoon), 补班 (make-up day)")),
                ("created_at", models.DateTimeField(auto_now_add=True,
                                                    db_default=django.db.models.functions.datetime.Now())),
            ],
            options={
                "db_table": "calendar_overrides",
                "constraints": [models.CheckConstraint(condition=models.Q(("reason", ""), _negated=True),
                                                       name="calendar_overrides_reason_given")],
            },
        ),
    ]
