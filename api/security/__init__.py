"""Security helpers, one module per concern.

- :mod:`~api.security.passwords`: Argon2id hashes and password rules;
- :mod:`~api.security.tokens`: access tokens (JWT, HS256, key derived from the server secret);
- :mod:`~api.security.sessions`: refresh tokens (stored as hashes, rotated, revoked by family);
- :mod:`~api.security.signin`: sign-in with failure counting, delays and lockout;
- :mod:`~api.security.accounts`: creating, listing and disabling accounts.

The role list is :class:`geodata.roles.Role`; who may call which route is
declared in :mod:`api.access`.
"""
