"""A deterministic simulated GPU fleet: hosts, their hardware, workloads, faults and
scenarios.

Each host draws from its own `random.Random` seeded by (fleet seed, host name), and time is
always passed in, never read here: the same seed and the same sequence of timestamps give
the same readings, host by host, however many other hosts exist or are being watched.
"""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Callable
from typing import Any

from opsconsole.errors import SimError
from opsconsole.sim import hardware as hw
from opsconsole.sim.faults import FAULTS, resolve_targets
from opsconsole.sim.scenarios import SCENARIOS, Scenario

HOSTS_PER_RACK = 16
RACKS_PER_LEAF = 4
RACKS_PER_SITE = 32
"""SG1 fills first; hosts beyond 32 racks (512 hosts) go to MY1."""
SITES = ("SG1", "MY1")
KERNEL_LOG_KEEP_LINES = 5000
"""Like the kernel's ring buffer: old lines fall out; readers that fell behind skip them."""

FaultListener = Callable[["SimHost", str, bool], None]
"""Called with (host, fault name, now active) whenever a fault starts or clears."""

__all__ = ["SCENARIOS", "FaultListener", "SimFleet", "SimHost", "host_layout"]


def host_layout(index: int) -> tuple[str, str, str, str]:
    """(name, site, rack, leaf) of the index-th host: sg1-r01-n01, sixteen to a rack."""
    rack_global, node = divmod(index, HOSTS_PER_RACK)
    site_index, rack_in_site = divmod(rack_global, RACKS_PER_SITE)
    if site_index >= len(SITES):
        raise SimError(f"at most {len(SITES) * RACKS_PER_SITE * HOSTS_PER_RACK} hosts")
    site = SITES[site_index]
    rack = f"{site.lower()}-r{rack_in_site + 1:02d}"
    leaf = f"{site.lower()}-leaf-{rack_in_site // RACKS_PER_LEAF + 1:02d}"
    return f"{rack}-n{node + 1:02d}", site, rack, leaf


