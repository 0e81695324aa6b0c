"""Ollama model management: endpoints, models, pulls, imports, memory and disk."""
