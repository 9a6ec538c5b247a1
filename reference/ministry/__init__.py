"""A reference Ministry repository (Kho học bạ số): the receiving side of docs/ministry-contract.md.

The portal forwards every issued, corrected or revoked record version to the Ministry. Until the
Ministry's real specification is given to the Department, this service plays the repository for
the portal's adapter (`registry/ministry.py`), for `make run` and for the tests:

- `store.py`: SQLite in the data directory: the messages (one per key, one per kind, record id
  and version), the registered schools, the counters; committed before any answer is written;
- `validate.py`: the background validation (envelope against document, school, personal ID,
  XSD, signatures with xmlsec1), received -> accepted / rejected;
- `server.py`: HTTP/1.1 (stdlib `ThreadingHTTPServer`, JSON), optional TLS with client
  certificates, the bearer token, the fault knobs (`/_reference/faults`);
- `__main__.py`: `python -m reference.ministry serve|school-add`.

It never imports Django or the portal: it judges the portal's output as an outsider would.
"""
