"""The HTTP proxy: routes, auth, routing by model, relay, and the shapes of proxy-made errors."""
