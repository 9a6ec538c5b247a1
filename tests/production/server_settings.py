"""The settings of the tests' production stack (tests/production_stack.py): the production ones.

config.settings read with DEBUG and HOCBA_TESTING off (static files from collectstatic's manifest,
HSTS, CSP, secure cookies, the SSL redirect), with one difference: the session's users have MD5
password hashes (tests/conftest.py builds them under the test settings, for speed), so the server
must be able to check them. Nothing else is changed here.
"""

from config.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
