"""DomainFlow as the demo models it: request templates, hosts, SLOs and alert definitions.

Data, not logic: ``obslib.demo`` turns these tables into telemetry.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from obslib.demo import DEFAULT_SEED, DEFAULT_SPANS  # noqa: F401 (topo.DEFAULT_SEED)

# The demo's fixed clock: 14 days ending here, the incident on the second-to-last day.
DEMO_END = pd.Timestamp("2026-11-16 00:00", tz="UTC")
DEMO_DAYS = 14
DEPLOY_AT = pd.Timestamp("2026-11-14 14:05", tz="UTC")
INCIDENT_MINUTES = 45
BAD_VERSION, GOOD_VERSION = "v2.14.0", "v2.13.4"


@dataclass(frozen=True)
class Node:
    """One span of a request template; ``parent`` indexes an earlier node (-1: the root)."""

    service: str
    operation: str
    kind: str
    parent: int
    self_ms: float  # median time of its own (lognormal)
    sigma: float = 0.35
    present: float = 1.0  # probability of happening when its parent happens
    error: float = 0.0  # probability of failing here
    timeout: bool = False  # a failure here is a timeout
    fanout: bool = False  # children run in parallel, not one after another
    route: str | None = None  # HTTP route of a server span
    method: str = "GET"
    incident: bool = False  # slowed down and failing during the scripted incident
    trend: bool = False  # slowly degrading over the 14 days
    on_success: bool = False  # a write or publish: skipped when its parent has failed


@dataclass
class Template:
    """A kind of request: its share of traffic and its span tree (parents before children)."""

    name: str
    weight: float
    nodes: list[Node] = field(default_factory=list)

    def add(
        self, service: str, operation: str, kind: str, parent: int, self_ms: float, **kw
    ) -> int:
        self.nodes.append(Node(service, operation, kind, parent, self_ms, **kw))
        return len(self.nodes) - 1

    def call(self, parent: int, callee: str, operation: str, self_ms: float, **kw) -> int:
        """A client span in the caller and the callee's server span inside it."""
        caller = self.nodes[parent].service
        client = self.add(
            caller,
            f"{callee} {operation}",
            "client",
            parent,
            0.4,
            sigma=0.2,
            present=kw.pop("present", 1.0),
            on_success=kw.pop("on_success", False),
        )
        return self.add(callee, operation, "server", client, self_ms, **kw)

    def auth(self, root: int) -> None:
        server = self.call(root, "auth-service", "validate_token", 6, trend=True, error=0.00005)
        self.add("auth-service", "jwt.verify", "internal", server, 1.2)
        self.call(server, "cache", "GET session", 0.6, sigma=0.5)


def templates() -> list[Template]:
    """The four request kinds DomainFlow serves, with their call trees."""
    gen = Template("generate_domains", 0.25)
    root = gen.add(
        "api-gateway",
        "POST /api/v1/domains/generate",
        "server",
        -1,
        2.5,
        route="/api/v1/domains/generate",
        method="POST",
    )
    gen.auth(root)
    svc = gen.call(
        root,
        "domain-service",
        "generate_domains",
        14,
        error=0.0001,
        incident=True,
        route="/internal/domains/generate",
        method="POST",
    )
    gen.call(svc, "cache", "GET candidates", 0.7, sigma=0.5)
    gen.call(svc, "domain-generator", "generate_candidates", 45, sigma=0.45, error=0.00005)
    batch = gen.call(
        svc, "dns-resolver", "resolve_batch", 2, error=0.0003, timeout=True, fanout=True
    )
    for zone in ("com", "net", "io"):
        gen.add("dns-resolver", f"lookup .{zone}", "internal", batch, 18, sigma=0.6)
    gen.call(svc, "postgres", "INSERT domains", 5, sigma=0.4, on_success=True)
    pub = gen.add(
        "domain-service", "publish domain.generated", "producer", svc, 0.6, on_success=True
    )
    consumer = gen.add("notification-service", "consume domain.generated", "consumer", pub, 2)
    gen.add("notification-service", "send_email", "internal", consumer, 60, sigma=0.5, error=0.001)

    lst = Template("list_domains", 0.45)
    root = lst.add("api-gateway", "GET /api/v1/domains", "server", -1, 1.5, route="/api/v1/domains")
    lst.auth(root)
    svc = lst.call(
        root,
        "domain-service",
        "list_domains",
        4,
        error=0.0001,
        incident=True,
        route="/internal/domains",
    )
    lst.call(svc, "cache", "GET domains", 0.6, sigma=0.5)
    lst.call(svc, "postgres", "SELECT domains", 9, sigma=0.5, present=0.25)  # cache misses

    create = Template("create_campaign", 0.10)
    root = create.add(
        "api-gateway",
        "POST /api/v1/campaigns",
        "server",
        -1,
        2.5,
        route="/api/v1/campaigns",
        method="POST",
    )
    create.auth(root)
    svc = create.call(
        root,
        "campaign-service",
        "create_campaign",
        10,
        error=0.0015,
        route="/internal/campaigns",
        method="POST",
    )
    create.call(svc, "postgres", "INSERT campaigns", 7, sigma=0.4, on_success=True)
    pub = create.add(
        "campaign-service", "publish campaign.created", "producer", svc, 0.6, on_success=True
    )
    consumer = create.add("notification-service", "consume campaign.created", "consumer", pub, 2)
    create.add(
        "notification-service", "send_email", "internal", consumer, 60, sigma=0.5, error=0.001
    )

    get = Template("get_campaign", 0.20)
    root = get.add(
        "api-gateway",
        "GET /api/v1/campaigns/{id}",
        "server",
        -1,
        1.5,
        route="/api/v1/campaigns/{id}",
    )
    get.auth(root)
    svc = get.call(
        root, "campaign-service", "get_campaign", 3, error=0.0005, route="/internal/campaigns/{id}"
    )
    get.call(svc, "postgres", "SELECT campaigns", 4, sigma=0.4)
    return [gen, lst, create, get]


