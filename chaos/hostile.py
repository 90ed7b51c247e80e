"""python -m chaos.hostile: hostile requests against a running Orderflow; each must get a 4xx.

Oversized, malformed and mistyped bodies, SQL and script strings where ids, numbers and codes
belong, another buyer's order, forged credentials, wrong methods and content types. The
attacker's and the victim's orders are read through the API before and after: nothing may
change. Then password guesses on both login pages, each posted as a browser would (the page's
CSRF token and cookie): none may sign in, and the last on each page must be locked out (429).
Then a flood of concurrent /readyz probes, each answered 200. At the end /readyz is 200 and
the API answers. Exits 0 when all of that holds, 1 otherwise.

The guesses lock out the address the script runs from, and the username guessed (by default
a made-up one), for LOGIN_COOLOFF_MINUTES; `manage.py axes_reset_ip ADDRESS` lifts it.

    python -m chaos.hostile http://127.0.0.1:8000 --token ATTACKER --victim-token VICTIM
"""

import argparse
import http.client
import json
import secrets
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

from .http import ApiClient, BrowserSession

ORDERS = "/api/orders/"
VALID = {"product_name": "Widget", "quantity": 1, "unit_price": "1.00"}
SQL = "1'; DROP TABLE ordering_order; --"
SCRIPT = "<script>alert(1)</script>"


@dataclass(frozen=True)
class Hostile:
    name: str
    method: str
    path: str
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    credentials: str = "attacker"  # or "none", or a forged Authorization header value


def json_body(value: object) -> bytes:
    return json.dumps(value).encode()


def order_body(**changes: object) -> bytes:
    return json_body(VALID | changes)


def hostile_requests(*, victim_order: str) -> list[Hostile]:
    """The scripted set. `victim_order` is an order of another buyer."""
    post = "POST"
    bodies = {
        "malformed JSON": b"{not json",
        "a JSON array": b"[1, 2]",
        "a JSON string": b'"an order"',
        "JSON null": b"null",
        "20,000 nested arrays": b"[" * 20_000 + b"]" * 20_000,
        "bytes that are not UTF-8": b'{"product_name": "\xff\xfe"}',
        "quantity as text": order_body(quantity="three"),
        "quantity as a fraction": order_body(quantity=1.5),
        "quantity as a boolean": order_body(quantity=True),
        "quantity of 10^30": order_body(quantity=10**30),
        "a negative quantity": order_body(quantity=-1),
        "quantity with SQL": order_body(quantity=SQL),
        "price as a JSON number": order_body(unit_price=12.5),
        "a negative price": order_body(unit_price="-1.00"),
        "price 1e400": order_body(unit_price="1e400"),
        "price NaN": order_body(unit_price="NaN"),
        "price with SQL": order_body(unit_price="1' OR '1'='1"),
        "product name a number": order_body(product_name=123),
        "product name null": order_body(product_name=None),
        "product name an operator object": order_body(product_name={"$gt": ""}),
        "product name too long": order_body(product_name="x" * 201),
        "product name with a NUL byte": order_body(product_name="a\x00b"),
        "product name a lone surrogate": order_body(product_name="\ud800"),
        "currency with a script": order_body(currency=SCRIPT),
        "currency with SQL": order_body(currency="' OR 1=1 --"),
        "a lower-case currency": order_body(currency="eur"),
        "a status smuggled in": order_body(status="PROCESSED"),
        "a total smuggled in": order_body(total="0.01"),
        "a buyer smuggled in": order_body(buyer=1),
        "the victim's id smuggled in": order_body(id=victim_order),
    }
    requests = [Hostile(f"create: {name}", post, ORDERS, body) for name, body in bodies.items()]
    requests += [
        Hostile("create: a body over the limit", post, ORDERS,
                order_body(product_name="x" * 70_000)),
        Hostile(
            "create: a Content-Length of 1 GB, and 20 bytes sent",
            post,
            ORDERS,
            b'{"product_name": "x"',
            {"Content-Length": str(10**9)},
        ),
        Hostile("create: form-encoded", post, ORDERS, b"product_name=x&quantity=1",
                {"Content-Type": "application/x-www-form-urlencoded"}),
        Hostile("create: XML", post, ORDERS, b"<order/>", {"Content-Type": "application/xml"}),
        Hostile("create: text", post, ORDERS, order_body(), {"Content-Type": "text/plain"}),
        Hostile("create: an Idempotency-Key with spaces and SQL", post, ORDERS, order_body(),
                {"Idempotency-Key": "' OR 1=1 --"}),
        Hostile("create: a 300-character Idempotency-Key", post, ORDERS, order_body(),
                {"Idempotency-Key": "k" * 300}),
        Hostile("create: a non-ASCII Idempotency-Key", post, ORDERS, order_body(),
                {"Idempotency-Key": "clé-1"}),
        Hostile("create: without credentials", post, ORDERS, order_body(), credentials="none"),
        Hostile("create: a forged token", post, ORDERS, order_body(),
                credentials="Token ' OR 1=1 --"),
        Hostile("create: a bearer token", post, ORDERS, order_body(), credentials="Bearer x"),
        Hostile("read: the victim's order", "GET", f"{ORDERS}{victim_order}/"),
        Hostile("cancel: the victim's order", post, f"{ORDERS}{victim_order}/cancel/"),
        Hostile("read: the victim's order without credentials", "GET",
                f"{ORDERS}{victim_order}/", credentials="none"),
        Hostile("read: an id with SQL", "GET", f"{ORDERS}{quote(SQL, safe='')}/"),
        Hostile("cancel: an id with a script", post, f"{ORDERS}{quote(SCRIPT, safe='')}/cancel/"),
        Hostile("list: a status with SQL", "GET", f"{ORDERS}?status={quote(SQL)}"),
        Hostile("list: a status with a script", "GET", f"{ORDERS}?status={quote(SCRIPT)}"),
        Hostile("list: a page size of a million", "GET", f"{ORDERS}?page_size=1000000"),
        Hostile("list: a negative page size", "GET", f"{ORDERS}?page_size=-1"),
        Hostile("list: page 0", "GET", f"{ORDERS}?page=0"),
        Hostile("list: a page with SQL", "GET", f"{ORDERS}?page={quote(SQL)}"),
        Hostile("update: PUT the victim's order", "PUT", f"{ORDERS}{victim_order}/", order_body()),
        Hostile("update: PATCH the victim's order", "PATCH", f"{ORDERS}{victim_order}/",
                json_body({"status": "CANCELED"})),
        Hostile("delete: the victim's order", "DELETE", f"{ORDERS}{victim_order}/"),
        Hostile("delete: every order", "DELETE", ORDERS),
        Hostile("a forged Host header", "GET", ORDERS, headers={"Host": "evil.example"}),
        Hostile("a 100 kB header", "GET", ORDERS, headers={"X-Junk": "j" * 100_000}),
        Hostile("a 20 kB URL", "GET", f"{ORDERS}?status={'A' * 20_000}"),
    ]  # fmt: skip
    return requests


