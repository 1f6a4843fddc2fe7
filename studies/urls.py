from django.conf import settings
from django.urls import path

from . import media_views, views

app_name = "studies"

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    # Ahead of any static media route: every file is checked against its study.
    path(f"{settings.MEDIA_URL.strip('/')}/<path:name>", media_views.serve_media, name="media"),
    # Participant side: the public study link, then a session addressed by its secret token.
    path("s/<slug:slug>/", views.participant_entry, name="participant_entry"),
    path("p/<str:token>/", views.participant_session, name="participant_session"),
    path("p/<str:token>/language", views.participant_language, name="participant_language"),
    path("p/<str:token>/background", views.participant_background, name="participant_background"),
    path("p/<str:token>/start", views.participant_start, name="participant_start"),
    path("p/<str:token>/trial/<int:position>", views.participant_answer, name="participant_answer"),
    path("p/<str:token>/withdraw", views.participant_withdraw, name="participant_withdraw"),
    path("p/<str:token>/image/<int:position>/<str:which>", views.participant_image, name="participant_image"),
    # Stimuli linked from a participant's page: signed and expiring, no session lookup.
    path("i/<str:ref>/<int:expires>/<str:signature>", views.signed_image, name="signed_image"),
]
