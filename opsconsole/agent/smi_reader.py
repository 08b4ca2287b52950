"""The agent's nvidia-smi mode: the query of `smi.py`, run under the driver watchdog.

Used only when NVML cannot start. nvidia-smi costs tens of milliseconds of CPU per run,
so the slow-changing remapped-rows query runs once a minute, not every sample.

The fields are probed once (`nvidia-smi --help-query-gpu`): the query asks only for those
this driver knows and is read by its header, so a driver that lacks a field reports that
reading as not supported instead of refusing the whole query. Where the probe gives no
list, the fixed query of smi.py is used (with its pre-535 spelling when refused). A GPU
nvidia-smi cannot get a handle for is reported lost, under the identity it had.
"""

import time

from . import smi
from .nvml_sample import empty_gpu

MAX_DETAIL = 120


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
        self._fields = None  # the probed field list; None: not probed yet, []: no list
        self._remap_text = ""
        self._remap_at = None
        self._inventory = []
        self.last_output = ""

    def _run(self, argv):
        timeout_s = self._watchdog.timeout_s or 10.0
        return self._watchdog.call(self._run_command, argv, timeout_s)

    def probe(self):
        """The fields this nvidia-smi can query, asked once; [] when it gives no list."""
        if self._fields is None:
            rc, out, _ = self._run(smi.help_query_command())
            names = smi.query_names(out) if rc == 0 else set()
            self._fields = smi.probed_fields(names) if "index" in names else []
        return self._fields

    def _argv(self):
        fields = self.probe()
        return smi.query_command(fields) if fields else smi.smi_command(self._legacy)

    def query(self):
        """Run the GPU query; return its stdout. Raises SmiUnavailable or DriverUnresponsive."""
        rc, out, err = self._run(self._argv())
        refused = smi.refused_name(out + err) if rc != 0 else None
        if refused is not None:
            if self._fields and refused in self._fields and refused != "index":
                self._fields.remove(refused)  # listed by --help-query-gpu, refused anyway
            elif not self._fields:
                self._legacy = True
            rc, out, err = self._run(self._argv())
        self.last_output = out
        if not smi.parse_rows(out) and not smi.lost_bus_ids(out + err):
            raise SmiUnavailable(_reason(rc, out, err))
        return out

    def sample_gpus(self):
        """GpuSample dicts for every GPU nvidia-smi lists, remapped rows merged in, and
        a lost one for each GPU it could not get a handle for."""
        output = self.query()
        samples = smi.parse_query_csv(output)
        now = self._clock()
        if self._remap_at is None or now - self._remap_at >= self._remap_every_s:
            self._remap_at = now
            rc, out, _ = self._run(smi.remap_command())
            self._remap_text = out if rc == 0 else ""
        samples = smi.merge_remapped_rows(samples, self._remap_text)
        listed = {sample["index"] for sample in samples}
        for gpu in self._lost(output):
            if gpu["index"] not in listed:
                samples.append(
                    empty_gpu(gpu["index"], gpu.get("uuid"), "lost", "lost", gpu.get("pci_bus_id"))
                )
        samples.sort(key=lambda sample: sample["index"])
        return samples

    def _lost(self, output):
        """Inventory entries of the GPUs the output names as lost (by bus id)."""
        lost = set(smi.lost_bus_ids(output))
        return [gpu for gpu in self._inventory if gpu.get("pci_bus_id") in lost]

    def inventory(self):
        """Inventory from the most recent query (run one first); a GPU lost now keeps
        the identity an earlier inventory gave it."""
        inventory = smi.inventory_from_csv(self.last_output)
        listed = {gpu["index"] for gpu in inventory}
        inventory += [
            dict(gpu) for gpu in self._lost(self.last_output) if gpu["index"] not in listed
        ]
        inventory.sort(key=lambda gpu: gpu["index"])
        self._inventory = inventory
        return [dict(gpu) for gpu in inventory]

    def host_facts(self):
        return {
            "driver_version": smi.driver_version_from_csv(self.last_output),
            "nvml_version": None,
            "cuda_version": None,
        }


def _reason(rc, out, err):
    """One short sentence for the operator: nvidia-smi's own error line where it printed
    one, else its first line of stderr, else what it did; never raw CSV."""
    detail = smi.error_detail(out + "\n" + err)
    if not detail:
        first = (err.strip().splitlines() or [""])[0].strip()
        detail = first or "exited %d with no GPU rows" % rc
    detail = detail[:MAX_DETAIL]
    if not detail.startswith(smi.NVIDIA_SMI):
        detail = "%s: %s" % (smi.NVIDIA_SMI, detail)
    return detail
