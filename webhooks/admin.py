"""Staff's view of webhooks: register endpoints for a user, disable, enable, rotate; read
deliveries and send failed ones again. Every write goes through webhooks.services."""

import uuid

from django import forms
from django.contrib import admin, messages
from django.utils.html import format_html

from core.errors import ApplicationError
from messaging.admin_search import UUIDSearchMixin

from . import events, services
from .models import MAX_URL_LENGTH, WebhookDelivery, WebhookEndpoint


class EndpointAddForm(forms.ModelForm):
    url = forms.URLField(max_length=MAX_URL_LENGTH, assume_scheme="https")
    event_types = forms.MultipleChoiceField(choices=[], widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = WebhookEndpoint
        fields = ["owner", "url", "event_types", "description"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["event_types"].choices = [(t, t) for t in sorted(events.EVENT_TYPES)]

    def clean(self):
        data = super().clean()
        if not self.errors:
            try:
                services.check_endpoint(
                    owner=data["owner"], url=data["url"], event_types=data["event_types"]
                )
            except ApplicationError as error:
                raise forms.ValidationError(error.message) from None
        return data


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(UUIDSearchMixin, admin.ModelAdmin):
    list_display = [
        "url",
        "owner",
        "is_active",
        "consecutive_failures",
        "disabled_reason",
        "created_at",
    ]
    list_filter = ["is_active"]
    search_fields = ["url", "owner__username"]
    list_select_related = ["owner"]
    actions = ["disable_selected", "enable_selected", "rotate_selected"]
    readonly_fields = [
        "id",
        "owner",
        "url",
        "event_types",
        "description",
        "is_active",
        "disabled_reason",
        "disabled_at",
        "consecutive_failures",
        "previous_secret_expires_at",
        "created_at",
        "updated_at",
    ]

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = EndpointAddForm
        return super().get_form(request, obj, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else []

    def get_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else EndpointAddForm.Meta.fields

    def has_change_permission(self, request, obj=None) -> bool:
        return False if obj is not None else super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # its deliveries are a record; disable it instead

    def save_model(self, request, obj, form, change) -> None:
        data = form.cleaned_data
        endpoint = services.create_endpoint(
            owner=data["owner"],
            url=data["url"],
            event_types=data["event_types"],
            description=data.get("description", ""),
        )
        obj.pk = endpoint.pk
        self.message_user(
            request,
            format_html("Signing secret, shown once: <code>{}</code>", endpoint.secret),
            messages.SUCCESS,
        )

    @admin.action(description="Disable selected endpoints", permissions=["change"])
    def disable_selected(self, request, queryset) -> None:
        for endpoint in queryset:
            services.disable_endpoint(endpoint_id=endpoint.pk, reason=f"disabled by {request.user}")
            self.log_change(request, endpoint, "Disabled")
        self.message_user(request, "Disabled.", messages.SUCCESS)

    @admin.action(description="Enable selected endpoints", permissions=["change"])
    def enable_selected(self, request, queryset) -> None:
        for endpoint in queryset:
            services.enable_endpoint(endpoint_id=endpoint.pk)
            self.log_change(request, endpoint, "Enabled")
        self.message_user(request, "Enabled.", messages.SUCCESS)

    @admin.action(description="Rotate the secret of selected endpoints", permissions=["change"])
    def rotate_selected(self, request, queryset) -> None:
        for endpoint in queryset:
            endpoint = services.rotate_secret(endpoint_id=endpoint.pk)
            self.log_change(request, endpoint, "Secret rotated")
            self.message_user(
                request,
                format_html(
                    "{}: new secret, shown once: <code>{}</code>", endpoint.url, endpoint.secret
                ),
                messages.SUCCESS,
            )


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(UUIDSearchMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "event_type",
        "endpoint",
        "status",
        "attempts",
        "last_status_code",
        "created_at",
    ]
    list_filter = ["status", "event_type"]
    list_select_related = ["endpoint"]
    search_fields = ["endpoint__url"]
    uuid_search_field = "subject_id"
    actions = ["redeliver_selected"]
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]

    def get_search_results(self, request, queryset, search_term):
        found, duplicates = super().get_search_results(request, queryset, search_term)
        try:
            value = uuid.UUID(search_term.strip())
        except ValueError:
            return found, duplicates
        # A delivery's own id, its event's id, or its subject's (the order).
        return found | queryset.filter(pk=value) | queryset.filter(event_id=value), duplicates

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_redeliver_permission(self, request) -> bool:
        return request.user.has_perm("webhooks.redeliver_webhookdelivery")

    @admin.action(description="Send selected deliveries again", permissions=["redeliver"])
    def redeliver_selected(self, request, queryset) -> None:
        done = 0
        for delivery in queryset:
            try:
                services.redeliver(delivery_id=delivery.pk, actor=request.user)
            except ApplicationError as error:
                self.message_user(request, f"{delivery.pk}: {error.message}", messages.ERROR)
                continue
            self.log_change(request, delivery, "Redelivered")
            done += 1
        if done:
            self.message_user(request, f"Redelivering {done} delivery(ies).", messages.SUCCESS)
