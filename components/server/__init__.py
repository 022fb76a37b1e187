"""Flask plumbing: the app context (settings, engine, dataset), the cache, authentication,
security headers and the audit writer. Imports nothing above it (docs/architecture.md)."""
