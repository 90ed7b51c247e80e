"""An operator in a real browser: log in, place an order from Swagger UI, watch the
dashboard, replay a dead letter.

Headless Chromium (Debian's, at /usr/bin/chromium, which scripts/test.sh installs) driven by
Playwright against the live system: gunicorn serving the admin with its static files, the
worker, the relay and the dead-letter consumer. Screenshots of each step are saved in
test-artifacts/browser/.
"""

import json
import re
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from chaos.processes import ARTIFACTS
from fakegateway.models import FakeGatewayFault
from messaging.models import DeadLetter

from ..factories import web_superuser
from .test_dead_letters import billing_message_of, dead_letter_of, wait_for_status
from .test_pipeline import charges_at_gateway, post_order, wait_for_terminal

pytestmark = [pytest.mark.broker, pytest.mark.timeout(180)]

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = ARTIFACTS / "browser"
PASSWORD = "a browser types this"


@pytest.fixture(scope="module")
def browser() -> Browser:
    assert CHROMIUM.exists(), (
        f"{CHROMIUM} is missing: the browser test needs Debian's chromium. scripts/test.sh "
        "installs it (apt-get install chromium); Playwright's own browser download is not used."
    )
    # Playwright's sync API keeps an asyncio loop running in this thread, which Django takes
    # for an async context; the test's ORM calls are still plain sequential code.
    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield browser
        browser.close()


class Screenshots:
    def __init__(self, page: Page, directory: Path) -> None:
        self.page = page
        self.directory = directory
        self.taken: list[Path] = []

    def __call__(self, name: str) -> None:
        path = self.directory / f"{len(self.taken) + 1:02d}-{name}.png"
        self.page.screenshot(path=path, full_page=True)
        self.taken.append(path)


@pytest.fixture
def failed_requests() -> list[str]:
    return []


