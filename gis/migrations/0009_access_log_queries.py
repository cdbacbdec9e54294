"""The access log keeps each query on personal data, not only the records it returned.

A grid worker filtering ``care_subjects`` on a name with ``offset`` past the end got no
record, so nothing was logged, yet ``numberMatched`` told whether the name was there.
Every query now writes one row with its parameters (``query``) and its count
(``matched``), beside the rows of the records it returned.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("onemap", "0008_history_commit_order")]

    operations = [
        migrations.AddField(
            model_name="accesslogentry",
            name="query",
            field=models.TextField(blank=True, help_text="the query's parameters (query rows only)", null=True),
        ),
        migrations.AddField(
            model_name="accesslogentry",
            name="matched",
            field=models.BigIntegerField(blank=True, help_text="records the query matched (query rows only)",
                                         null=True),
        ),
    ]
