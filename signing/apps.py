from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

from transcripts import hooks  # no models: safe while the apps load


def _signing_offers(*args, **kwargs):
    # The selectors are imported when a page first asks: they bring in the verifier's libraries
    # (pyHanko's validation, ~0.4 s of every process's start, management commands included).
    from .selectors import signing_offers

    return signing_offers(*args, **kwargs)


def _signatures_for(*args, **kwargs):
    from .selectors import signatures_for

    return signatures_for(*args, **kwargs)


class SigningConfig(AppConfig):
    name = "signing"
    verbose_name = _("Signing")

    def ready(self) -> None:
        # Transcripts' pages ask signing through hooks (transcripts.hooks): transcripts sits below
        # signing in the chain and never imports it.
        hooks.register(hooks.SIGNING_OFFERS, _signing_offers)
        hooks.register(hooks.SIGNATURES_FOR, _signatures_for)
