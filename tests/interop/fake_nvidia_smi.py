"""A stand-in for `nvidia-smi --query-gpu=... --format=csv,noheader,nounits` on a host
with no GPU: prints 8 H200-like GPUs in nvidia-smi's own CSV shape. GPU 3 reports
"[Not Supported]" for its fan, as SXM parts do."""

import sys

VALUES = {
    "index": lambda i: str(i),
    "uuid": lambda i: f"GPU-5f1c0a3e-0000-4000-8000-00000000000{i}",
    "name": lambda i: "NVIDIA H200",
    "serial": lambda i: f"165232400{i:04d}",
    "pci.bus_id": lambda i: f"00000000:{0x18 + 0x10 * i:02X}:00.0",
    "vbios_version": lambda i: "96.00.AF.00.01",
    "driver_version": lambda i: "570.124.06",
    "utilization.gpu": lambda i: str(90 + i),
    "utilization.memory": lambda i: str(40 + i),
    "memory.used": lambda i: str(60000 + i),
    "memory.total": lambda i: "143771",
    "temperature.gpu": lambda i: str(50 + i),
    "power.draw": lambda i: f"{600 + i}.25",
    "power.limit": lambda i: "700.00",
    "clocks.sm": lambda i: "1980",
    "clocks.mem": lambda i: "3201",
    "clocks_event_reasons.active": lambda i: "0x0000000000000004" if i == 2 else "0x0000000000000000",
    "fan.speed": lambda i: "[Not Supported]",
}


def main(argv):
    query = next((a.split("=", 1)[1] for a in argv if a.startswith("--query-gpu=")), None)
    if query is None:
        print("NVIDIA-SMI stand-in: only --query-gpu is supported", file=sys.stderr)
        return 2
    fields = [f.strip() for f in query.split(",") if f.strip()]
    for i in range(8):
        print(", ".join(VALUES.get(f, lambda i: "0")(i) for f in fields))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
