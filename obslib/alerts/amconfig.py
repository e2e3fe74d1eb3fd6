"""An Alertmanager configuration (alertmanager.yml) read into its route tree and inhibit
rules, and a label set routed through the tree as Alertmanager routes it. Pure: it takes
the file's text (or the parsed mapping) and the file's name for messages."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path

import pandas as pd
import yaml

from obslib.alerts.time_intervals import TimeInterval, contains_any, parse_named
from obslib.errors import InputError

# Alertmanager's DefaultRouteOpts: what the root route has unless it says otherwise.
GROUP_WAIT = pd.Timedelta(seconds=30)
GROUP_INTERVAL = pd.Timedelta(minutes=5)
REPEAT_INTERVAL = pd.Timedelta(hours=4)
DEFAULT_CONFIG = "default_alertmanager.yml"  # shipped next to this module
TOP_KEYS = frozenset(
    {"global", "route", "receivers", "inhibit_rules", "templates"}
    | {"mute_time_intervals", "time_intervals"}
)
ROUTE_KEYS = frozenset(
    {"receiver", "group_by", "continue", "matchers", "match", "match_re", "routes"}
    | {"group_wait", "group_interval", "repeat_interval"}
    | {"mute_time_intervals", "active_time_intervals"}
)
INHIBIT_KEYS = frozenset(
    {"source_matchers", "source_match", "source_match_re", "equal"}
    | {"target_matchers", "target_match", "target_match_re"}
)
_INTEGRATIONS = (
    "email pagerduty slack webhook opsgenie wechat pushover victorops sns telegram webex discord"
    " msteams"
)
RECEIVER_KEYS = frozenset({"name"} | {f"{kind}_configs" for kind in _INTEGRATIONS.split()})
MAX_BYTES = 10 * 1024 * 1024  # an alertmanager.yml is kilobytes; refuse before parsing
MAX_NODES = 100_000  # YAML nodes after aliases expand ("billion laughs" stops here)
MAX_DEPTH = 64  # nested routes
TIME_KEYS = ("mute_time_intervals", "active_time_intervals")  # on routes: names of intervals
_LABEL = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
_MATCHER = re.compile(r"^\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(=~|=|!=|!~)\s*((?s:.*?))\s*$")
# Prometheus' model.ParseDuration: units in this order, each at most once; "0" alone is 0.
_DURATION = re.compile(
    r"(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?\Z"
)
_UNIT_MS = (365 * 86_400_000, 7 * 86_400_000, 86_400_000, 3_600_000, 60_000, 1000, 1)


@dataclass(frozen=True)
class Matcher:
    """One label matcher: ``name op value`` with op one of ``=``, ``!=``, ``=~``, ``!~``;
    regexes are anchored at both ends, as Alertmanager's are. A missing label is ``""``."""

    name: str
    op: str
    value: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        got = labels.get(self.name, "")
        if self.op in ("=", "!="):
            return (got == self.value) == (self.op == "=")
        return (re.fullmatch(self.value, got) is not None) == (self.op == "=~")

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'{self.name}{self.op}"{escaped}"'


@dataclass(frozen=True)
class RouteNode:
    """A route of the tree with its settings resolved (inherited from its parent where it
    says nothing). ``group_by`` is ``("...",)`` for every label; ``path`` names it in the
    document (``route.routes[1]``)."""

    path: str
    receiver: str
    matchers: tuple[Matcher, ...]
    group_by: tuple[str, ...]
    group_wait: pd.Timedelta
    group_interval: pd.Timedelta
    repeat_interval: pd.Timedelta
    continue_: bool = False
    routes: tuple[RouteNode, ...] = ()
    mute_time_intervals: tuple[str, ...] = ()
    active_time_intervals: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(m.matches(labels) for m in self.matchers)


@dataclass(frozen=True)
class InhibitMatchers:
    """An inhibit rule: a firing alert matching every ``source`` matcher mutes the alerts
    matching every ``target`` matcher that have the same values of the ``equal`` labels."""

    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    equal: tuple[str, ...] = ()


