"""The agent's nvidia-smi mode: the query of `smi.py`, run under the driver watchdog.

Used only when pynvml cannot start. nvidia-smi costs tens of milliseconds of CPU per run,
so the slow-changing remapped-rows query runs once a minute, not every sample.
"""

import time

from . import smi


class SmiUnavailable(Exception):
    """nvidia-smi is missing or printed no GPU rows; the message says why."""


class SmiReader:
    """Runs nvidia-smi through `watchdog` and keeps the last remapped-rows answer."""

    def __init__(self, run_command, watchdog, remap_every_s=60.0, clock=time.monotonic):
        self._run_command = run_command
        self._watchdog = watchdog
        self._remap_every_s = remap_every_s
        self._clock = clock
        self._legacy = False
        self._remap_text = ""
        self._remap_at = None
        self.last_output = ""

    def _run(self, argv):
        timeout_s = self._watchdog.timeout_s or 10.0
        return self._watchdog.call(self._run_command, argv, timeout_s)

    def query(self):
        """Run the GPU query; return its stdout. Raises SmiUnavailable or DriverUnresponsive."""
        rc, out, err = self._run(smi.smi_command(self._legacy))
        if rc != 0 and not self._legacy and smi.refused_field(out + err):
            self._legacy = True
            rc, out, err = self._run(smi.smi_command(True))
        self.last_output = out
        if not smi.parse_rows(out):
            detail = smi.error_detail(out + "\n" + err) or (err.strip() or out.strip())[:200]
            if not detail.startswith(smi.NVIDIA_SMI):
                detail = "%s: %s" % (smi.NVIDIA_SMI, detail or "exited %d with no GPU rows" % rc)
            raise SmiUnavailable(detail)
        return out

    def sample_gpus(self):
        """GpuSample dicts for every GPU nvidia-smi lists, remapped rows merged in."""
        samples = smi.parse_query_csv(self.query())
        now = self._clock()
        if self._remap_at is None or now - self._remap_at >= self._remap_every_s:
            self._remap_at = now
            rc, out, _ = self._run(smi.remap_command())
            self._remap_text = out if rc == 0 else ""
        return smi.merge_remapped_rows(samples, self._remap_text)

    def inventory(self):
        """Inventory from the most recent query (run one first)."""
        return smi.inventory_from_csv(self.last_output)

    def host_facts(self):
        return {
            "driver_version": smi.driver_version_from_csv(self.last_output),
            "nvml_version": None,
            "cuda_version": None,
        }