class SimHost:
    """One 8-GPU H200 host: hardware state, its kernel log and NVML event queue."""

    driver_version = "550.127.05"
    nvml_version = "12.550.127.05"
    cuda_driver_version = 12040
    kernel_release = "5.15.0-125-generic"
    os_name = "Ubuntu 22.04.5 LTS"

    def __init__(self, fleet: SimFleet, index: int, gpus: int, seed: int, start_ts: float):
        self.name, self.site, self.rack, self.leaf = host_layout(index)
        self.index = index
        self.fleet = fleet
        """The fleet, for tools that span hosts (`ib_write_bw` client, `mpirun`)."""
        self._listeners = fleet.listeners
        self.rng = random.Random(f"{seed}:{self.name}")
        self.fault_rng = random.Random(f"{seed}:{self.name}:faults")
        rng = self.rng
        self.now_ts = start_ts
        self.boot_ts = start_ts - rng.uniform(3, 90) * 86_400
        self.reachable = True
        self.driver_hung = False
        """While True (`driver_hang`), simulated NVML calls wait on driver_released."""
        self.driver_released = threading.Event()
        self.driver_released.set()
        self.faults: dict[str, list[dict[str, Any]]] = {}
        self.saved_workloads: dict[str, list[tuple[str, list[Any]]]] = {}
        """Workloads a workload fault (`full_load`, `job_ended`) replaced, by fault."""
        self.scenario: Scenario | None = None
        self.scenario_params: dict[str, Any] | None = None
        """This host's part in the fleet's scenario (which GPU, which port, when)."""
        self._start_ts = start_ts
        self._log_ts = start_ts
        """Time stamped on kernel lines: the latest of advance() and apply_scenario()."""
        self._scenario_active: set[tuple[str, tuple[Any, ...]]] = set()
        self.kernel_lines: list[tuple[int, float, str]] = []
        """(sequence number, seconds since boot, text), oldest first."""
        self._kernel_seq = 0
        self.nvml_events: list[tuple[int, int, int, int]] = []
        """(sequence number, GPU index, NVML event type, event data)."""
        self.rtt_ms = rng.uniform(0.25, 0.6) if self.site == "SG1" else rng.uniform(3.5, 5.0)
        self.loss_pct = 0.0
        self.inlet_c = 22.0 + rng.uniform(0.0, 4.0)
        self.job_phase_s = rng.uniform(0, 1800)
        self.gpus = self._make_gpus(gpus, rng)
        self.ib_ports = [hw.IbPort(device) for device in hw.IB_DEVICES]
        self.eth = [hw.EthInterface(name, speed) for name, speed in hw.ETH_INTERFACES]
        self.load = [0.0, 0.0, 0.0]
        self._boot_log()
        for gpu in self.gpus:  # start in thermal equilibrium, not cold
            hw.step_gpu(gpu, rng, start_ts, 0.0, self.inlet_c, self.job_phase_s)
            gpu.temp_c = hw.steady_temp_c(gpu, self.inlet_c)
        self.load = [self._load_target()] * 3

    def _make_gpus(self, count: int, rng: random.Random) -> list[hw.SimGpu]:
        roll = rng.random()
        workload = "training" if roll < 0.55 else "inference" if roll < 0.8 else "idle"
        serving = rng.randint(4, count) if workload == "inference" else count
        base_pid = rng.randrange(20_000, 400_000)
        gpus = []
        for i in range(count):
            kind = workload if i < serving else "idle"
            gpu = hw.SimGpu(
                index=i,
                uuid=f"GPU-{uuid.UUID(int=rng.getrandbits(128), version=4)}",
                serial=f"1655024{rng.randrange(10**6):06d}",
                pci_bus_id=f"00000000:{hw.HGX_PCI_BUSES[i % len(hw.HGX_PCI_BUSES)]}:00.0",
                workload=kind,
                max_draw_w=rng.uniform(640.0, 790.0),
                idle_w=rng.uniform(68.0, 90.0),
                nvlinks=[hw.NvLinkState() for _ in range(hw.GPU_NVLINKS)],
            )
            if kind == "training":
                gpu.processes = [(base_pid + i, "python3", float(rng.randrange(120_000, 136_000)))]
            elif kind == "inference":
                gpu.processes = [(base_pid, "tritonserver", float(rng.randrange(40_000, 90_000)))]
            gpus.append(gpu)
        return gpus

    def _boot_log(self) -> None:
        self.log_kernel(f"Linux version {self.kernel_release} (buildd@lcy02-amd64-001)", 0.0)
        self.log_kernel(
            f"NVRM: loading NVIDIA UNIX x86_64 Kernel Module  {self.driver_version}  "
            "Tue Oct 22 19:58:55 UTC 2024",
            11.2,
        )
        for port in self.ib_ports:
            self.log_kernel(f"mlx5_core: {port.device}: Port 1 link up", 14.8)

    # -- time ---------------------------------------------------------------------------

    def advance(self, now_ts: float) -> None:
        """Step the hardware to now_ts; a time at or before the last one changes nothing."""
        dt_s = now_ts - self.now_ts
        if dt_s <= 0:
            return
        self.now_ts = now_ts
        self._log_ts = max(self._log_ts, now_ts)
        if self.scenario is not None:
            self.apply_scenario(now_ts)
        rng = self.rng
        for gpu in self.gpus:
            hw.step_gpu(gpu, rng, now_ts, dt_s, self.inlet_c, self.job_phase_s)
        training = [g.util_gpu_pct for g in self.gpus if g.workload == "training" and not g.lost]
        traffic = 0.4 * sum(training) / (100.0 * len(self.gpus))
        for port in self.ib_ports:
            hw.step_ib_port(port, rng, dt_s, traffic)
        busy = sum(g.util_gpu_pct for g in self.gpus if not g.lost) / (100.0 * len(self.gpus))
        for iface in self.eth:
            hw.step_eth(iface, rng, dt_s, busy)
        target = self._load_target()
        for i, tau_s in enumerate((60.0, 300.0, 900.0)):
            self.load[i] += (target - self.load[i]) * min(1.0, dt_s / tau_s)

    def _load_target(self) -> float:
        busy = sum(1 for g in self.gpus if g.processes and not g.lost)
        return 0.3 + 3.5 * busy + self.rng.uniform(-0.5, 0.5)

    # -- faults -------------------------------------------------------------------------

    def inject(self, fault: str, **kw: Any) -> dict[str, Any]:
        """Start a fault now; returns its resolved targets (e.g. {"gpu": 3})."""
        kw = resolve_targets(self, fault, kw)
        active = self.faults.setdefault(fault, [])
        if kw in active and not FAULTS[fault].repeats:
            return kw
        FAULTS[fault].start(self, kw)
        if kw not in active:
            active.append(kw)
        for listener in self._listeners:
            listener(self, fault, True)
        return kw

    def clear(self, fault: str, **kw: Any) -> None:
        """End every active instance of the fault whose targets match the ones given."""
        if fault not in FAULTS:
            raise SimError(f"unknown fault {fault!r}; known faults: {', '.join(FAULTS)}")
        active = self.faults.get(fault, [])
        for instance in [i for i in active if all(i.get(k) == v for k, v in kw.items())]:
            FAULTS[fault].clear(self, instance)
            active.remove(instance)
            for listener in self._listeners:
                listener(self, fault, False)
        if not active:
            self.faults.pop(fault, None)

    def has_fault(self, fault: str) -> bool:
        return bool(self.faults.get(fault))

    def apply_scenario(self, now_ts: float) -> None:
        """Start and clear this host's scenario faults to match the time since start."""
        if self.scenario is None:
            return
        self._log_ts = max(self._log_ts, now_ts)
        wanted = {
            (name, tuple(sorted(kw.items())))
            for name, kw in self.scenario.faults_at(
                self.scenario_params or {}, now_ts - self._start_ts
            )
        }
        for name, items in sorted(wanted - self._scenario_active):
            self.inject(name, **dict(items))
        for name, items in sorted(self._scenario_active - wanted):
            self.clear(name, **dict(items))
        self._scenario_active = wanted

    # -- what the host's logs and drivers see -------------------------------------------

    def log_kernel(self, text: str, uptime_s: float | None = None) -> None:
        if uptime_s is None:
            uptime_s = self._log_ts - self.boot_ts
        self._kernel_seq += 1
        self.kernel_lines.append((self._kernel_seq, uptime_s, text))
        if len(self.kernel_lines) > KERNEL_LOG_KEEP_LINES:
            del self.kernel_lines[: len(self.kernel_lines) - KERNEL_LOG_KEEP_LINES]

    def post_nvml_event(self, gpu_index: int, event_type: int, data: int) -> None:
        seq = self.nvml_events[-1][0] + 1 if self.nvml_events else 1
        self.nvml_events.append((seq, gpu_index, event_type, data))
        del self.nvml_events[:-1000]

    def ib_port(self, device: str) -> hw.IbPort:
        return next(p for p in self.ib_ports if p.device == device)

    @property
    def power_w(self) -> float:
        """What the host draws at the wall: GPUs plus CPUs, NICs and fans."""
        return sum(g.power_w for g in self.gpus if not g.lost) + 1800.0