@dataclass(frozen=True)
class AlertmanagerConfig:
    """The parts of an alertmanager.yml a replay needs; ``file`` names it in messages."""

    file: str
    route: RouteNode
    inhibit_rules: tuple[InhibitMatchers, ...]
    receivers: tuple[str, ...]
    time_intervals: tuple[tuple[str, tuple[TimeInterval, ...]], ...] = ()

    def schedule(self, route: RouteNode) -> Callable[[datetime], bool] | None:
        """Whether ``route`` sends at an instant (notify.go's TimeActiveStage then
        TimeMuteStage): not while any of its ``mute_time_intervals`` is active and, when it
        names ``active_time_intervals``, only while one of those is. None: always."""
        named = dict(self.time_intervals)
        mute = [named[n] for n in route.mute_time_intervals]
        active = [named[n] for n in route.active_time_intervals]
        if not mute and not active:
            return None

        def sends(at: datetime) -> bool:
            if any(contains_any(ti, at) for ti in mute):
                return False
            return not active or any(contains_any(ti, at) for ti in active)

        return sends


def _without_sexagesimal(resolvers: dict) -> dict:
    """YAML 1.1's implicit int and float resolvers, except base 60: Alertmanager's Go YAML
    reads ``17:00`` and ``1:5`` as strings (a time of day, a day range), PyYAML as 1020 and
    65."""
    out = {}
    for first, pairs in resolvers.items():
        out[first] = [
            (tag, re.compile(r"(?=[^:]*\Z)" + rx.pattern, rx.flags))
            if tag.endswith((":int", ":float"))
            else (tag, rx)
            for tag, rx in pairs
        ]
    return out


class _Loader(yaml.SafeLoader):
    """safe_load, except a key given twice in one mapping is an error, aliases may not
    expand the document past ``MAX_NODES`` nodes and ``a:b`` is never a base-60 number."""

    yaml_implicit_resolvers = _without_sexagesimal(yaml.SafeLoader.yaml_implicit_resolvers)

    def get_single_node(self):
        node = super().get_single_node()
        if node is not None:
            _count_nodes(node)
        return node

    def construct_mapping(self, node, deep=False):
        seen: set = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                line = key_node.start_mark.line + 1
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (line {line})", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _count_nodes(root: yaml.Node) -> None:
    """The document's size with every alias expanded, counted on the node graph (each node
    once, children before parents, no recursion); an alias inside its own anchor is
    endless."""
    sizes: dict[int, int] = {}
    open_: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        if isinstance(node, yaml.MappingNode):
            kids = [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            kids = list(node.value)
        else:
            kids = []
        if done:
            open_.discard(id(node))
            sizes[id(node)] = min(1 + sum(sizes[id(k)] for k in kids), MAX_NODES + 1)
            if sizes[id(node)] > MAX_NODES:
                raise yaml.constructor.ConstructorError(
                    None, None, f"aliases expand it past {MAX_NODES} nodes", node.start_mark
                )
            continue
        if id(node) in sizes:
            continue
        if id(node) in open_:
            raise yaml.constructor.ConstructorError(
                None, None, "an alias refers to its own anchor", node.start_mark
            )
        open_.add(id(node))
        stack.append((node, True))
        stack.extend((k, False) for k in kids if id(k) not in sizes)


class _Where:
    """The file and the path in the document, for one-line messages."""

    def __init__(self, file: str) -> None:
        self.file = file

    def fail(self, path: str, problem: str) -> InputError:
        return InputError(f"{self.file}: {path}: {problem}")


def parse_duration(text: object, path: str = "duration", file: str = "<config>") -> pd.Timedelta:
    """A duration in Prometheus' syntax (``30s``, ``5m``, ``1h30m``, ``1d``, ``0``)."""
    if text == "0":
        return pd.Timedelta(0)
    found = _DURATION.match(text) if isinstance(text, str) and text else None
    if found is None or not any(found.groups()):
        raise _Where(file).fail(path, f"not a duration: {text!r} (e.g. 30s, 5m, 1h30m, 1d)")
    ms = sum(int(n) * unit for n, unit in zip(found.groups(), _UNIT_MS, strict=True) if n)
    return pd.Timedelta(milliseconds=ms)


def parse_matcher(text: str) -> Matcher:
    """One ``label op value`` matcher, the value bare or double-quoted (pkg/labels)."""
    found = _MATCHER.match(text)
    if found is None:
        raise ValueError(f"not a matcher: {text!r} (label=value, !=, =~ or !~)")
    name, op, raw = found.groups()
    quoted = raw.startswith('"')  # then it must end with the one unescaped quote
    body = raw[1:] if quoted else raw
    value: list[str] = []
    escaped = False
    for i, ch in enumerate(body):
        if escaped:
            value.append({"n": "\n", "\\": "\\", '"': '"'}.get(ch, "\\" + ch))
            escaped = False
        elif ch == "\\" and i < len(body) - 1:
            escaped = True
        elif ch == '"':
            if not quoted or i < len(body) - 1:
                raise ValueError(f"matcher value contains an unescaped double quote: {text!r}")
            quoted = False
        else:
            value.append(ch)
    if quoted:
        raise ValueError(f"matcher value lacks its closing double quote: {text!r}")
    out = Matcher(name, op, "".join(value))
    if op in ("=~", "!~"):
        try:
            re.compile(out.value)
        except re.error as err:
            raise ValueError(f"bad regex {out.value!r}: {err}") from None
    return out


def _split_matchers(text: str) -> list[str]:
    """``a="x,y", b=~"z"`` (optionally in braces) into its matchers: commas outside quotes."""
    text = text.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1]
    parts, cur, quoted, escaped = [], [], False, False
    for ch in text:
        if ch == "," and not quoted:
            parts.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == '"':
            quoted = not quoted
    parts.append("".join(cur))
    return [p for p in parts if p.strip()] or [text]


