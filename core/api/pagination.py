"""The API's pagination, for every list it serves."""

import re

from django.conf import settings
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination


class StrictPagination(PageNumberPagination):
    """Page-number pages; `page_size` may be asked for, from 1 to API_MAX_PAGE_SIZE.

    A `page` or `page_size` that is not such a number is a 400, not silently the default: a
    client that asks for 1000 rows should learn it gets at most API_MAX_PAGE_SIZE.
    """

    page_size = settings.API_PAGE_SIZE
    page_size_query_param = "page_size"
    max_page_size = settings.API_MAX_PAGE_SIZE
    # ASCII digits only: str.isdigit() also takes "①", "²" and "٣", which int() refuses or
    # reads; and a bound on the length, as int() refuses strings of over 4300 digits.
    _ascii_whole_number = re.compile(r"[0-9]{1,12}")

    def get_page_size(self, request) -> int:
        asked = self._whole_number(request, self.page_size_query_param, most=self.max_page_size)
        return asked or self.page_size

    def get_page_number(self, request, paginator) -> int:
        # A page past the last is still DRF's 404; a page that is no number at all is a 400.
        return self._whole_number(request, self.page_query_param, most=10**9) or 1

    def get_schema_operation_parameters(self, view) -> list[dict]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] |= {"minimum": 1, "maximum": self.max_page_size}
            if parameter["name"] == self.page_query_param:
                parameter["schema"] |= {"minimum": 1, "maximum": 10**9}
        return parameters

    def _whole_number(self, request, name: str, *, most: int) -> int | None:
        """The query parameter `name` as a number from 1 to `most`, None when absent, or a 400."""
        asked = request.query_params.getlist(name)
        if not asked:
            return None
        valid = len(asked) == 1 and self._ascii_whole_number.fullmatch(asked[0])
        if not valid or not 1 <= int(asked[0]) <= most:
            raise ValidationError(
                {name: [f"Must be a whole number from 1 to {most}."]}, code="invalid"
            )
        return int(asked[0])
