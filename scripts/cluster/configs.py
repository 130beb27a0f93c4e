"""The configuration files of the cluster's pooler and load balancer (docs/scaling.md explains
each setting that matters)."""

from __future__ import annotations

from pathlib import Path

DATABASE = "addrpool"
# PgBouncer's server connections: what PostgreSQL sees of the three APIs and two workers' pools.
POOLER_SERVER_CONNECTIONS = 20


def pgbouncer_ini(*, listen_port: int, server_port: int, auth_file: Path) -> str:
    """The settings that matter behind the pooler are explained in docs/scaling.md."""
    return (
        "[databases]\n"
        f"{DATABASE} = host=127.0.0.1 port={server_port} dbname={DATABASE}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {listen_port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {auth_file}\n"
        "pool_mode = transaction\n"
        f"default_pool_size = {POOLER_SERVER_CONNECTIONS}\nmax_client_conn = 1000\n"
        # asyncpg sends no startup parameter PgBouncer does not know but this one, as a setting.
        "ignore_startup_parameters = extra_float_digits\n"
        # A PostgreSQL restart: PgBouncer keeps its clients and reconnects to the server itself.
        "server_login_retry = 1\nserver_connect_timeout = 5\n"
        "query_wait_timeout = 30\n"
    )


def haproxy_cfg(*, listen_port: int, api_ports: list[int]) -> str:
    servers = "".join(
        f"    server api{n} 127.0.0.1:{port} check inter 1s fall 2 rise 2\n"
        for n, port in enumerate(api_ports)
    )
    return (
        "global\n    maxconn 4096\n"
        "defaults\n    mode http\n    timeout connect 2s\n    timeout client 60s\n"
        "    timeout server 60s\n    option http-keep-alive\n"
        # A request whose connection failed goes to another API; one sent to an API that died
        # before answering is not retried here (a bind is idempotent, but not every POST is):
        # the client retries it, with the same reference.
        "    retries 3\n    option redispatch 1\n    retry-on conn-failure\n"
        f"frontend addrpool\n    bind 127.0.0.1:{listen_port}\n    default_backend apis\n"
        "backend apis\n    balance roundrobin\n    option httpchk GET /health\n" + servers
    )