def _matchers(node: Mapping, prefix: str, path: str, where: _Where) -> tuple[Matcher, ...]:
    """``{prefix}matchers`` (strings), then the legacy ``{prefix}match`` (equality) and
    ``{prefix}match_re`` (regex) mappings."""
    out: list[Matcher] = []
    listed = node.get(f"{prefix}matchers") or []
    if not isinstance(listed, list):
        raise where.fail(f"{path}.{prefix}matchers", "must be a list of strings")
    for k, text in enumerate(listed):
        at = f"{path}.{prefix}matchers[{k}]"
        if not isinstance(text, str):
            raise where.fail(at, f'a matcher is a string like severity="page", not {text!r}')
        try:
            out += [parse_matcher(part) for part in _split_matchers(text)]
        except ValueError as err:
            raise where.fail(at, str(err)) from None
    for key, op in ((f"{prefix}match", "="), (f"{prefix}match_re", "=~")):
        given = node.get(key) or {}
        if not isinstance(given, Mapping):
            raise where.fail(f"{path}.{key}", "must be a mapping of label: value")
        for name, value in given.items():
            at = f"{path}.{key}.{name}"
            if not isinstance(name, str) or not _LABEL.match(name):
                raise where.fail(at, f"not a label name: {name!r}")
            if isinstance(value, bool | list | dict) or value is None:
                raise where.fail(at, f"must be a string, not {value!r}")
            if op == "=~":
                try:
                    re.compile(str(value))
                except re.error as err:
                    raise where.fail(at, f"bad regex {value!r}: {err}") from None
            out.append(Matcher(name, op, str(value)))
    return tuple(out)


def _keys(node: object, allowed: frozenset, path: str, where: _Where) -> Mapping:
    if not isinstance(node, Mapping):
        raise where.fail(path, f"must be a mapping, not {type(node).__name__}")
    unknown = sorted(str(k) for k in node if k not in allowed)
    if unknown:
        raise where.fail(f"{path}.{_key_text(unknown[0])}", "unknown key")
    return node


# Alertmanager's keys are identifiers; anything else is not an alertmanager.yml
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


def _key_text(key: str) -> str:
    """An unknown key as an error quotes it: itself when it could be a key (a misspelt one),
    else only its length. A file that is not an alertmanager.yml (``--config /etc/shadow``)
    would otherwise have its first line printed, secrets and all, into an error that a
    report keeps."""
    return key if _KEY.fullmatch(key) else f"<a key of {len(key)} characters>"


def _group_by(value: object, path: str, where: _Where) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise where.fail(f"{path}.group_by", "must be a list of label names")
    if "..." in value and len(value) > 1:
        raise where.fail(f"{path}.group_by", "'...' (every label) cannot go with other labels")
    for k, name in enumerate(value):
        if name != "..." and not _LABEL.match(name):
            raise where.fail(f"{path}.group_by[{k}]", f"not a label name: {name!r}")
    if len(set(value)) < len(value):
        raise where.fail(f"{path}.group_by", "a label is listed twice")
    return tuple(value)


