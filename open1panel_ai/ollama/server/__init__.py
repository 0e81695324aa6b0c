"""The local Ollama server itself: how it runs, its settings, its restarts and its log.

The models part of the Ollama feature talks to a server; this part runs the one on this
machine, through an Ollama server provider (``ai_ollama_server_providers``): ``systemd`` (the
official install script's ``ollama.service``, changed through a drop-in file) or
``supervised`` (an ``ollama serve`` the panel starts and keeps up itself). When neither runs
the local server, the page says it is not managed here, and why.
"""
