"""A reference remote signing service in the style of the Cloud Signature Consortium API v2.

Vietnamese remote signing services (VNPT SmartCA, Viettel MySign, ...) resemble CSC: the key
stays with the provider, the signer approves on a phone, and the relying party sends hashes. This
service plays the provider for the portal's client (`signing.backends.csc`):

- `store.py`: the on-disk state: its own CA, the credentials (certificate + key), revocations;
- `service.py`: the protocol: OTPs, SADs (signature activation data), signHash, errors;
- `server.py`: HTTP (stdlib `ThreadingHTTPServer`, JSON), service authentication, limits;
- `__main__.py`: `python -m reference.csc serve|enrol|revoke`.

The signer's confirmation is an OTP printed to the service's log, where a developer (or a test)
reads it. Nothing here is fit to hold a real key: keys are PEM files in clear on disk.
"""