class SimFleet:
    """n_hosts simulated hosts laid out in racks, leafs and sites, with a scenario."""

    def __init__(
        self,
        n_hosts: int,
        seed: int,
        scenario: str = "calm",
        gpus_per_host: int = 8,
        *,
        start_ts: float,
    ):
        if scenario not in SCENARIOS:
            raise SimError(f"unknown scenario {scenario!r}; choose from {', '.join(SCENARIOS)}")
        if n_hosts < 1:
            raise SimError("a simulated fleet needs at least one host")
        if not 1 <= gpus_per_host <= len(hw.HGX_PCI_BUSES):
            raise SimError(f"gpus_per_host must be 1 to {len(hw.HGX_PCI_BUSES)}")
        self.seed = seed
        self.start_ts = start_ts
        self.scenario_name = scenario
        self.listeners: list[FaultListener] = []
        hosts = [SimHost(self, i, gpus_per_host, seed, start_ts) for i in range(n_hosts)]
        self.hosts = {host.name: host for host in hosts}
        self.scenario = SCENARIOS[scenario]
        targets = self.scenario.pick(hosts, random.Random(f"{seed}:scenario:{scenario}"))
        self._scenario_hosts = [self.hosts[name] for name in targets]
        for name, params in targets.items():
            host = self.hosts[name]
            host.scenario, host.scenario_params = self.scenario, params

    def host(self, name: str) -> SimHost:
        try:
            return self.hosts[name]
        except KeyError:
            raise SimError(f"no simulated host {name!r}") from None

    @property
    def racks(self) -> dict[str, tuple[str, str]]:
        """rack -> (site, leaf), in layout order."""
        return {h.rack: (h.site, h.leaf) for h in self.hosts.values()}

    @property
    def scenario_hosts(self) -> list[SimHost]:
        return list(self._scenario_hosts)

    def advance(self, now_ts: float) -> None:
        for host in self.hosts.values():
            host.advance(now_ts)

    def apply_scenario(self, now_ts: float) -> None:
        """Start and clear scenario faults on the hosts the scenario touches, without
        stepping anyone's hardware: cheap enough to call every second for 1,000 hosts."""
        for host in self._scenario_hosts:
            host.apply_scenario(now_ts)
