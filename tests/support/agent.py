"""The files a simulated host shows the agent (hostname, kernel, OS, load)."""

from __future__ import annotations

HOST_FILES = {
    "/proc/sys/kernel/hostname": "sg1-r01-n01",
    "/proc/sys/kernel/osrelease": "5.15.0-105-generic",
    "/etc/os-release": 'NAME="Ubuntu"\nPRETTY_NAME="Ubuntu 22.04.4 LTS"',
    "/proc/loadavg": "12.52 11.58 10.59 3/1467 123456",
    "/proc/4242/comm": "python3",
    "/sys/class/infiniband/mlx5_0/ports/1/state": "4: ACTIVE",
    "/sys/class/infiniband/mlx5_0/ports/1/phys_state": "5: LinkUp",
    "/sys/class/infiniband/mlx5_0/ports/1/rate": "400 Gb/sec (4X NDR)",
    "/sys/class/infiniband/mlx5_0/ports/1/link_layer": "InfiniBand",
    "/sys/class/infiniband/mlx5_0/ports/1/counters/symbol_error": "0",
    "/sys/class/infiniband/mlx5_0/ports/1/counters/link_downed": "1",
    "/sys/class/net/ens1f0/operstate": "up",
    "/sys/class/net/ens1f0/speed": "100000",
    "/sys/class/net/ens1f0/statistics/rx_errors": "0",
}
