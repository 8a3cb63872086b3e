"""Dashboard screens: the main dashboard, request detail, help and the small input dialogs."""
