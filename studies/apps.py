import os

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class StudiesConfig(AppConfig):
    name = "studies"
    verbose_name = _("Style-transfer studies")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.conf import settings

        # stylecore knows nothing of Django settings; it reads its weights
        # folder from the environment, so hand the configured one down.
        os.environ.setdefault("STYLECORE_WEIGHTS_DIR", str(settings.STYLECORE_WEIGHTS_DIR))
