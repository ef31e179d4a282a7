from django.contrib import admin

from examples.shareddoc.models import Document


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    list_display = ("id", "title", "owner")
    # Saving the form removes collaborators one by one: the signal fires.
    filter_horizontal = ("collaborators",)
