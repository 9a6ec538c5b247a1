"""Demo only: a partner, its API key and a consent token to try the partner API (docs/api.md)."""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from portal.models import User
from registry.api.demo import api_demo_seed
from registry.api.selectors import personal_id_valid


class Command(BaseCommand):
    help = (
        "Demo only: register a demo consent issuer (its private key in a file) and a demo partner "
        "with every scope, issue it a new API key, and print it with a consent token for "
        "--personal-id and curl lines to try the API."
    )

    def add_arguments(self, parser):
        parser.add_argument("--actor", default="so.quantri", help="The department administrator (username).")
        parser.add_argument("--personal-id", default="", help="The citizen whose consent token is made.")
        parser.add_argument(
            "--key-file",
            default=str(Path(settings.BASE_DIR) / ".data" / "api-demo-consent-es256.pem"),
            help="Where the demo consent issuer's private key is kept (made if missing).",
        )
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")

    def handle(self, *args, **options):
        actor = User.objects.filter(username=options["actor"]).first()
        if actor is None:
            raise CommandError(f"No user {options['actor']!r}: pass a department administrator with --actor.")
        personal_id = options["personal_id"]
        if personal_id and not personal_id_valid(personal_id):
            raise CommandError("A personal ID is exactly 12 digits.")
        demo = api_demo_seed(actor=actor, key_file=Path(options["key_file"]))
        base = options["base_url"].rstrip("/")
        self.stdout.write(f"client id: {demo.client.identifier}")
        self.stdout.write(f"API key (shown once): {demo.key}")
        auth = f'-H "Authorization: Bearer {demo.key}"'
        self.stdout.write(f"curl -s {auth} -H 'X-Purpose: statistics' {base}/api/v1/progress/divisions/")
        if personal_id:
            token = demo.consent_token(personal_id=personal_id)
            self.stdout.write(f"consent token: {token}")
            self.stdout.write(
                f"curl -s -X POST {auth} -H 'X-Purpose: admission' -H 'X-Consent-Token: {token}' "
                f"-H 'Content-Type: application/json' -d '{{\"personal_id\": \"{personal_id}\"}}' "
                f"{base}/api/v1/students/records/"
            )
