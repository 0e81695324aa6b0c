"""Domain binding: publish an Ollama endpoint or an MCP server under a domain name through a
real reverse proxy (nginx or Caddy), with TLS, an IP allowlist and auth in front of it."""
