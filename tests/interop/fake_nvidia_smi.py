"""A stand-in for nvidia-smi on a host with no GPU: answers `--query-gpu=...` and
`--query-remapped-rows=...` with `--format=csv,noheader,nounits` for 8 H200-like GPUs in
nvidia-smi's own CSV shape. Fans are "[Not Supported]" as on SXM parts; GPU 2 is power
capped; GPU 5 has one uncorrected volatile ECC error and a pending row remap."""

import sys

GPUS = 8


def uuid(i):
    return f"GPU-5f1c0a3e-0000-4000-8000-{i:012d}"


GPU_VALUES = {
    "index": lambda i: str(i),
    "uuid": uuid,
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
    "clocks_event_reasons.active": lambda i: f"0x{4 if i == 2 else 0:016x}",
    "ecc.errors.corrected.volatile.total": lambda i: "0",
    "ecc.errors.uncorrected.volatile.total": lambda i: "1" if i == 5 else "0",
    "ecc.errors.corrected.aggregate.total": lambda i: "12",
    "ecc.errors.uncorrected.aggregate.total": lambda i: "1" if i == 5 else "0",
    "retired_pages.single_bit_ecc.count": lambda i: "[N/A]",
    "retired_pages.double_bit.count": lambda i: "[N/A]",
    "retired_pages.pending": lambda i: "[N/A]",
    "fan.speed": lambda i: "[Not Supported]",
}
REMAP_VALUES = {
    "gpu_uuid": uuid,
    "remapped_rows.correctable": lambda i: "0",
    "remapped_rows.uncorrectable": lambda i: "1" if i == 5 else "0",
    "remapped_rows.pending": lambda i: "1" if i == 5 else "0",
    "remapped_rows.failure": lambda i: "0",
}


def main(argv):
    for option, values in (("--query-gpu=", GPU_VALUES), ("--query-remapped-rows=", REMAP_VALUES)):
        query = next((a[len(option) :] for a in argv if a.startswith(option)), None)
        if query is None:
            continue
        fields = [f.strip() for f in query.split(",") if f.strip()]
        unknown = [f for f in fields if f not in values]
        if unknown:
            print(f'Field "{unknown[0]}" is not a valid field to query.', file=sys.stderr)
            return 2
        for i in range(GPUS):
            print(", ".join(values[f](i) for f in fields))
        return 0
    print("nvidia-smi stand-in: only --query-gpu and --query-remapped-rows", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
