"""The whole demo `make run` shows, app by app up the chain (design.md §2).

The province (portal.demo: department, divisions, schools, users), then each new school's
2025-2026 year at its close (transcripts.demo.school_demo_seed: schools' classes, teachers and
students, then transcripts' assessments), in one transaction. The signers' keys and a pre-signed
class follow (signing.demo.demo_signing_seed, called by the seed_demo command: it needs the
development CA and SoftHSM2 and says what it skipped). Only the top app may call them all.
"""

from __future__ import annotations

import httpx
from django.db import transaction

from portal.demo import demo_province_seed, demo_schools, demo_users
from transcripts.demo import school_demo_seed

from . import ministry


@transaction.atomic
def demo_seed() -> bool:
    """Create the demo province and its schools' years if not there. Returns False when it already was."""
    if not demo_province_seed():
        return False
    # Each school's year at its close, once its teachers exist (they are its classes' teachers).
    users = demo_users()
    for school in demo_schools():
        school_demo_seed(school, users)
    return True


def ministry_demo_schools_register() -> str:
    """Register the demo schools with the reference repository `make run` started (its
    /_reference/schools endpoint), so that their records are accepted, not rejected
    `unknown_school`. A line saying what happened; nothing when no repository is configured or it
    is not the reference one."""
    if not ministry.configured():
        return "No Ministry repository configured (HOCBA_MINISTRY_URL): records wait in the outbox."
    codes = [school.code for school in demo_schools()]
    try:
        response = ministry.http_client().post("_reference/schools", json={"codes": codes})
    except httpx.HTTPError as error:
        return (
            f"The Ministry repository cannot be reached ({type(error).__name__}); records wait in the outbox."
        )
    if response.status_code != 200:
        return "The Ministry repository is not the reference one: demo schools not registered there."
    return f"Demo schools registered with the reference Ministry repository: {', '.join(codes)}."
