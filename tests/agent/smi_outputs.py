# ruff: noqa: E501  (nvidia-smi rows are kept verbatim, one GPU per line)
"""nvidia-smi output in its own shape (`--format=csv,noheader,nounits`), for the parsers.

Column order is opsconsole.agent.smi.QUERY_FIELDS. Values follow what the query returns
on real parts: "[N/A]" where a feature is absent (retired pages on Ampere and newer, fans
on SXM boards), a hex bitmask for clock event reasons, MiB and W without units.
"""

H100_ROWS = """\
0, GPU-b9f9e81b-bee7-34bc-af17-132ef6592740, NVIDIA H100 80GB HBM3, 1654922006536, 00000000:18:00.0, 96.00.74.00.0D, 550.90.07, 98, 41, 61234, 81559, 54, 612.34, 700.00, 1980, 2619, 0x0000000000000000, 0, 0, 120, 0, [N/A], [N/A], [N/A], [N/A]
1, GPU-20af7308-7522-d66f-fe01-fb6f0551a4b9, NVIDIA H100 80GB HBM3, 1654922006537, 00000000:2A:00.0, 96.00.74.00.0D, 550.90.07, 97, 40, 61002, 81559, 57, 655.01, 700.00, 1755, 2619, 0x0000000000000004, 2, 0, 311, 0, [N/A], [N/A], [N/A], [N/A]
"""
LOST_ROWS = """\
2, GPU-5f1c0a3e-0000-4000-8000-000000000002, NVIDIA H100 80GB HBM3, 1654922006538, 00000000:3B:00.0, 96.00.74.00.0D, 550.90.07, [GPU requires reset], [GPU requires reset], [GPU requires reset], 81559, [GPU requires reset], [GPU requires reset], [GPU requires reset], [GPU requires reset], [GPU requires reset], [GPU requires reset], [GPU requires reset], [GPU requires reset], [GPU requires reset], [GPU requires reset], [N/A], [N/A], [N/A], [N/A]
3, GPU-5f1c0a3e-0000-4000-8000-000000000003, NVIDIA H100 80GB HBM3, [Unknown Error], 00000000:4C:00.0, [Unknown Error], 550.90.07, [Unknown Error], [Unknown Error], [Unknown Error], [Unknown Error], [Unknown Error], [Unknown Error], [Unknown Error], [Unknown Error], [Unknown Error], [Unknown Error], [Unknown Error], [Unknown Error], [Unknown Error], [Unknown Error], [Unknown Error], [Unknown Error], [Unknown Error], [Unknown Error]
"""
V100_ROW = """\
0, GPU-6a5b2c1d-1111-2222-3333-444455556666, Tesla V100-SXM2-32GB, 0323718013562, 00000000:06:00.0, 88.00.80.00.04, 470.223.02, 0, 0, 0, 32510, 36, 42.17, 300.00, 135, 877, 0x0000000000000001, 0, 0, 0, 1, 2, 1, No, [Not Supported]
"""
REMAP_ROWS = """\
GPU-b9f9e81b-bee7-34bc-af17-132ef6592740, 0, 0, 0, 0
GPU-20af7308-7522-d66f-fe01-fb6f0551a4b9, 3, 1, 1, 0
"""
DRIVER_GONE = (
    "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
    "Make sure that the latest NVIDIA driver is installed and running.\n"
)
FELL_OFF = "Unable to determine the device handle for GPU0000:5D:00.0: Unknown Error\n"
REFUSED = 'Field "clocks_event_reasons.active" is not a valid field to query.\n\n'
