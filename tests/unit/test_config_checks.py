"""Built-in health checks as configuration: ``Config.checks`` from TOML, mappings, code and the
environment, refused with the path of the bad key; ``Component.checks()``; the running check a
spec builds; its hysteresis on a FakeClock; and ``docs/ladder.md``'s example, read from the doc."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path
from typing import Any

import pytest

import vnfha
import vnfha.blocking
import vnfha.testing
from vnfha import CheckSpec, Component, Config, ConfigError, Recovery
from vnfha.config import load_config
from vnfha.errors import HealthCheckFailed
from vnfha.health.checks import GrpcHealth, PidfileAlive, ProcessAlive, TcpConnect, from_spec
from vnfha.health.ladder import Fault
from vnfha.health.monitor import HealthMonitor, MonitoredCheck
from vnfha.health.supervisor import APP_CHECK
from vnfha.health.verdict import CheckPolicy, Health
from vnfha.metrics import CheckKind
from vnfha.testing import FakeClock
from vnfha.wiring import component_checks, supervisor_settings

DOCS = Path(__file__).resolve().parents[2] / "docs"
TCP = {"kind": "tcp", "target": "127.0.0.1:5432"}


def make(checks: object) -> Config:
    return Config(group="vfw", member="vfw-a", checks=checks)  # type: ignore[arg-type]


def refused(checks: object) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        make(checks)
    return info.value


# -- parsing -------------------------------------------------------------------------------------


def test_a_check_takes_its_defaults_and_a_name_from_its_kind_and_target() -> None:
    [spec] = make([TCP]).checks
    assert spec == CheckSpec(kind="tcp", target="127.0.0.1:5432")
    assert (spec.name, spec.period_s, spec.timeout_s, spec.fail_after, spec.recover_after,
            spec.recommended) == ("tcp-127.0.0.1:5432", 5.0, 2.0, 3, 2, Recovery.NONE)
    assert spec.policy == CheckPolicy(fail_after=3, recover_after=2, period_s=5.0, timeout_s=2.0)


@pytest.mark.parametrize(("given", "name"), [
    ({"kind": "grpc-health", "target": "[::1]:50051"}, "grpc-[::1]:50051"),
    ({"kind": "grpc_health", "target": "db:1", "service": "vnfha.Db"}, "grpc-db:1/vnfha.Db"),
    ({"kind": "PROCESS", "target": 4242}, "process-4242"),
    ({"kind": "process", "target": "/run/vfw/worker.pid"}, "process-/run/vfw/worker.pid"),
    ({**TCP, "name": "db"}, "db"),
])
def test_default_names_follow_the_built_in_checks(given: dict[str, Any], name: str) -> None:
    [spec] = make([given]).checks
    assert spec.name == name and spec.kind in ("tcp", "grpc-health", "process")


def test_a_short_period_shortens_the_default_timeout() -> None:
    """The brief's example, ``period_s = 1.0`` alone, is valid: the timeout follows."""
    [fast, slow] = make([{**TCP, "period_s": 1}, {**TCP, "name": "b", "period_s": 0.5,
                                                  "timeout_s": 0.25}]).checks
    assert (fast.period_s, fast.timeout_s) == (1.0, 1.0)
    assert (slow.period_s, slow.timeout_s) == (0.5, 0.25)


def test_toml_takes_tables_and_inline_tables(tmp_path: Path) -> None:
    tables = tmp_path / "tables.toml"
    tables.write_text('group = "vfw"\nmember = "vfw-a"\n\n[[checks]]\nkind = "tcp"\n'
                      'target = "127.0.0.1:8080"\nperiod_s = 1.0\n\n[[checks]]\n'
                      'kind = "process"\ntarget = "/run/x.pid"\nrecommended = "restart"\n')
    inline = tmp_path / "inline.toml"
    inline.write_text('group = "vfw"\nmember = "vfw-a"\nchecks = [\n'
                      '  {kind = "tcp", target = "127.0.0.1:8080", period_s = 1.0},\n'
                      '  {kind = "process", target = "/run/x.pid", recommended = "restart"},\n]\n')
    cfg = load_config(tables, environ={})
    assert load_config(inline, environ={}) == cfg
    assert [(c.kind, c.name, c.recommended) for c in cfg.checks] == [
        ("tcp", "tcp-127.0.0.1:8080", Recovery.NONE),
        ("process", "process-/run/x.pid", Recovery.RESTART)]


