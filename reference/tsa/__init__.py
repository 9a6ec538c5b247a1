"""The reference timestamping service (RFC 3161), never deployed: `python -m reference.tsa serve`.

A province buys timestamps from a licensed TSA; development, `make run` and the tests use this
one: its own two-level CA and a timestamping certificate (extended key usage timeStamping,
critical) on disk, tokens built with asn1crypto and pyHanko's CMS helpers, a CRL of its CA, and a
`--delay-ms` knob. See authority.py (the tokens) and server.py (HTTP).
"""
