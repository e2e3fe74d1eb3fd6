"""A read-only role for notebooks and reports: reads every table, writes none.

Analysis code runs in kernels with whatever the URL allows; a URL for this role makes an
accidental ``DELETE`` (or a notebook someone shared) unable to change the data. The grant
covers the tables that exist now and, through default privileges, those later migrations
create (when the same user runs them; otherwise run ``grant-reader`` again: it is
idempotent).

What PostgreSQL leaves every role, the reader included, and no per-role REVOKE can take
(there is no "deny": what PUBLIC holds, every role holds): ``NOTIFY``/``pg_notify`` on any
channel (no privilege exists for it, and it works in a read-only transaction: listeners
must treat a notification as a hint), EXECUTE on the ``lo_*`` functions and TEMP on the
database (refused while the session is read-only, but the role may ask for read-write, or
``ALTER ROLE`` itself to a read-write default: the read-only default is a guard against
accidents, the missing privileges are what refuse table writes), advisory locks, and
queries as long as it likes. Revoking those from PUBLIC would change every role of the
database, so ``grant-reader`` does not; it refuses instead when a grant to PUBLIC would let
the reader write to a table or create in the schema.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import quote

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from obslib.errors import UsageError
from obslib.storage import db

logger = logging.getLogger(__name__)

# Lowercase only: an unquoted name in someone's psql session then means the same role.
_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def check_role_name(role: str) -> str:
    """``role`` if it is a plain PostgreSQL identifier that is not a reserved name."""
    if not _ROLE_NAME.match(role):
        raise UsageError(
            f"role name {role!r}: use 1-63 lowercase letters, digits and _, not starting"
            " with a digit"
        )
    if role.startswith("pg_") or role in ("public", "none", "current_user", "session_user"):
        raise UsageError(f"role name {role!r} is reserved by PostgreSQL")
    return role


def grant_reader(role: str, *, url: str | None = None, password: str | None = None) -> str:
    """Create (or update) ``role`` so it can log in, read every table and write none.

    Returns the database URL for the role (with ``password`` when given). A password is
    sent as a SCRAM verifier computed here, so the server never sees or logs it in clear.
    Refuses a role that is the current user, a superuser or owns tables in the database.
    """
    check_role_name(role)
    target = db.libpq_url(url) if url else db.database_url()
    ident = sql.Identifier(role)
    with db.connection(target, autocommit=True) as conn:
        _refuse_writers(conn, role)
        with conn.transaction():
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
            verb = "ALTER" if exists else "CREATE"
            options = sql.SQL("LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION")
            if password is not None:
                verifier = conn.pgconn.encrypt_password(
                    password.encode(), role.encode(), b"scram-sha-256"
                )
                options = sql.SQL("{} PASSWORD {}").format(options, sql.Literal(verifier.decode()))
            conn.execute(sql.SQL(verb + " ROLE {} {}").format(ident, options))
            # a second guard: a transaction that writes must ask for it explicitly
            conn.execute(
                sql.SQL("ALTER ROLE {} SET default_transaction_read_only = on").format(ident)
            )
            schema = conn.execute("SELECT current_schema()").fetchone()[0]
            database = conn.info.dbname
            statements = [
                # an existing role may hold write grants from before: a reader holds none
                "REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {role}",
                "REVOKE ALL ON ALL SEQUENCES IN SCHEMA {schema} FROM {role}",
                "REVOKE CREATE ON SCHEMA {schema} FROM {role}",
                "ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} REVOKE ALL ON TABLES FROM {role}",
                "GRANT CONNECT ON DATABASE {db} TO {role}",
                "GRANT USAGE ON SCHEMA {schema} TO {role}",
                "GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {role}",
                # tables that later migrations create (as this user) are readable too
                "ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT ON TABLES TO {role}",
            ]
            for text in statements:
                conn.execute(
                    sql.SQL(text).format(
                        db=sql.Identifier(database), schema=sql.Identifier(schema), role=ident
                    )
                )
            _refuse_public_writes(conn, role)  # raising rolls all of the above back
    logger.info("%s reads every table of %s", role, database)
    return reader_url(target, role, password)


def reader_url(url: str, role: str, password: str | None = None) -> str:
    """``url`` with its user replaced by ``role`` and its password by ``password`` (or none),
    percent-encoded: libpq refuses a space or an ``@`` left raw in a URL."""
    parsed = make_url(url)._replace(username=role, password=None)  # .set() ignores None
    query = [
        (k, value)
        for k, v in parsed.query.items()
        if k.lower() not in ("password", "user")
        for value in ((v,) if isinstance(v, str) else v)
    ]
    # the options encoded as libpq decodes them: SQLAlchemy writes a space as "+", which
    # libpq keeps as a plus (a socket folder under "Application Support" would be lost)
    options = "&".join(f"{quote(k, safe='')}={quote(v, safe='/')}" for k, v in query)
    plain = parsed.set(query={}).render_as_string(hide_password=False)
    plain += f"?{options}" if options else ""
    if password is None:
        return plain
    return plain.replace(f"://{role}@", f"://{role}:{quote(password, safe='')}@", 1)


# What the role can still write after the grants above: only grants to PUBLIC (or column
# grants) can give it any. has_any_column_privilege also answers for whole-table grants.
_WRITES_LEFT = """
SELECT format('%%s on %%I', p.privilege, c.relname)
FROM pg_class c
CROSS JOIN unnest(ARRAY['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) AS p(privilege)
WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p', 'v', 'f')
  AND CASE WHEN p.privilege IN ('INSERT', 'UPDATE')
           THEN has_any_column_privilege(%(role)s, c.oid, p.privilege)
           ELSE has_table_privilege(%(role)s, c.oid, p.privilege) END
UNION ALL
SELECT format('CREATE on schema %%I', current_schema())
WHERE has_schema_privilege(%(role)s, current_schema(), 'CREATE')
ORDER BY 1"""


def _refuse_public_writes(conn: psycopg.Connection, role: str) -> None:
    """UsageError when the role, revoked of its own grants, could still write: through a
    grant to PUBLIC (PostgreSQL has no per-role deny), which the owner must revoke."""
    left = [text for (text,) in conn.execute(_WRITES_LEFT, {"role": role})]
    if left:
        shown = ", ".join(left[:5]) + (f" and {len(left) - 5} more" if len(left) > 5 else "")
        raise UsageError(
            f"role {role!r} could still write through grants to PUBLIC ({shown}):"
            " revoke them from PUBLIC first (REVOKE ... FROM PUBLIC)"
        )


def _refuse_writers(conn: psycopg.Connection, role: str) -> None:
    """Making an admin read-only would lock its owner out: refuse such roles."""
    row = conn.execute(
        "SELECT r.rolsuper, r.rolname = current_user,"
        " EXISTS (SELECT 1 FROM pg_class c WHERE c.relowner = r.oid AND c.relkind = 'r'"
        "         AND c.relnamespace = current_schema()::regnamespace)"
        " FROM pg_roles r WHERE r.rolname = %s",
        (role,),
    ).fetchone()
    if row is None:
        return
    groups = [
        name
        for (name,) in conn.execute(
            "SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid"
            " JOIN pg_roles r ON r.oid = m.member WHERE r.rolname = %s ORDER BY 1",
            (role,),
        )
    ]
    if groups:
        raise UsageError(
            f"role {role!r} is a member of {', '.join(groups)}: through them it may write;"
            " revoke those memberships first, or choose a new role name"
        )
    superuser, is_current, owns = row
    if superuser or is_current or owns:
        why = "a superuser" if superuser else "you" if is_current else "an owner of tables here"
        raise UsageError(f"role {role!r} is {why}: choose another name for the reader")
