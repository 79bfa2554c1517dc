"""Notification channels built in (``email``); other modules add theirs through
``grievance_notification_channels``."""
