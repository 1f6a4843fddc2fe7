"""``manage.py media_migrate --to s3``: copy studies' files from local disk to object storage."""

from __future__ import annotations

from django.conf import settings
from django.core.files.storage import default_storage
from django.core.management.base import BaseCommand, CommandError, CommandParser

from studies.delivery import presigns
from studies.local_storage import AtomicFileSystemStorage
from studies.media_migration import copy_verified, study_names
from studies.models import Study


class Command(BaseCommand):
    help = (
        "Copy every stored file of the given studies (default: all) between local disk (MEDIA_ROOT) and the "
        "S3-compatible bucket configured by MEDIA_S3_*, under the same names, verifying each copy by SHA-256. "
        "Nothing is deleted or overwritten; run it again to resume."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--to", required=True, choices=["s3", "local"],
                            help="s3: local disk -> bucket; local: bucket -> local disk.")
        parser.add_argument("--study", action="append", default=[], metavar="ID_OR_SLUG",
                            help="A study to move (repeatable); all studies when omitted.")
        parser.add_argument("--dry-run", action="store_true", help="Check and list, copy nothing.")

    def handle(self, *args: object, **options: object) -> None:
        if not presigns(default_storage):
            raise CommandError(
                "media is not on object storage: set MEDIA_S3_BUCKET (and MEDIA_S3_ENDPOINT_URL, MEDIA_S3_REGION, "
                "credentials, MEDIA_S3_PREFIX as needed) for this command, as the hosts will have after the move"
            )
        local = AtomicFileSystemStorage(location=settings.MEDIA_ROOT)
        source, destination = (local, default_storage) if options["to"] == "s3" else (default_storage, local)
        studies = self._studies(options["study"])
        failed = 0
        for study in studies:
            result = copy_verified(study_names(study.pk, source), source, destination, dry_run=options["dry_run"])
            verb = "would copy" if options["dry_run"] else "copied and verified"
            self.stdout.write(f"study {study.pk} ({study.slug}): {verb} {len(result.copied)}, "
                              f"already there {len(result.already_there)}, errors {len(result.errors)}")
            for name, why in sorted(result.errors.items()):
                self.stderr.write(f"  {name}: {why}")
            failed += len(result.errors)
        if failed:
            raise CommandError(f"{failed} file(s) not moved; see above. Nothing was deleted; fix and run again.")

    def _studies(self, keys: list[str]) -> list[Study]:
        if not keys:
            return list(Study.objects.order_by("pk"))
        studies = []
        for key in keys:
            lookup = {"pk": int(key)} if key.isdigit() else {"slug": key}
            try:
                studies.append(Study.objects.get(**lookup))
            except Study.DoesNotExist:
                raise CommandError(f"no study with {'id' if key.isdigit() else 'slug'} {key!r}") from None
        return studies
