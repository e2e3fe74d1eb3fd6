"""libpq URLs as JDBC targets for Spark's executors: TCP hosts, socket folders through
junixsocket, and the settings JDBC has no name for refused (never silently dropped)."""

from __future__ import annotations

import pytest

from obslib.errors import UsageError
from obslib.storage.jdbc import SOCKET_FACTORY, jdbc_target


def test_a_tcp_url_keeps_host_port_database_and_settings() -> None:
    target = jdbc_target(
        "postgresql://sre:s%20cret@db.example:6432/obs?sslmode=verify-full"
        "&application_name=nb&connect_timeout=7"
    )
    assert target.url == "jdbc:postgresql://db.example:6432/obs"
    assert target.properties == {
        "user": "sre",
        "password": "s cret",
        "sslmode": "verify-full",
        "ApplicationName": "nb",
        "connectTimeout": "7",
    }
    assert "cret" not in repr(target)


def test_the_driver_prefix_and_default_port_are_understood() -> None:
    target = jdbc_target("postgresql+psycopg://sre@db/obs")
    assert target.url == "jdbc:postgresql://db:5432/obs"
    assert target.properties == {"user": "sre"}


def test_a_socket_folder_goes_through_junixsocket_to_libpqs_socket_file() -> None:
    target = jdbc_target("postgresql://pg@/obslib?host=/tmp/obs-x/run&port=5433")
    assert target.url == "jdbc:postgresql://localhost:5433/obslib"
    assert target.properties["socketFactory"] == SOCKET_FACTORY
    assert target.properties["socketFactoryArg"] == "/tmp/obs-x/run/.s.PGSQL.5433"


def test_an_ipv6_host_is_bracketed_and_the_database_name_quoted() -> None:
    assert jdbc_target("postgresql://[::1]:5432/my%20db").url == (
        "jdbc:postgresql://[::1]:5432/my%20db"
    )


def test_the_utc_option_obslib_adds_is_accepted() -> None:
    target = jdbc_target("postgresql://h/d?options=-c%20TimeZone%3DUTC")
    assert target.url == "jdbc:postgresql://h:5432/d"


def test_the_database_defaults_to_the_user_as_libpq_does() -> None:
    assert jdbc_target("postgresql://sre@db").url == "jdbc:postgresql://db:5432/sre"


@pytest.mark.parametrize(
    ("libpq", "pgjdbc"),
    [("any", "any"), ("read-write", "primary"), ("standby", "secondary")],
)
def test_target_session_attrs_become_pgjdbcs_server_types(libpq, pgjdbc) -> None:
    url = f"postgresql://u@h/d?target_session_attrs={libpq}"
    assert jdbc_target(url).properties["targetServerType"] == pgjdbc


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://u:pw@h/d?keepalives=1", "no equivalent for keepalives"),
        ("postgresql://u:pw@h/d?target_session_attrs=bogus", "target_session_attrs=bogus"),
        ("postgresql://u:pw@h1,h2/d", "one host"),
        ("postgresql://u:pw@/d?host=h1,h2", "one host"),
        # a host or port carrying URL parameters would override the checked properties
        ("postgresql://u:pw@/d?host=h/x%3FsocketFactory%3Dcom.evil.F", "plain host"),
        ("postgresql://u:pw@h/d?sslmode=verify-full&port=1/x%3Fsslmode%3Ddisable", "plain host"),
        ("postgresql://u:pw@h/d?options=-c%20statement_timeout%3D5", "server options"),
        ("mysql://u:pw@h/d", "postgresql://"),
    ],
)
def test_what_jdbc_cannot_say_is_refused_without_showing_the_password(url, message) -> None:
    with pytest.raises(UsageError, match=message) as err:
        jdbc_target(url)
    assert "pw" not in str(err.value)
