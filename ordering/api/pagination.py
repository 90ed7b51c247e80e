from django.conf import settings
from rest_framework.pagination import PageNumberPagination


class OrderPagination(PageNumberPagination):
    """Page-number pages; `page_size` may be asked for, up to API_MAX_PAGE_SIZE."""

    page_size = settings.API_PAGE_SIZE
    page_size_query_param = "page_size"
    max_page_size = settings.API_MAX_PAGE_SIZE
