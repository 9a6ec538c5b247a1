"""Reference services: small stand-ins for the outside systems the portal talks to.

They exist for `make run`, the demo and the tests, which exercise the portal's clients over real
HTTP against them. They are never deployed with the portal and never import Django.
"""
