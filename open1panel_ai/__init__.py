"""open1panel-ai: AI management for a server panel, shipped as an open1panel plugin."""

__version__ = "0.1.0"
