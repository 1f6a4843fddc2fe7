"""State changes of the platform: ``do_*`` functions save a change and queue its follow-up work."""
