"""A small HTTP client for the live web process (stdlib only)."""

import http.cookiejar
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: object


class ApiClient:
    def __init__(self, base_url: str, token: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token

    def get(self, path: str) -> Response:
        return self.request("GET", path)

    def post(self, path: str, body: object = None, headers: dict | None = None) -> Response:
        return self.request("POST", path, body, headers)

    def request(
        self, method: str, path: str, body: object = None, headers: dict | None = None
    ) -> Response:
        all_headers = {"Accept": "application/json", **(headers or {})}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            all_headers["Content-Type"] = "application/json"
        if self.token:
            all_headers["Authorization"] = f"Token {self.token}"
        request = urllib.request.Request(  # noqa: S310 - a local test server
            self.base_url + path, data=data, method=method, headers=all_headers
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as reply:  # noqa: S310
                return _response(reply.status, reply.headers, reply.read())
        except urllib.error.HTTPError as error:
            return _response(error.code, error.headers, error.read())


def _response(status: int, headers, raw: bytes) -> Response:
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = raw.decode(errors="replace")
    return Response(status=status, headers=dict(headers.items()), body=body)


def wait_for_http(url: str, timeout: float = 60) -> None:
    """Wait until something answers HTTP at url (any status: 401 means it is serving)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)  # noqa: S310 - our own local server
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


class BrowserSession:
    """The live web process's pages as a browser sees them: cookies kept, CSRF tokens sent."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    @property
    def signed_in(self) -> bool:
        return "sessionid" in {cookie.name for cookie in self.cookies}

    def get(self, path: str) -> Response:
        return self._open(urllib.request.Request(self.base_url + path))  # noqa: S310 - local

    def post_form(self, path: str, fields: dict | list[tuple[str, str]]) -> Response:
        """POST a form from the page at `path`, with the CSRF token that page set."""
        self.get(path)
        token = next(c.value for c in self.cookies if c.name == "csrftoken")
        items = list(fields.items() if isinstance(fields, dict) else fields)
        data = urllib.parse.urlencode([("csrfmiddlewaretoken", token), *items]).encode()
        request = urllib.request.Request(  # noqa: S310 - a local test server
            self.base_url + path, data=data, headers={"Referer": self.base_url + path}
        )
        return self._open(request)

    def _open(self, request: urllib.request.Request) -> Response:
        try:
            with self.opener.open(request, timeout=30) as reply:
                return Response(reply.status, dict(reply.headers.items()), reply.read().decode())
        except urllib.error.HTTPError as error:
            return Response(error.code, dict(error.headers.items()), error.read().decode())


class AdminSession(BrowserSession):
    """A signed-in staff user of the live admin."""

    def __init__(self, base_url: str, username: str, password: str) -> None:
        super().__init__(base_url)
        self.post_form("/admin/login/", {"username": username, "password": password})
        if not self.signed_in:
            raise AssertionError(f"could not sign in to the admin as {username}")