@pytest.fixture
def page(browser, system, failed_requests):
    """A fresh browser tab on the live web process; requests answered 4xx/5xx are recorded."""
    context = browser.new_context(base_url=system.base_url, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.on(
        "response",
        lambda response: response.status >= 400 and failed_requests.append(response.url),
    )
    yield page
    context.close()


@pytest.fixture
def screenshots(page, request, capsys):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for old in SCREENSHOTS.glob("*.png"):
        old.unlink()
    shots = Screenshots(page, SCREENSHOTS)
    failures_before = request.session.testsfailed
    yield shots
    if request.session.testsfailed > failures_before:  # the page as the failure left it
        shots("failed")
    with capsys.disabled():
        print(f"\nbrowser screenshots: {SCREENSHOTS}/ ({len(shots.taken)} files)")


@pytest.fixture
def operator(system):
    system.restart_web()  # the admin's log entries need this test's content type ids
    return web_superuser("operator", PASSWORD)


def status_count(page: Page, status: str):
    return page.locator(f'#orders-by-status tr[data-status="{status}"] td')


def queue_depth_cell(page: Page, queue: str):
    return page.locator(f'#queue-depths tr[data-queue="{queue}"] td.depth')


def place_order_in_swagger_ui(page: Page, body: dict) -> uuid.UUID:
    """POST /api/orders/ with Swagger UI's "Try it out", signed in by the admin's session."""
    page.goto("/api/docs/")
    operation = page.locator("#operations-orders-orders_create")
    operation.locator(".opblock-summary").click()
    operation.locator("button.try-out__btn").click()
    operation.locator("textarea.body-param__text").fill(json.dumps(body))
    operation.locator("button.execute").click()
    response = operation.locator(".live-responses-table .response")
    expect(response.locator(".response-col_status")).to_have_text("201")
    body_shown = response.locator(".response-col_description pre").first.inner_text()
    return uuid.UUID(json.loads(body_shown)["id"])


def test_an_operator_watches_the_dashboard_and_replays_a_dead_letter_in_a_browser(
    system, buyer_api, page, screenshots, operator, failed_requests
):
    assert wait_for_terminal(post_order(buyer_api)).status == "PROCESSED"

    # Log in to the admin.
    page.goto("/admin/")
    expect(page).to_have_url(re.compile(r"/admin/login/\?next=/admin/$"))
    page.fill("#id_username", operator.username)
    page.fill("#id_password", PASSWORD)
    screenshots("login")
    page.click("input[type=submit]")
    expect(page).to_have_url(re.compile(r"/admin/$"))
    # The admin's own CSS is served (whitenoise, collected static files).
    header_colour = page.eval_on_selector("#header", "e => getComputedStyle(e).backgroundColor")
    assert header_colour not in ("", "rgba(0, 0, 0, 0)", "transparent")
    screenshots("admin-index")

    # The dashboard, from the admin index.
    page.click("text=Operations dashboard")
    expect(page).to_have_url(re.compile(r"/admin/dashboard/$"))
    expect(status_count(page, "PROCESSED")).to_have_text("1")
    expect(page.locator("#orders-per-minute .placed-total")).to_have_text("1")
    expect(page.locator("#orders-per-minute rect.bar")).to_have_count(1)
    expect(page.locator("#time-to-terminal .p50-hour")).to_have_text(re.compile(r"^\d+\.\d\d s$"))
    for queue in ("fraud", "billing", "dead_letter"):
        expect(queue_depth_cell(page, queue)).to_have_text(re.compile(r"^\d+$"))
    expect(page.locator("#dead-letters .count")).to_have_text("0")
    screenshots("dashboard")

    # An order placed from Swagger UI whose payment times out on every try: its billing
    # step is dead-lettered.
    fault = FakeGatewayFault.objects.create(remaining=1000)
    doomed = place_order_in_swagger_ui(
        page, {"product_name": "Doomed teapot", "quantity": 1, "unit_price": "12.50"}
    )
    screenshots("swagger-ui-order-placed")
    wait_for_status(doomed, "FAILED")
    dead_letter = dead_letter_of(billing_message_of(doomed).id)

    page.goto("/admin/dashboard/?refresh=off")
    expect(status_count(page, "FAILED")).to_have_text("1")
    expect(page.locator("#dead-letters .count")).to_have_text("1")
    row = page.locator(f'#dead-letters tr[data-dead-letter="{dead_letter.pk}"]')
    expect(row).to_contain_text("billing.charge_order")
    expect(row).to_contain_text("rejected")
    screenshots("dashboard-dead-letter")

    # The operator fixes the cause, then replays the dead letter from the admin.
    fault.delete()
    row.locator("a.replay").click()
    expect(page).to_have_url(
        re.compile(rf"/admin/messaging/deadletter/\?id__exact={dead_letter.pk}$")
    )
    page.check(f'input[name="_selected_action"][value="{dead_letter.pk}"]')
    page.select_option("select[name=action]", "replay_selected")
    screenshots("replay-selected")
    page.click("button[name=index]")
    expect(page.locator("ul.messagelist")).to_contain_text("Replayed 1 dead letter(s).")
    screenshots("replayed")

    # The order resumes and reaches PROCESSED, charged once.
    assert wait_for_terminal(doomed).status == "PROCESSED"
    assert charges_at_gateway(doomed) == 1
    page.goto(f"/admin/ordering/order/{doomed}/change/")
    expect(page.locator(".field-status .readonly")).to_have_text("Processed")
    expect(page.locator("#events-group")).to_contain_text("FAILED")
    screenshots("order-processed")

    # Its timeline: the events, the billing message, its death and the replay, in order.
    billing_message = billing_message_of(doomed)
    page.click("#timeline-link")
    expect(page).to_have_url(re.compile(rf"/admin/ordering/order/{doomed}/timeline/$"))
    timeline = page.locator("#timeline")
    for transition in ("APPROVED → FAILED", "FAILED → APPROVED", "APPROVED → PROCESSED"):
        expect(timeline.locator('tr[data-kind="event"]', has_text=transition)).to_have_count(1)
    expect(
        timeline.locator('tr[data-kind="message"]', has_text="billing.charge_order written")
    ).to_have_count(1)
    expect(timeline.locator('tr[data-kind="result"]').first).to_contain_text("FAILURE")
    death = timeline.locator(f'tr[data-kind="death"][data-dead-letter="{dead_letter.pk}"]')
    expect(death).to_contain_text("billing.charge_order dead-lettered from billing")
    expect(timeline.locator('tr[data-kind="replay"]')).to_have_text(
        re.compile(f"Replayed by {operator.username}")
    )
    kinds = timeline.locator("tr.entry").evaluate_all("rows => rows.map(r => r.dataset.kind)")
    assert kinds.index("death") < kinds.index("replay")
    screenshots("order-timeline")
    # From the death to its message's row, and from there to the dead letter's own page.
    death.locator("a.message-link").click()
    expect(page).to_have_url(re.compile(rf"#message-{billing_message.id}$"))
    message_row = page.locator(f"#messages tr#message-{billing_message.id}")
    expect(message_row.locator("td.dead-letter")).to_contain_text("REPLAYED")
    message_row.locator("a.dead-letter-link").click()
    expect(page).to_have_url(re.compile(rf"/admin/messaging/deadletter/{dead_letter.pk}/change/$"))

    page.goto("/admin/dashboard/?refresh=off")
    expect(status_count(page, "PROCESSED")).to_have_text("2")
    expect(status_count(page, "FAILED")).to_have_text("0")
    expect(page.locator("#dead-letters .count")).to_have_text("0")
    screenshots("dashboard-after-replay")
    assert DeadLetter.objects.get(pk=dead_letter.pk).acted_by == operator

    # With the broker out of the web process's reach, the page still renders, saying so.
    system.proxy.cut()
    page.reload()
    for queue in ("fraud", "billing", "dead_letter"):
        expect(queue_depth_cell(page, queue)).to_have_text("unavailable")
    expect(status_count(page, "PROCESSED")).to_have_text("2")
    screenshots("dashboard-broker-unreachable")
    system.proxy.restore()
    assert failed_requests == []
