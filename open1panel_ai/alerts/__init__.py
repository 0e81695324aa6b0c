"""Alerts: rules over what the other features report, and the channels that carry the alerts."""
