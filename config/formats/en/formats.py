"""English pages read numbers and dates the Vietnamese way (portal.formats says why): the same
forms as config/formats/vi, so a page does not change its dates when its reader changes language."""

from config.formats.vi.formats import *  # noqa: F403 (the one set of formats, by design)
