"""Progress per school and school year (portal.models_progress): its writes and its reads."""