def send(base_url: str, request: Hostile, credentials: str | None) -> int:
    """Sends the request byte for byte as written; returns the status, 0 when none came."""
    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    headers = {"Accept": "application/json", "Connection": "close"}
    if request.body is not None:
        headers |= {"Content-Type": "application/json", "Content-Length": str(len(request.body))}
    if credentials:
        headers["Authorization"] = credentials
    headers |= request.headers
    try:
        connection.putrequest(request.method, request.path, skip_host="Host" in headers)
        for name, value in headers.items():
            connection.putheader(name, value.encode("utf-8"))
        connection.endheaders(request.body)
        return connection.getresponse().status
    except (OSError, http.client.HTTPException):
        return 0  # no answer: a hang, a reset, a crash
    finally:
        connection.close()


def orders_seen_by(client: ApiClient) -> list[tuple]:
    response = client.get(f"{ORDERS}?page_size=100")
    if response.status != 200:
        raise RuntimeError(f"cannot list orders: {response.status} {response.body}")
    return sorted(
        (o["id"], o["status"], o["version"], o["total"]) for o in response.body["results"]
    )


LOGIN_PAGES = ("/admin/login/", "/api-auth/login/")
REFUSED, LOCKED_OUT = 200, 429  # a login page shown again with an error; django-axes' lockout


@dataclass(frozen=True)
class LoginGuess:
    page: str
    status: int
    signed_in: bool


def guess_passwords(base_url: str, *, username: str, guesses: int) -> list[LoginGuess]:
    """Wrong passwords for `username` on each login page, each from a new browser session
    that loads the page for its CSRF token first, as a guessing script would."""
    answers = []
    for page in LOGIN_PAGES:
        for n in range(guesses):
            browser = BrowserSession(base_url)
            try:
                status = browser.post_form(page, {"username": username, "password": f"guess{n}"})
            except OSError:
                answers.append(LoginGuess(page, 0, signed_in=False))
                continue
            answers.append(LoginGuess(page, status.status, signed_in=browser.signed_in))
    return answers


def readiness_status(base_url: str) -> int:
    try:
        return ApiClient(base_url).get("/readyz").status
    except OSError:
        return 0


def flood_readiness(base_url: str, *, probes: int, concurrency: int = 20) -> list[int]:
    """`probes` anonymous GET /readyz, `concurrency` at a time; their statuses (0: none)."""
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return list(pool.map(lambda _: readiness_status(base_url), range(probes)))


