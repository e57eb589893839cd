"""The top floor, the HTTP shell: the ASGI app, its routes and middleware, the sign-in, the
GraphiQL page, the probes, the fleet file route and the command line that serves them."""
