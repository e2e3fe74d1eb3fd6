"""The database's libpq URL as JDBC options, for Spark's executors to read spans themselves.

PostgreSQL's JDBC driver (Debian's ``libpostgresql-jdbc-java``) speaks TCP only; a libpq
URL whose host is a socket folder (the embedded server listens on a Unix socket and
nothing else) is reached through junixsocket (Debian's ``libjunixsocket-java``), the
socket factory pgjdbc documents. Settings JDBC has no name for are refused, not dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import psycopg

from obslib.errors import UsageError
from obslib.storage.db import libpq_url, mask_url

JDBC_JARS = (
    Path("/usr/share/java/postgresql.jar"),  # libpostgresql-jdbc-java
    Path("/usr/share/java/junixsocket-common.jar"),  # libjunixsocket-java (Unix sockets)
)
SOCKET_FACTORY = "org.newsclub.net.unix.AFUNIXSocketFactory$FactoryArg"

# libpq keyword -> pgjdbc property, for the settings both know (same meaning, other name)
_SAME = {
    "user": "user",
    "password": "password",
    "sslmode": "sslmode",
    "sslrootcert": "sslrootcert",
    "sslcert": "sslcert",
    "sslkey": "sslkey",
    "connect_timeout": "connectTimeout",
    "application_name": "ApplicationName",
    "target_session_attrs": "targetServerType",
}
# libpq's target_session_attrs values as pgjdbc's targetServerType names them
_SERVER_TYPES = {
    "any": "any",
    "read-write": "primary",
    "primary": "primary",
    "read-only": "secondary",
    "standby": "secondary",
    "prefer-standby": "preferSecondary",
}
# a host name, an IPv4 or an IPv6 address: nothing that could add URL parameters
_HOST = re.compile(r"[A-Za-z0-9._-]+|[0-9A-Fa-f:.]+")
_IGNORED = {"dbname", "host", "port", "options"}  # in the URL itself; options: TimeZone only


@dataclass(frozen=True)
class JdbcTarget:
    """Where JDBC connects: ``url`` and connection properties (the password among them)."""

    url: str
    properties: dict[str, str] = field(repr=False)

    def __repr__(self) -> str:  # never print the password
        return f"JdbcTarget({self.url!r})"


def jdbc_target(url: str) -> JdbcTarget:
    """JDBC URL and properties for a libpq URL: one host, TCP or a Unix socket folder."""
    target = libpq_url(url)
    try:
        params = psycopg.conninfo.conninfo_to_dict(target)
    except psycopg.ProgrammingError as err:
        raise UsageError(f"not a database URL: {mask_url(target)}") from err
    host = str(params.get("host") or "localhost")
    port = str(params.get("port") or "5432")
    if "," in host or "," in port:
        raise UsageError(f"JDBC reads need one host; the URL names several: {mask_url(target)}")
    if not port.isdigit() or not (host.startswith("/") or _HOST.fullmatch(host)):
        raise UsageError(f"JDBC needs a plain host and port number: {mask_url(target)}")
    unknown = sorted(k for k in params if k not in _SAME and k not in _IGNORED)
    if unknown:
        raise UsageError(f"JDBC has no equivalent for {', '.join(unknown)} in {mask_url(target)}")
    options = str(params.get("options") or "").split()
    if any(o not in ("-c", "TimeZone=UTC", "timezone=UTC") for o in options):
        raise UsageError(f"JDBC cannot pass the server options of {mask_url(target)}")
    props = {_SAME[k]: str(v) for k, v in params.items() if k in _SAME}
    if "targetServerType" in props:
        wanted = props["targetServerType"]
        if wanted not in _SERVER_TYPES:
            raise UsageError(f"JDBC has no equivalent for target_session_attrs={wanted}")
        props["targetServerType"] = _SERVER_TYPES[wanted]
    dbname = str(params.get("dbname") or props.get("user") or "postgres")
    if host.startswith("/"):  # a socket folder: libpq's socket file in it, by port
        props["socketFactory"] = SOCKET_FACTORY
        props["socketFactoryArg"] = f"{host}/.s.PGSQL.{port}"
        host = "localhost"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 address
    return JdbcTarget(f"jdbc:postgresql://{host}:{port}/{quote(dbname, safe='')}", props)
