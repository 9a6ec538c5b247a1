from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

from transcripts import hooks  # no models: safe while the apps load


class SigningConfig(AppConfig):
    name = "signing"
    verbose_name = _("Signing")

    def ready(self) -> None:
        # Transcripts' pages ask signing through hooks (transcripts.hooks): transcripts sits below
        # signing in the chain and never imports it. The selectors import models: only once ready.
        from .selectors import signatures_for, signing_offers

        hooks.register(hooks.SIGNING_OFFERS, signing_offers)
        hooks.register(hooks.SIGNATURES_FOR, signatures_for)
