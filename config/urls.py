from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("studies.urls")),
]
# Media is never served as static files: studies.urls checks each file against
# its study's owners (or the participant's own session) before serving it.