def _route(node: object, path: str, parent: RouteNode | None, where: _Where) -> RouteNode:
    node = _keys(node, ROUTE_KEYS, path, where)
    if path.count(".routes[") > MAX_DEPTH:
        raise where.fail(path, f"routes nested more than {MAX_DEPTH} deep")
    timed = {key: _interval_names(node, key, path, where) for key in TIME_KEYS}
    if parent is None and any(timed.values()):
        key = next(k for k, v in timed.items() if v)
        raise where.fail(f"{path}.{key}", "the root route must not have time intervals")
    times = {}
    for key, default in (
        ("group_wait", GROUP_WAIT),
        ("group_interval", GROUP_INTERVAL),
        ("repeat_interval", REPEAT_INTERVAL),
    ):
        given = node.get(key)
        inherited = default if parent is None else getattr(parent, key)
        times[key] = (
            inherited if given is None else parse_duration(given, f"{path}.{key}", where.file)
        )
    for key in ("group_interval", "repeat_interval"):
        if times[key] <= pd.Timedelta(0):
            raise where.fail(f"{path}.{key}", "must be more than 0")
    receiver = node.get("receiver", parent.receiver if parent else None)
    if not isinstance(receiver, str) or not receiver:
        raise where.fail(f"{path}.receiver", "the root route needs a receiver")
    if "group_by" in node and node["group_by"] is not None:
        group_by = _group_by(node["group_by"], path, where)
    else:
        group_by = parent.group_by if parent else ()
    matchers = _matchers(node, "", path, where)
    if parent is None and matchers:
        raise where.fail(path, "the root route must not have matchers")
    cont = node.get("continue", False)
    if not isinstance(cont, bool):
        raise where.fail(f"{path}.continue", f"must be true or false, not {cont!r}")
    here = RouteNode(path, receiver, matchers, group_by, **times, continue_=cont, **timed)
    children = node.get("routes") or []
    if not isinstance(children, list):
        raise where.fail(f"{path}.routes", "must be a list of routes")
    kids = tuple(_route(c, f"{path}.routes[{k}]", here, where) for k, c in enumerate(children))
    return RouteNode(
        path, receiver, matchers, group_by, **times, continue_=cont, routes=kids, **timed
    )


def _interval_names(node: Mapping, key: str, path: str, where: _Where) -> tuple[str, ...]:
    """A route's own ``mute_time_intervals`` or ``active_time_intervals``: never inherited
    (Alertmanager 0.25 dispatch/route.go NewRoute sets ``opts.MuteTimeIntervals =
    cr.MuteTimeIntervals`` and the same for active ones, over the parent's options)."""
    names = node.get(key) or []
    if not isinstance(names, list):
        raise where.fail(f"{path}.{key}", "must be a list of time interval names")
    for k, name in enumerate(names):
        if not isinstance(name, str) or not name:
            raise where.fail(f"{path}.{key}[{k}]", f"not a time interval name: {name!r}")
    return tuple(names)


def _inhibit(node: object, path: str, where: _Where) -> InhibitMatchers:
    node = _keys(node, INHIBIT_KEYS, path, where)
    equal = node.get("equal") or []
    if not isinstance(equal, list) or not all(isinstance(e, str) for e in equal):
        raise where.fail(f"{path}.equal", "must be a list of label names")
    for k, name in enumerate(equal):
        if not _LABEL.match(name):
            raise where.fail(f"{path}.equal[{k}]", f"not a label name: {name!r}")
    return InhibitMatchers(
        _matchers(node, "source_", path, where),
        _matchers(node, "target_", path, where),
        tuple(equal),
    )


def _load(text: str | bytes, where: _Where) -> object:
    if len(text) > MAX_BYTES:
        raise where.fail("(file)", f"larger than {MAX_BYTES // 2**20} MB: not an alertmanager.yml")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as err:
            raise where.fail("(file)", f"not UTF-8 text (byte offset {err.start})") from None
    try:
        return yaml.load(text, Loader=_Loader)  # _Loader is a SafeLoader
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        at = f"line {mark.line + 1}" if mark else "(file)"
        raise where.fail(at, f"invalid YAML: {' '.join(str(err.problem).split())}") from None
    except yaml.YAMLError as err:
        raise where.fail("(file)", f"invalid YAML: {' '.join(str(err).split())}") from None


