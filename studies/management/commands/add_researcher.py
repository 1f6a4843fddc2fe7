"""``manage.py add_researcher USERNAME [--email]``: a staff user in the researchers group."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_email

from studies.permissions import make_researcher


class Command(BaseCommand):
    help = (
        "Make USERNAME a researcher (staff, in the researchers group), creating the account if needed. "
        "A new account gets no usable password: set one with `manage.py changepassword USERNAME`."
    )

    def add_arguments(self, parser):
        parser.add_argument("username", help="login name of the researcher")
        parser.add_argument("--email", default="", help="e-mail address (set on the account)")

    def handle(self, *args, username: str, email: str, **options) -> None:
        if email:
            try:
                validate_email(email)
            except ValidationError:
                raise CommandError(f"not an e-mail address: {email!r}") from None
        User = get_user_model()
        user, created = User.objects.get_or_create(**{User.USERNAME_FIELD: username})
        if created:
            user.set_unusable_password()
        if email:
            user.email = email
        user.save()
        make_researcher(user)
        verb = "created" if created else "updated"
        self.stdout.write(f"{username}: {verb}; staff, in the researchers group.")
        if created:
            self.stdout.write(f"Set a password with: python manage.py changepassword {username}")
