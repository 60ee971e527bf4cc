"""Services: long-lived parts of the running node, wired together by the API's app factory."""
