"""Web pages as static assets: HTML, CSS and JavaScript modules (no build step).

The routes that serve them, and the headers that keep them safe (Content-Security-Policy
without inline script, no framing), live in ``surveillance.api.pages``; this package holds
no code, so nothing here imports the API."""
