"""`manage.py create_operator USERNAME --email E --full-name N`: the province's first administrator.

Prompts for the password. Works only while no department administrator exists; after that,
administrators are granted through the admin site like every other role.
"""

import getpass

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from portal.services import department_admin_bootstrap, user_create


class Command(BaseCommand):
    help = "Create the first department administrator (provincial IT operator)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--email", default="")
        parser.add_argument("--full-name", default="")
        parser.add_argument("--password-stdin", action="store_true", help="Read the password from stdin.")

    def handle(self, *args, username, email, full_name, password_stdin, **options):
        password = input() if password_stdin else getpass.getpass("Password: ")
        if not password:
            raise CommandError("A password is required.")
        try:
            with transaction.atomic():
                user = user_create(
                    actor=None, username=username, full_name=full_name, email=email, password=password
                )
                department_admin_bootstrap(user=user)
        except (PermissionDenied, ValidationError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(f"{username} is the department administrator."))
