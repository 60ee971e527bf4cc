"""Web pages: static HTML, CSS and JavaScript modules (no build step), and the headers that
keep them safe (Content-Security-Policy without inline script, no framing)."""
