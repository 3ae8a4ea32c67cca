from django.contrib import admin

from observability.models import ModelLimit, ModelPrice
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


@admin.register(ModelLimit)
class ModelLimitAdmin(AuditedAdmin, admin.ModelAdmin):
    list_display = ("model", "max_in_flight", "requests_per_minute", "tokens_per_minute", "in_force", "updated_at")
    search_fields = ("model", "note")
    fields = ("model", "max_in_flight", "requests_per_minute", "tokens_per_minute", "note")

    @admin.display(description="in force (with the settings)")
    def in_force(self, obj: ModelLimit) -> str:
        from tasks.limits import limit_for

        return limit_for(obj.model).describe()
