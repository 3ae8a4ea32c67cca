from django.db import migrations
from pgvector.django import VectorExtension


class Migration(migrations.Migration):
    """pgvector must exist before any VectorField; memory's later migrations depend on this."""

    initial = True
    dependencies: list = []
    operations = [VectorExtension()]
