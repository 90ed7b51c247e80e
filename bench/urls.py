"""The project's URLs plus the baseline views the benchmarks compare against, under /bench/."""

from django.urls import path

from config.urls import urlpatterns as project_urlpatterns

from .baselines import InsertOnlyView, SynchronousView
from .plain import PlainCreateView

urlpatterns = [
    *project_urlpatterns,
    path("bench/insert-only/", InsertOnlyView.as_view(), name="bench-insert-only"),
    path("bench/synchronous/", SynchronousView.as_view(), name="bench-synchronous"),
    path("bench/plain/", PlainCreateView.as_view(), name="bench-plain"),
]
