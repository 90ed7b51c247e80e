"""Admin search by UUID, shared by every admin whose rows are found by an id."""

import uuid


class UUIDSearchMixin:
    """Adds an exact match on `uuid_search_field` when the search term is a UUID.

    Django's search would compare a UUID column with any text (and fail on non-UUIDs);
    the match stays within the list filters already applied.
    """

    uuid_search_field = "pk"

    def get_search_results(self, request, queryset, search_term):
        found, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        try:
            value = uuid.UUID(search_term.strip())
        except ValueError:
            return found, may_have_duplicates
        return found | queryset.filter(**{self.uuid_search_field: value}), may_have_duplicates
