from django.core.management.base import BaseCommand, CommandError

from portal.demo import demo_totp_code


class Command(BaseCommand):
    help = "Print the current TOTP code of a demo account (demo only: a real user has a phone)."

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, *args, username: str, **options):
        from allauth.mfa.models import Authenticator

        try:
            self.stdout.write(demo_totp_code(username))
        except Authenticator.DoesNotExist as exc:
            raise CommandError(f"{username} has no TOTP authenticator.") from exc