def test_a_single_table_is_refused_with_the_array_syntax(tmp_path: Path) -> None:
    path = tmp_path / "one.toml"
    path.write_text('group = "g"\nmember = "m"\n[checks]\nkind = "tcp"\ntarget = "a:1"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert info.value.field == "checks" and "[[checks]]" in info.value.problem
    assert info.value.problem.endswith(f"(set in {path})")


def test_a_bad_key_in_a_file_names_its_path_and_the_file(tmp_path: Path) -> None:
    path = tmp_path / "vnfha.toml"
    path.write_text('group = "g"\nmember = "m"\n[[checks]]\nkind = "tcp"\ntarget = "a:1"\n'
                    '[[checks]]\nkind = "tcp"\ntarget = "db:x"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert (info.value.field, info.value.value) == ("checks[1].target", "db:x")
    assert info.value.problem == f"port must be a number in 1..65535 (set in {path})"


def test_the_environment_sets_checks_as_a_toml_array() -> None:
    env = {"VNFHA_GROUP": "g", "VNFHA_MEMBER": "m",
           "VNFHA_CHECKS": '[{kind = "tcp", name = "db", target = "127.0.0.1:5432"}]'}
    assert load_config(None, environ=env).checks == (
        CheckSpec(kind="tcp", name="db", target="127.0.0.1:5432"),)
    assert load_config(None, environ={**env, "VNFHA_CHECKS": " "}).checks == ()
    with pytest.raises(ConfigError) as info:
        load_config(None, environ={**env, "VNFHA_CHECKS": "tcp:db"})
    assert info.value.field == "checks" and "TOML array of tables" in info.value.problem
    assert "environment variable VNFHA_CHECKS" in info.value.problem


def test_from_mapping_coerces_strings_inside_a_check() -> None:
    cfg = Config.from_mapping({"group": "g", "member": "m", "checks": [
        {**TCP, "period_s": "2", "fail_after": "4"}]})
    assert (cfg.checks[0].period_s, cfg.checks[0].fail_after) == (2.0, 4)


def test_describe_round_trips_and_configs_stay_hashable() -> None:
    cfg = make([TCP, {"kind": "grpc-health", "target": "h:1", "service": "s", "name": "h",
                      "recommended": Recovery.FAILOVER}])
    described = cfg.describe()["checks"]
    assert isinstance(described, list) and described[1]["recommended"] == "failover"
    assert Config.from_mapping(cfg.describe()) == cfg
    assert hash(cfg) == hash(make(list(cfg.checks)))
    assert CheckSpec(**described[0]) == cfg.checks[0]


# -- refusals ------------------------------------------------------------------------------------

BAD: list[tuple[object, str, object, str]] = [
    # (checks, field, value, problem)
    (7, "checks", 7, "expected a list of checks"),
    ({"kind": "tcp"}, "checks", {"kind": "tcp"}, "[[checks]]"),
    ([7], "checks[0]", 7, "a table of check settings"),
    ([{"target": "a:1"}], "checks[0].kind", None, "required"),
    ([{"kind": "tcp"}], "checks[0].target", None, "required"),
    ([{"kind": "udp", "target": "a:1"}], "checks[0].kind", "udp",
     "one of 'process', 'tcp', 'grpc-health'"),
    ([{**TCP, "perod_s": 1}], "checks[0].perod_s", 1, "did you mean 'period_s'?"),
    ([{**TCP, "zzz": 1}], "checks[0].zzz", 1, "the keys are kind, target, name"),
    ([TCP, {"kind": "tcp", "target": "db"}], "checks[1].target", "db", "host:port"),
    ([{"kind": "tcp", "target": "db:0"}], "checks[0].target", "db:0", "1..65535"),
    ([{"kind": "grpc-health", "target": "dns:///db:1"}], "checks[0].target", "dns:///db:1",
     "without a scheme"),
    ([{"kind": "tcp", "target": 5432}], "checks[0].target", 5432, "expected a 'host:port'"),
    ([{"kind": "process", "target": "run/x.pid"}], "checks[0].target", "run/x.pid",
     "absolute path"),
    ([{"kind": "process", "target": "0"}], "checks[0].target", "0", "a pid is in 1.."),
    ([{"kind": "process", "target": True}], "checks[0].target", True, "expected a pid"),
    ([{**TCP, "service": "x"}], "checks[0].service", "x", "only a grpc-health check"),
    ([{"kind": "grpc-health", "target": "h:1", "service": "a b"}], "checks[0].service", "a b",
     "spaces"),
    ([{**TCP, "name": "a,b"}], "checks[0].name", "a,b", "1-128 characters"),
    ([{**TCP, "name": APP_CHECK}], "checks[0].name", APP_CHECK, "component's own"),
    ([TCP, TCP], "checks[1].name", "tcp-127.0.0.1:5432", "checks[0] has this name too"),
    ([{**TCP, "period_s": 0}], "checks[0].period_s", 0, "greater than 0"),
    ([{**TCP, "period_s": "x"}], "checks[0].period_s", "x", "expected a number of seconds"),
    ([{**TCP, "timeout_s": 6}], "checks[0].timeout_s", 6.0, "at most period_s (5)"),
    ([{**TCP, "fail_after": 0}], "checks[0].fail_after", 0, "1..1000"),
    ([{**TCP, "recover_after": 1.5}], "checks[0].recover_after", 1.5, "expected an integer"),
    ([{**TCP, "recommended": "reboot"}], "checks[0].recommended", "reboot", "one of 'none'"),
    ([{**TCP, "name": f"c{i}"} for i in range(65)], "checks", "65 checks", "at most 64"),
]


@pytest.mark.parametrize(("checks", "field", "value", "problem"), BAD)
def test_a_bad_check_names_the_path_of_its_key(checks: object, field: str, value: object,
                                               problem: str) -> None:
    err = refused(checks)
    assert (err.field, err.value) == (field, value)
    assert problem in err.problem


def test_a_spec_built_in_code_names_the_bare_key() -> None:
    with pytest.raises(ConfigError) as info:
        CheckSpec(kind="tcp", target="db")
    assert info.value.field == "target"


def test_the_reserved_name_and_the_kinds_match_the_runtime() -> None:
    assert vnfha.config.CheckSpec is CheckSpec
    assert {spec.kind for spec in make([
        TCP, {"kind": "process", "target": "1"}, {"kind": "grpc-health", "target": "a:1"}]
    ).checks} <= {k.value for k in CheckKind}
    assert refused([{**TCP, "name": "health_check"}]).value == APP_CHECK


# -- from code: Component.checks() ---------------------------------------------------------------


class WithChecks(Component):
    def __init__(self, *specs: object) -> None:
        self.specs = list(specs)

    def checks(self) -> list[CheckSpec]:
        return self.specs  # type: ignore[return-value]


def test_component_checks_follow_the_configured_ones() -> None:
    cfg = make([{**TCP, "name": "db"}])
    worker = CheckSpec(kind="process", target="/run/w.pid", name="worker")
    settings = supervisor_settings(cfg, WithChecks(worker))
    assert [c.name for c in settings.checks] == ["db", "worker"]
    assert supervisor_settings(cfg, Component()).checks == cfg.checks
    assert supervisor_settings(cfg, object()).checks == cfg.checks  # no hook at all


@pytest.mark.parametrize(("component", "field", "problem"), [
    (WithChecks({"kind": "tcp"}), "checks()", "returns a list of CheckSpecs"),
    (WithChecks(CheckSpec(kind="tcp", target="a:1", name="db")), "checks()[0].name",
     "Config.checks has a check of this name"),
    (WithChecks(CheckSpec(kind="tcp", target="a:1"), CheckSpec(kind="tcp", target="a:1")),
     "checks()[1].name", "checks()[0] has this name too"),
])
def test_component_checks_are_refused_with_their_index(component: Component, field: str,
                                                       problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        component_checks(make([{**TCP, "name": "db"}]), component)
    assert info.value.field == field and problem in info.value.problem


def test_a_blocking_component_registers_checks_too() -> None:
    class Blocking(vnfha.blocking.Component):
        def checks(self) -> list[CheckSpec]:
            return [CheckSpec(kind="tcp", target="a:1")]

    with vnfha.blocking.LoopThread() as loop:
        member = vnfha.blocking.Member(make([]), Blocking(), store=vnfha.testing.MemoryStore(),
                                       loop=loop)
        assert list(member.asyncio_member.supervisor.monitor.states) == [APP_CHECK, "tcp-a:1"]
        member.stop()


# -- the running check a spec builds -------------------------------------------------------------


def test_from_spec_builds_the_check_of_each_kind(tmp_path: Path) -> None:
    clock = FakeClock()
    tcp = from_spec(CheckSpec(kind="tcp", target="[::1]:5432", name="db", timeout_s=1), clock)
    assert isinstance(tcp.check, TcpConnect) and (tcp.check.host, tcp.check.port) == ("::1", 5432)
    assert (tcp.name, tcp.kind, tcp.check.timeout_s, tcp.close) == ("db", "tcp", 1.0, None)
    pid = from_spec(CheckSpec(kind="process", target=str(os.getpid()),
                              recommended=Recovery.RESTART), clock)
    assert isinstance(pid.check, ProcessAlive) and pid.recommended is Recovery.RESTART
    pidfile = from_spec(CheckSpec(kind="process", target=str(tmp_path / "w.pid")), clock)
    assert isinstance(pidfile.check, PidfileAlive)
    grpc_check = from_spec(CheckSpec(kind="grpc-health", target="h:1", service="s"), clock)
    assert isinstance(grpc_check.check, GrpcHealth) and grpc_check.close is not None
    assert (grpc_check.check.service, grpc_check.policy.period_s) == ("s", 5.0)


async def test_a_pidfile_check_reads_the_file_at_every_run(tmp_path: Path) -> None:
    path = tmp_path / "worker.pid"
    check = PidfileAlive(str(path), name="worker")
    with pytest.raises(HealthCheckFailed, match=r"pidfile .*worker.pid: No such file"):
        await check()
    path.write_text("not a pid\n")
    with pytest.raises(HealthCheckFailed, match=r"holds no pid: b'not a pid\\n'"):
        await check()
    path.write_text(f"{os.getpid()}\n")
    await check()
    path.write_text("4194303\n")  # above any pid this test machine hands out
    with pytest.raises(HealthCheckFailed, match="process 4194303 does not exist"):
        await check()
    path.write_text(f"{os.getpid()}")  # the process is followed back
    await check()


# -- hysteresis of a configured check, on a FakeClock ----------------------------------------------


async def test_a_configured_check_fails_after_fail_after_periods_and_recovers() -> None:
    """The monitor judges a spec's check by the spec's own period and streaks, not the
    ``health_*`` fields; its faults carry the spec's recommendation."""
    clock = FakeClock()
    spec = CheckSpec(kind="tcp", target="a:1", name="db", period_s=2.0, fail_after=3,
                     recover_after=2, recommended=Recovery.FAILOVER)
    up = True
    runs: list[float] = []
    faults: list[Fault] = []

    async def probe() -> None:
        runs.append(clock.monotonic())
        if not up:
            raise HealthCheckFailed("db", "connect to a:1: Connection refused")

    async def on_fault(fault: Fault) -> None:
        faults.append(fault)

    closed = asyncio.Event()

    async def close() -> None:
        closed.set()

    built = from_spec(spec, clock)
    check = MonitoredCheck(built.name, probe, built.policy, kind=built.kind,
                           recommended=built.recommended, close=close)
    async with HealthMonitor([check], clock=clock, on_fault=on_fault) as monitor:
        await clock.advance(2.0)
        assert len(runs) == 1 and monitor.healthy
        up = False
        await clock.advance(4.0)  # two failures: not yet
        assert monitor.states["db"].failures == 2 and monitor.failing == ()
        await clock.advance(2.0)  # the third: FAILING, one fault
        assert monitor.failing == ("db",)
        assert [(f.source, f.recommended) for f in faults] == [("check:db", Recovery.FAILOVER)]
        up = True
        await clock.advance(2.0)
        assert monitor.states["db"].health is Health.FAILING  # one pass is not enough
        await clock.advance(2.0)
        assert monitor.healthy and monitor.states["db"].since == clock.monotonic()
        assert [round(t - runs[0], 6) for t in runs] == [0, 2, 4, 6, 8, 10]
    assert closed.is_set()  # the monitor closes the checks it owns


async def test_a_failing_close_is_logged_and_the_monitor_still_stops(
        caplog: pytest.LogCaptureFixture) -> None:
    async def ok() -> None:
        pass

    async def broken() -> None:
        raise OSError("channel already gone")

    policy = CheckPolicy(period_s=1, timeout_s=1)
    monitor = HealthMonitor([MonitoredCheck("a", ok, policy, close=broken),
                             MonitoredCheck("b", ok, policy)],
                            clock=FakeClock(), on_fault=lambda f: asyncio.sleep(0))
    await monitor.start()
    await asyncio.sleep(0)
    await monitor.stop()
    assert "closing health check a failed" in caplog.text


# -- docs/ladder.md: its example is a working configuration ----------------------------------------


def test_the_ladder_docs_example_configures_the_db_check(tmp_path: Path) -> None:
    text = (DOCS / "ladder.md").read_text()
    [toml] = re.findall(r"```toml\n(.*?)```", text, flags=re.DOTALL)
    path = tmp_path / "vnfha.toml"
    path.write_text(toml)
    cfg = load_config(path, environ={})
    [db] = cfg.checks
    assert (db.kind, db.name, db.target) == ("tcp", "db", "127.0.0.1:5432")
    # the worked timeline's check: every 5 s, N = 3, M = 2, with a bridge configured
    assert (db.period_s, db.fail_after, db.recover_after) == (5.0, 3, 2)
    assert cfg.bridge_endpoint is not None
    # the code example registers the same check
    [code] = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    scope: dict[str, Any] = {"vnfha": vnfha}
    exec(code, scope)  # the documentation's own example
    assert scope["Vfw"]().checks() == [db]
