"""The request path: middleware, classification, the lane gate, the router, the upstream."""
