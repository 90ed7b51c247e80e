"""Request guards that apply to every URL, before any view reads the request."""

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from . import logcontext


class RequestIdMiddleware:
    """Gives each request an id: the router's X-Request-ID when sane, else a new one.

    Bound to every log line of the request and to the messages it causes; answered in the
    X-Request-ID response header, so a client can quote it.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = logcontext.request_id_from(request.headers.get("X-Request-ID"))
        with logcontext.bound(request_id=request_id):
            response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response


class RequestBodyLimitMiddleware:
    """Answers 413 to a body over MAX_REQUEST_BODY_BYTES, judged by Content-Length alone.

    Django refuses such bodies only when they are read, and then with a 400; checking the
    header first tells the client what is wrong and never reads the body.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.MAX_REQUEST_BODY_BYTES
        if _content_length(request) > limit:
            return JsonResponse(
                {"detail": f"Request body too large: at most {limit} bytes.", "code": "too_large"},
                status=413,
            )
        return self.get_response(request)


def _content_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0  # Django reads no body with an unreadable Content-Length
