from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from core.errors import ApplicationError

from . import deadletters, selectors
from .admin_search import UUIDSearchMixin
from .models import DeadLetter, OutboxMessage

BODY_PREVIEW_BYTES = 20_000


@admin.register(OutboxMessage)
class OutboxMessageAdmin(admin.ModelAdmin):
    """What is waiting to be published, and why a message is stuck (attempts, last error)."""

    list_display = ["id", "task_name", "created_at", "published_at", "attempts"]
    list_filter = ["task_name", ("published_at", admin.EmptyFieldListFilter)]
    search_fields = ["id"]
    readonly_fields = [f.name for f in OutboxMessage._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class BulkReplayFilter(forms.Form):
    """Which NEW dead letters to replay together (messaging.selectors.dead_letters_matching)."""

    task = forms.CharField(required=False, help_text="exact task name, e.g. billing.charge_order")
    reason = forms.CharField(required=False, help_text="text in the reason, e.g. rejected")
    since = forms.DateTimeField(
        required=False,
        help_text="last death at or after",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    until = forms.DateTimeField(
        required=False,
        help_text="last death at or before",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )


@admin.register(DeadLetter)
class DeadLetterAdmin(UUIDSearchMixin, admin.ModelAdmin):
    """Messages that could not be processed: read why, fix the cause, then replay or discard."""

    list_display = [
        "id",
        "task_name",
        "queue",
        "reason",
        "death_count",
        "subject_id",
        "status",
        "last_death_at",
    ]
    list_filter = ["status", "reason", "queue", "task_name"]
    search_fields = ["message_id", "task_name"]
    uuid_search_field = "subject_id"
    actions = ["replay_selected", "discard_selected"]
    fields = [
        "message_id",
        "task_name",
        "queue",
        "exchange",
        "routing_key",
        "subject_id",
        "reason",
        "death_count",
        "error",
        "first_death_at",
        "last_death_at",
        "status",
        "replay_count",
        "acted_by",
        "acted_at",
        "content_type",
        "content_encoding",
        "headers",
        "properties",
        "body_preview",
    ]
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # a dead letter is a record; discard it instead

    def has_replay_permission(self, request) -> bool:
        return request.user.has_perm("messaging.replay_deadletter")

    def has_discard_permission(self, request) -> bool:
        return request.user.has_perm("messaging.discard_deadletter")

    def get_urls(self):
        bulk = self.admin_site.admin_view(self.bulk_replay_view)
        return [
            path("bulk-replay/", bulk, name="messaging_deadletter_bulk_replay"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra = {"may_bulk_replay": self.has_replay_permission(request)}
        return super().changelist_view(request, {**extra, **(extra_context or {})})

    def bulk_replay_view(self, request) -> TemplateResponse | HttpResponseRedirect:
        """Filter, see how many match (a dry run), then replay exactly those shown."""
        if not self.has_replay_permission(request):
            raise PermissionDenied
        form = BulkReplayFilter(request.GET or None)
        matching = None
        if form.is_valid():
            matching = selectors.dead_letters_matching(**form.cleaned_data)
            if request.method == "POST":
                # Only those the operator was shown: more may have died since the count.
                shown = [int(pk) for pk in request.POST.getlist("id") if pk.isdigit()]
                self._act(request, matching.filter(pk__in=shown), deadletters.replay, "Replayed")
                return HttpResponseRedirect(reverse("admin:messaging_deadletter_changelist"))
        return TemplateResponse(
            request,
            "admin/messaging/deadletter/bulk_replay.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": "Replay dead letters by filter",
                "form": form,
                "matching": None if matching is None else list(matching.defer("body", "headers")),
            },
        )

    @admin.display(description="last error")
    def error(self, dead_letter: DeadLetter) -> str:
        return format_html("<pre>{}</pre>", deadletters.last_error_of(dead_letter) or "unknown")

    @admin.display(description="body (as text, escaped)")
    def body_preview(self, dead_letter: DeadLetter) -> str:
        body = bytes(dead_letter.body)
        text = body[:BODY_PREVIEW_BYTES].decode("utf-8", errors="backslashreplace")
        more = (
            f"\n… {len(body) - BODY_PREVIEW_BYTES} more bytes"
            if len(body) > BODY_PREVIEW_BYTES
            else ""
        )
        return format_html("<pre>{}{}</pre>", text, more)

    @admin.action(
        description="Replay selected dead letters to their queues", permissions=["replay"]
    )
    def replay_selected(self, request, queryset) -> None:
        self._act(request, queryset, deadletters.replay, "Replayed")

    @admin.action(description="Discard selected dead letters", permissions=["discard"])
    def discard_selected(self, request, queryset) -> None:
        self._act(request, queryset, deadletters.discard, "Discarded")

    def _act(self, request, queryset, action, done: str) -> None:
        succeeded = 0
        for dead_letter in queryset:
            try:
                action(dead_letter_id=dead_letter.pk, actor=request.user)
            except ApplicationError as error:
                self.message_user(request, f"#{dead_letter.pk}: {error.message}", messages.ERROR)
                continue
            self.log_change(request, dead_letter, done)  # who did what, in the admin's history
            succeeded += 1
        if succeeded:
            self.message_user(request, f"{done} {succeeded} dead letter(s).", messages.SUCCESS)
