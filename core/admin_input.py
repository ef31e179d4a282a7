"""Admin requests carrying values the database cannot take are refused 400.

The Django admin trusts what its own pages send. A hand-made request put
values in queries that the database refuses, and Django answered 500 with a
traceback: an action's `_selected_action` that is no primary key of the
model (`abc`, an integer beyond the column), and on PostgreSQL any filter,
search or form value holding a NUL character (its text cannot hold one).
For a staff user, before the admin view runs, such a request is answered
400 with the reason; what the admin's own pages send is never refused.

One such value is no reason to refuse the request: a form field's. The form
says "Select a valid choice", but when it is shown again Django's
autocomplete widget looks the value up as it came (`abc` for a user), and
that query is the 500. `AutocompleteKeysOnly` gives an admin widgets that
leave such a value out, so the page shows the form's own error.
"""

from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.widgets import AutocompleteSelect
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.http import HttpResponseBadRequest


class AdminInputMiddleware:
    """Refuses, 400, an admin request the admin view would turn into a 500."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        # Django marks its admin views: a model's carry their ModelAdmin.
        model_admin = getattr(view_func, "model_admin", None)
        if model_admin is None and getattr(view_func, "admin_site", None) is None:
            return None
        if not (request.user.is_active and request.user.is_staff):
            return None  # the admin sends everyone else to its login page
        problem = (
            nul_in(request)
            or bad_selection(request, model_admin)
            or bad_filter(request, model_admin, view_func)
        )
        if problem is None:
            return None
        return HttpResponseBadRequest(
            f"{problem}\n", content_type="text/plain; charset=utf-8"
        )


def nul_in(request) -> str | None:
    """A NUL anywhere in the query string or the form, named; or None."""
    for data in (request.GET, request.POST):
        for name, values in data.lists():
            if "\x00" in name or any("\x00" in value for value in values):
                return "NUL characters are not allowed."
    return None


def bad_selection(request, model_admin) -> str | None:
    """Why the objects an action is asked to run on cannot be looked up; or None."""
    if model_admin is None or request.method != "POST":
        return None
    primary_key = model_admin.model._meta.pk
    for value in request.POST.getlist(ACTION_CHECKBOX_NAME):
        if not column_takes(primary_key, value):
            return "The selected objects are not valid identifiers."
    return None


# What a changelist reads besides its filters (django.contrib.admin.views.main).
CHANGELIST_CONTROLS = frozenset(
    {"all", "o", "p", "q", "e", "_to_field", "_popup", "_facets"}
)
# The lookups Django's own list filters send (exact and isnull for choices,
# booleans and relations, a range for dates, `isempty` for EmptyFieldListFilter).
OFFERED_LOOKUPS = frozenset(
    {"exact", "in", "isnull", "isempty", "gt", "gte", "lt", "lte"}
)
ANY_VALUE_LOOKUPS = frozenset({"isnull", "isempty"})


def bad_filter(request, model_admin, view_func) -> str | None:
    """Why a changelist's query cannot be run; or None.

    Django lets a changelist's query string filter on any lookup of the
    model's own fields, and some fail only when the query runs: a year out
    of range (`created_at__year=0`), a regex that does not compile, an
    integer beyond its column, a JSON lookup SQLite has not, text in an
    inet column. Here a query may use the lookups the list filters send,
    with values their column takes; a name that is no field is left to
    Django, which answers it itself (`?e=1`).
    """
    if model_admin is None or getattr(view_func, "__name__", "") != "changelist_view":
        return None
    own_filters = {
        getattr(each, "parameter_name", None) for each in model_admin.list_filter
    }
    for name, values in request.GET.lists():
        if name in CHANGELIST_CONTROLS or name in own_filters:
            continue
        resolved = _filtered_field(model_admin.model, name)
        if resolved is None:
            continue
        field, lookup = resolved
        if lookup not in OFFERED_LOOKUPS:
            return f"The list cannot be filtered with {name!r}."
        if lookup in ANY_VALUE_LOOKUPS:
            continue
        for value in values:
            items = value.split(",") if lookup == "in" else [value]
            if not all(column_takes(field, item) for item in items):
                return f"{name!r} cannot take that value."
    return None


def _filtered_field(model, name: str):
    """`(field, lookup)` that the filter parameter `name` names, following
    relations (`room__id__exact`, `user_id__in`); None when it names no field.
    A relation's field is the column it is filtered on (the related key)."""
    parts = name.split("__")
    field = None
    for index, part in enumerate(parts):
        try:
            field = model._meta.get_field(part)
        except FieldDoesNotExist:
            if field is None:
                return None
            return _column(field), "__".join(parts[index:])
        rest = parts[index + 1 :]
        if not rest:
            return _column(field), "exact"
        if not field.is_relation or field.related_model is None:
            return field, "__".join(rest)
        model = field.related_model
    return None


def _column(field):
    return field.target_field if field.is_relation else field


def column_takes(field, value) -> bool:
    """Whether `value` can be looked up in `field`'s column: its type, and the
    column's range (an integer beyond it overflows)."""
    try:
        field.run_validators(field.to_python(value))
    except ValidationError:
        return False
    return True


class KeysOnlyAutocompleteSelect(AutocompleteSelect):
    """Django's autocomplete widget, shown again with a value that is no key
    of the related model: the value is left out, not looked up."""

    def optgroups(self, name, value, attr=None):
        key = self.field.target_field
        keys = [each for each in value if column_takes(key, each)]
        return super().optgroups(name, keys, attr)


class AutocompleteKeysOnly:
    """Mixin for a ModelAdmin or an inline with `autocomplete_fields`."""

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if "widget" not in kwargs and db_field.name in self.get_autocomplete_fields(
            request
        ):
            kwargs["widget"] = KeysOnlyAutocompleteSelect(
                db_field, self.admin_site, using=kwargs.get("using")
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)
