"""The API's one request parser: DRF's JSON parser, safe against deeply nested input."""

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    """DRF's JSONParser, with a 400 for JSON nested past Python's recursion limit.

    `[[[[...]]]]` a few thousand levels deep fits easily under MAX_REQUEST_BODY_BYTES and
    makes json.loads raise RecursionError, which DRF does not catch: a 500 otherwise.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply.") from None
