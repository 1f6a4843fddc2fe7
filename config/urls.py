from django.contrib import admin
from django.urls import include, path

# A database outage raised outside a view still answers 503 "please retry".
handler500 = "studies.middleware.server_error"
# Unknown addresses (a withdrawn session's link, a mistyped study link): a translated page.
handler404 = "studies.views.page_not_found"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("studies.urls")),
]
# Media is never served as static files: studies.urls checks each file against
# its study's owners (or the participant's own session) before serving it.
