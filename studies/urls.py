from django.conf import settings
from django.urls import path

from . import media_views, views

app_name = "studies"

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    # Ahead of any static media route: every file is checked against its study.
    path(f"{settings.MEDIA_URL.strip('/')}/<path:name>", media_views.serve_media, name="media"),
]
