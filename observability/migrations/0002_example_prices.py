"""EXAMPLE price rows (is_example=True), so cost works out of the box.

They are examples, not a price list: providers change their prices. Check each row against
the provider's current price page and edit it in the admin (Observability > Model prices);
saving a row there clears its "example" flag. Rows an operator already has are left alone.
"""

from decimal import Decimal

from django.db import migrations

NOTE = "EXAMPLE price (USD per million tokens): check the provider's price page before relying on it."
EXAMPLES = [
    # provider, model (or prefix), input, output, cached input
    ("openai", "gpt-4o-mini", "0.15", "0.60", "0.075"),
    ("openai", "gpt-4o", "2.50", "10.00", "1.25"),
    ("openai", "gpt-4.1-mini", "0.40", "1.60", "0.10"),
    ("anthropic", "claude-sonnet-4-5", "3.00", "15.00", "0.30"),
    ("anthropic", "claude-haiku-4-5", "1.00", "5.00", "0.10"),
    ("offline", "offline-rules", "0", "0", "0"),  # the built-in rule set: free
]


def add_examples(apps, schema_editor):
    ModelPrice = apps.get_model("observability", "ModelPrice")
    for provider, model, input_price, output_price, cached in EXAMPLES:
        ModelPrice.objects.get_or_create(provider=provider, model=model, defaults={
            "input_per_million": Decimal(input_price), "output_per_million": Decimal(output_price),
            "cached_input_per_million": Decimal(cached), "is_example": True, "note": NOTE})


def remove_examples(apps, schema_editor):
    ModelPrice = apps.get_model("observability", "ModelPrice")
    ModelPrice.objects.filter(is_example=True, note=NOTE).delete()


class Migration(migrations.Migration):
    dependencies = [("observability", "0001_initial")]
    operations = [migrations.RunPython(add_examples, remove_examples)]
