"""The simulated fleet: a deterministic world of H200 hosts (`world.SimFleet`), a pynvml
stand-in and virtual sysfs fed to the real agent code, and SSH servers on loopback
(`server.SimServer`, `opsconsole sim serve`). See ARCHITECTURE.md for where it sits."""