def parse_config(
    source: str | bytes | Mapping, file: str = "alertmanager.yml"
) -> AlertmanagerConfig:
    """An alertmanager.yml's text (or its parsed mapping) as an ``AlertmanagerConfig``.

    Checked as ``amtool check-config`` checks what the replay uses: unknown keys, durations,
    matchers, group_by, receivers and time intervals the routes name, the time intervals'
    fields (``time_intervals[0].time_intervals[1].weekdays[0]``). Receivers' integrations
    and ``global`` are not read (they say where a notification goes, not whether it is
    sent). Raises
    ``InputError``: ``FILE: route.routes[2].matchers[0]: problem``."""
    where = _Where(file)
    doc = source if isinstance(source, Mapping) else _load(source, where)
    doc = _keys(doc, TOP_KEYS, "(top level)", where)
    if not doc.get("route"):
        raise where.fail("route", "missing: the config needs a root route")
    receivers = doc.get("receivers") or []
    if not isinstance(receivers, list):
        raise where.fail("receivers", "must be a list")
    names: list[str] = []
    for k, rec in enumerate(receivers):
        rec = _keys(rec, RECEIVER_KEYS, f"receivers[{k}]", where)
        name = rec.get("name")
        if not isinstance(name, str) or not name:
            raise where.fail(f"receivers[{k}].name", "missing")
        if name in names:
            raise where.fail(f"receivers[{k}].name", f"receiver {name!r} is defined twice")
        names.append(name)
    intervals = parse_named(doc, where.fail)
    route = _route(doc["route"], "route", None, where)
    for node in walk(route):
        if node.receiver not in names:
            raise where.fail(f"{node.path}.receiver", f"undefined receiver {node.receiver!r}")
        for key in TIME_KEYS:
            for k, name in enumerate(getattr(node, key)):
                if name not in intervals:
                    raise where.fail(f"{node.path}.{key}[{k}]", f"undefined time interval {name!r}")
    rules = doc.get("inhibit_rules") or []
    if not isinstance(rules, list):
        raise where.fail("inhibit_rules", "must be a list")
    inhibit = tuple(_inhibit(r, f"inhibit_rules[{k}]", where) for k, r in enumerate(rules))
    return AlertmanagerConfig(file, route, inhibit, tuple(names), tuple(intervals.items()))


def default_config() -> AlertmanagerConfig:
    """The config obslib ships: one page per service at a time, Alertmanager's timings,
    and a critical alert mutes the lower-severity ones of its service."""
    text = resources.files("obslib.alerts").joinpath(DEFAULT_CONFIG).read_text("utf-8")
    return parse_config(text, DEFAULT_CONFIG)


def read_config(path: str | os.PathLike[str]) -> AlertmanagerConfig:
    """An alertmanager.yml from a file: ``parse_config`` of its bytes; refused in one line
    (InputError) when unreadable, not a regular file (a folder, a FIFO, ``/dev/zero``) or
    larger than ``MAX_BYTES`` (read no further)."""
    file = Path(path)
    try:  # not blocking: a FIFO is refused, not waited on
        fd = os.open(file, os.O_RDONLY | os.O_NONBLOCK)
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # /dev/zero would never end
            os.close(fd)
            raise InputError(f"{file}: not a regular file: not an alertmanager.yml")
        with os.fdopen(fd, "rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except OSError as err:
        raise InputError(f"{file}: cannot read the file: {err.strerror or err}") from None
    if len(raw) > MAX_BYTES:
        raise InputError(f"{file}: larger than {MAX_BYTES // 2**20} MB: not an alertmanager.yml")
    return parse_config(raw, str(file))


def walk(route: RouteNode):
    """Every route of the tree, depth-first, parents first."""
    yield route
    for child in route.routes:
        yield from walk(child)


def match_routes(route: RouteNode, labels: Mapping[str, str]) -> list[RouteNode]:
    """The routes a label set is delivered to (dispatch/route.go Match): depth-first, a
    route's first matching child unless that child has ``continue``; a route none of whose
    children match takes the alert itself. The root matches everything."""
    if not route.matches(labels):
        return []
    found: list[RouteNode] = []
    for child in route.routes:
        got = match_routes(child, labels)
        found += got
        if got and not child.continue_:
            break
    return found or [route]


def receivers_for(config: AlertmanagerConfig, labels: Mapping[str, str]) -> list[str]:
    """The receivers ``labels`` is routed to, in order (what ``amtool config routes test``
    prints)."""
    return [r.receiver for r in match_routes(config.route, labels)]
