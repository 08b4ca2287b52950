"""One spelling for PCI bus ids, so NVML, nvidia-smi and kernel lines can be matched.

NVML and nvidia-smi write "00000000:3B:00.0" (8-digit domain, upper case), kernel XID
lines "0000:3b:00" (no function). Everything the agent sends uses "0000:3b:00.0".
"""

import re

_BUS_ID = re.compile(
    r"^(?:PCI:)?(?:([0-9a-fA-F]{1,8}):)?([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2})(?:\.([0-7]))?$"
)


def normalize_bus_id(text):
    """Return "dddd:bb:dd.f" in lower case, or None when `text` is no PCI address."""
    if not isinstance(text, str):
        return None
    match = _BUS_ID.match(text.strip())
    if match is None:
        return None
    domain, bus, device, function = match.groups()
    return "%04x:%02x:%02x.%s" % (
        int(domain or "0", 16) & 0xFFFF,
        int(bus, 16),
        int(device, 16),
        function or "0",
    )


NVIDIA_DRIVER_DIR = "/sys/bus/pci/drivers/nvidia"
PCI_DEVICES_DIR = "/sys/bus/pci/devices"
DISPLAY_CLASS = "0x03"  # PCI class 03xxxx: VGA (0300) or 3D controller (0302); not NVSwitch


def nvidia_gpu_bus_ids(fs):
    """Bus ids of the GPUs bound to the nvidia driver, in PCI order, which is NVML's index
    order. A GPU that fell off the bus is still bound, so its bus id is known here even
    when NVML gives it no handle. [] where sysfs cannot say."""
    found = []
    for name in fs.listdir(NVIDIA_DRIVER_DIR):
        bus = normalize_bus_id(name)
        if bus is None:
            continue
        klass = fs.read("%s/%s/class" % (PCI_DEVICES_DIR, name), 64) or ""
        if klass.strip().lower().startswith(DISPLAY_CLASS):
            found.append(bus)
    return sorted(found)