@dataclass
class Report:
    answers: list[tuple[str, int]]
    changed: list[str]
    logins: list[LoginGuess] = field(default_factory=list)
    probes: list[int] = field(default_factory=list)
    ready_after: int = 0

    @property
    def not_4xx(self) -> list[tuple[str, int]]:
        return [(name, status) for name, status in self.answers if not 400 <= status < 500]

    @property
    def bad_logins(self) -> list[LoginGuess]:
        """Guesses that signed in, or got neither a refusal nor a lockout."""
        return [g for g in self.logins if g.signed_in or g.status not in (REFUSED, LOCKED_OUT)]

    @property
    def pages_not_locked(self) -> list[str]:
        """Login pages whose last guess was still let through to the password check."""
        last = {guess.page: guess.status for guess in self.logins}
        return [page for page, status in last.items() if status != LOCKED_OUT]

    @property
    def passed(self) -> bool:
        return (
            not self.not_4xx
            and not self.changed
            and not self.bad_logins
            and not self.pages_not_locked
            and all(status == 200 for status in self.probes)
            and self.ready_after == 200
        )


def run(
    base_url: str,
    *,
    token: str,
    victim_token: str,
    login_username: str | None = None,
    login_guesses: int = 8,
    readiness_probes: int = 200,
) -> Report:
    """Sends the whole set as the attacker (the victim's first order is the target), guesses
    passwords, floods /readyz, and checks that the server is still ready and answering."""
    attacker, victim = ApiClient(base_url, token), ApiClient(base_url, victim_token)
    victim_orders = orders_seen_by(victim)
    if not victim_orders:
        raise RuntimeError("the victim has no order to attack: place one first")
    before = {"attacker": orders_seen_by(attacker), "victim": victim_orders}
    answers = []
    for request in hostile_requests(victim_order=victim_orders[0][0]):
        credentials = {"attacker": f"Token {token}", "none": None}.get(
            request.credentials, request.credentials
        )
        answers.append((request.name, send(base_url, request, credentials)))
    username = login_username or f"hostile-{secrets.token_hex(4)}"
    logins = guess_passwords(base_url, username=username, guesses=login_guesses)
    probes = flood_readiness(base_url, probes=readiness_probes)
    after = {"attacker": orders_seen_by(attacker), "victim": orders_seen_by(victim)}
    changed = [f"the {who}'s orders" for who in before if before[who] != after[who]]
    return Report(
        answers=answers,
        changed=changed,
        logins=logins,
        probes=probes,
        ready_after=readiness_status(base_url),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos.hostile", description=__doc__)
    parser.add_argument("base_url", help="the web process, e.g. http://127.0.0.1:8000")
    parser.add_argument("--token", required=True, help="API token of the attacking buyer")
    parser.add_argument("--victim-token", required=True, help="API token of another buyer")
    parser.add_argument(
        "--login-username", help="the username to guess passwords for (default: a made-up one)"
    )
    parser.add_argument("--login-guesses", type=int, default=8, help="per login page")
    parser.add_argument("--readiness-probes", type=int, default=200, help="concurrent /readyz")
    args = parser.parse_args(argv)
    report = run(
        args.base_url,
        token=args.token,
        victim_token=args.victim_token,
        login_username=args.login_username,
        login_guesses=args.login_guesses,
        readiness_probes=args.readiness_probes,
    )
    for name, status in report.answers:
        mark = "ok  " if 400 <= status < 500 else "FAIL"
        print(f"{mark} {status or 'no answer':>9}  {name}")
    for what in report.changed:
        print(f"FAIL {what} changed")
    outcomes = {REFUSED: "refused", LOCKED_OUT: "locked out"}
    for guess in report.logins:
        mark = "FAIL" if guess in report.bad_logins else "ok  "
        outcome = "SIGNED IN" if guess.signed_in else outcomes.get(guess.status, "?")
        print(f"{mark} {guess.status or 'no answer':>9}  password guess on {guess.page}: {outcome}")
    for page in report.pages_not_locked:
        print(f"FAIL guesses on {page} were never locked out")
    flood_ok = sum(status == 200 for status in report.probes)
    mark = "ok  " if flood_ok == len(report.probes) else "FAIL"
    print(f"{mark} {flood_ok}/{len(report.probes)} concurrent /readyz probes answered 200")
    mark = "ok  " if report.ready_after == 200 else "FAIL"
    print(f"{mark} {report.ready_after or 'no answer':>9}  /readyz afterwards")
    total = len(report.answers) + len(report.logins) + len(report.probes)
    verdict = "passed" if report.passed else "FAILED"
    print(
        f"{total} requests ({len(report.answers)} hostile, {len(report.logins)} password "
        f"guesses, {len(report.probes)} readiness probes): {verdict}"
    )
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
