from django.conf import settings
from django.contrib import admin
from django.urls import include, path

# A database outage raised outside a view still answers 503 "please retry".
handler500 = "studies.middleware.server_error"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("studies.urls")),
]

if settings.DEBUG:
    from django.conf.urls.static import static

    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
