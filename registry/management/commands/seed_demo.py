from django.core.management.base import BaseCommand
from django.utils import translation

from portal.demo import DEMO_PASSWORD, demo_logins, demo_schools
from portal.progress.services import progress_reconcile
from registry.demo import demo_seed, ministry_demo_schools_register
from signing.demo import DEMO_PIN, demo_signing_seed


class Command(BaseCommand):
    help = "Create the demo province (idempotent) and print the demo logins."

    def add_arguments(self, parser):
        parser.add_argument("--quiet", action="store_true", help="Do not print the logins.")

    def handle(self, *args, **options):
        translation.activate("vi")
        created = demo_seed()
        self.stdout.write("Demo province created." if created else "Demo province already present.")
        self.stdout.write(ministry_demo_schools_register())
        signing = demo_signing_seed()
        for line in signing.lines():
            self.stdout.write(line)
        # The supervisors' figures, recounted (a demo database made before they existed has none).
        drifts = progress_reconcile(schools=demo_schools())
        self.stdout.write(f"Progress rows recounted: {len(drifts)} corrected.")
        if options["quiet"]:
            return
        self.stdout.write(f"\nDemo logins (password for all: {DEMO_PASSWORD}):")
        for username, name, roles in demo_logins():
            self.stdout.write(f"  {username:<20} {name:<22} {roles}")
        self.stdout.write(
            "\nEveryone but subject teachers and division officers without a grant logs in with a"
            "\n  second factor (administrators, principals, vice-principals, homeroom teachers,"
            "\n  division managers, data-access holders):"
            "\n  make totp u=<username>   (in another terminal) prints the current code."
            f"\nSigning: key files and seal tokens have the PIN {DEMO_PIN}; the remote-signing"
            "\n  service's OTP appears in this terminal (`csc |` lines: OTP for credential ...)."
        )
