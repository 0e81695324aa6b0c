"""MCP servers: definitions, a supervised bridge per server, logs, tools and client configs."""