# Hosts per service; a clock offset (ms) for the few whose clocks run off.
HOSTS: dict[str, list[str]] = {
    "api-gateway": ["api-gateway-7c9f-0", "api-gateway-7c9f-1", "api-gateway-7c9f-2"],
    "auth-service": ["auth-service-5d8b-0", "auth-service-5d8b-1"],
    "domain-service": ["domain-service-6f4a-0", "domain-service-6f4a-1", "domain-service-6f4a-2"],
    "domain-generator": ["domain-generator-0", "domain-generator-1"],
    "dns-resolver": ["dns-resolver-0", "dns-resolver-1"],
    "postgres": ["pg-primary-0"],
    "cache": ["redis-0", "redis-1"],
    "campaign-service": ["campaign-service-84c2-0", "campaign-service-84c2-1"],
    "notification-service": ["notification-service-0"],
}
CLOCK_OFFSET_MS = {"dns-resolver-1": 35.0, "notification-service-0": -4.0}

ERROR_MESSAGES = {
    "domain-service": "connection pool exhausted: timed out waiting for a connection after 500 ms",
    "dns-resolver": "upstream resolver timeout after 2000 ms",
    "auth-service": "token signature verification failed",
    "campaign-service": "constraint violation: duplicate campaign slug",
    "domain-generator": "model worker crashed: out of memory",
    "notification-service": "SMTP relay refused connection",
}

# SLO definitions: notification-service, cache and postgres deliberately have none.
SLOS = pd.DataFrame(
    [
        ("api-gateway", "availability", "availability", 99.9, 720, None),
        ("api-gateway", "latency-p99-300ms", "latency", 99.0, 720, 300.0),
        ("auth-service", "availability", "availability", 99.95, 720, None),
        ("auth-service", "latency-p99-25ms", "latency", 99.0, 168, 25.0),
        ("domain-service", "availability", "availability", 99.9, 24, None),
        ("domain-service", "latency-p99-400ms", "latency", 99.0, 24, 400.0),
        ("campaign-service", "availability", "availability", 99.5, 720, None),
        ("dns-resolver", "availability", "availability", 99.0, 168, None),
    ],
    columns=[
        "service_name",
        "slo_name",
        "slo_type",
        "target_value",
        "measurement_window_hours",
        "latency_threshold_ms",
    ],
)

ALERTS = pd.DataFrame(
    [
        (
            "domain-service-high-error-rate",
            "domain-service",
            "threshold",
            "error_rate",
            "rate(errors[5m]) / rate(requests[5m]) > 0.02",
            "critical",
            ["pagerduty", "slack"],
        ),
        (
            "domain-service-availability-burn",
            "domain-service",
            "slo_violation",
            "slo_burn_rate",
            "burn_rate(1h) > 14.4 and burn_rate(5m) > 14.4",
            "critical",
            ["pagerduty"],
        ),
        (
            "api-gateway-latency-p99",
            "api-gateway",
            "threshold",
            "latency_p99_ms",
            "p99(duration_ms[5m]) > 300",
            "high",
            ["slack"],
        ),
        (
            "auth-service-latency-anomaly",
            "auth-service",
            "anomaly",
            "latency_p50_ms",
            "zscore(p50(duration_ms[15m]), 7d) > 3",
            "medium",
            ["slack"],
        ),
        (
            "dns-resolver-timeouts",
            "dns-resolver",
            "threshold",
            "timeout_count",
            "increase(timeouts[1m]) > 0",
            "low",
            ["slack"],
        ),
        (
            "campaign-service-error-budget",
            "campaign-service",
            "slo_violation",
            "error_budget_remaining",
            "error_budget_remaining < 10",
            "high",
            ["slack", "email"],
        ),
        (
            "cache-hit-ratio-anomaly",
            "cache",
            "anomaly",
            "cache_hit_ratio",
            "zscore(hit_ratio[30m], 7d) < -3",
            "low",
            ["email"],
        ),
        # log rules (obslib.logs.rules): what `obslib alerts evaluate-logs` evaluates
        (
            "domain-service-new-error-template",
            "domain-service",
            "log",
            "log_new_template",
            "new template at level >= error in 10m, not seen in the previous 7d",
            "high",
            ["slack"],
        ),
        (
            "domain-service-pool-timeouts",
            "domain-service",
            "log",
            "log_template_count",
            'template "pool checkout timed out after <DURATION>: <NUM>/<NUM> connections in use'
            ' (pool=domains-rw host=<ID> span=<HEX>)" at level >= error more than 1 times in 30m',
            "medium",
            ["slack"],
        ),
    ],
    columns=[
        "alert_name",
        "service_name",
        "alert_type",
        "metric_name",
        "condition_expression",
        "severity",
        "notification_channels",
    ],
)

# Deploys (log events); only the one at DEPLOY_AT goes wrong.
DEPLOYS = [
    (pd.Timestamp("2026-11-04 10:20", tz="UTC"), "auth-service", "v1.9.2", "v1.9.1"),
    (pd.Timestamp("2026-11-09 16:40", tz="UTC"), "campaign-service", "v3.2.0", "v3.1.7"),
    (DEPLOY_AT, "domain-service", BAD_VERSION, GOOD_VERSION),
]
