from django.contrib import admin

from observability.models import ModelPrice
from workspaces.admin_audit import AuditedAdmin


@admin.register(ModelPrice)
class ModelPriceAdmin(AuditedAdmin, admin.ModelAdmin):
    list_display = ("provider", "model", "input_per_million", "output_per_million", "cached_input_per_million",
                    "is_example", "updated_at")
    list_filter = ("provider", "is_example")
    search_fields = ("model", "note")
    fields = ("provider", "model", "input_per_million", "output_per_million", "cached_input_per_million", "note",
              "is_example")

    def save_model(self, request, obj, form, change) -> None:
        # A row an operator has checked and saved is no longer "an example".
        if change and "is_example" not in form.changed_data:
            obj.is_example = False
        super().save_model(request, obj, form, change)
