from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from opsconsole.agent import smi
from opsconsole.agent.smi import parse_query_csv
from tests.agent import smi_outputs as out


def test_every_column_is_parsed_from_real_shaped_rows():
    first, second = parse_query_csv(out.H100_ROWS)
    assert first["index"] == 0 and first["uuid"].startswith("GPU-b9f9")
    assert first["state"] == "ok"
    assert (first["util_gpu_pct"], first["mem_used_mib"], first["power_w"]) == (98, 61234, 612.34)
    assert first["power_limit_w"] == 700 and first["sm_clock_mhz"] == 1980
    assert first["ecc_aggregate_corrected"] == 120
    assert second["clock_event_reasons"] == 4  # hex bitmask
    assert second["ecc_volatile_corrected"] == 2


def test_na_and_not_supported_are_null_never_zero():
    (h100,) = parse_query_csv(out.H100_ROWS.splitlines()[0])
    for field in ("fan_pct", "retired_pages_sbe", "retired_pages_pending", "pcie_replay"):
        assert h100[field] is None and h100["na"][field] == "not_supported"
    (v100,) = parse_query_csv(out.V100_ROW)
    assert (v100["retired_pages_sbe"], v100["retired_pages_dbe"]) == (2, 1)
    assert v100["retired_pages_pending"] is False
    assert v100["fan_pct"] is None and v100["na"]["fan_pct"] == "not_supported"


def test_reset_required_and_unknown_error_mark_the_gpu_lost():
    reset, unknown = parse_query_csv(out.LOST_ROWS)
    for gpu in (reset, unknown):
        assert gpu["state"] == "lost"
        assert gpu["temp_c"] is None and gpu["na"]["temp_c"] == "lost"
        assert set(gpu["na"].values()) == {"lost"}
    assert reset["mem_total_mib"] == 81559  # what still reads is kept


def test_remapped_rows_are_merged_by_uuid():
    samples = smi.merge_remapped_rows(parse_query_csv(out.H100_ROWS), out.REMAP_ROWS)
    assert (samples[0]["remap_corrected"], samples[0]["remap_pending"]) == (0, False)
    second = samples[1]
    assert (second["remap_corrected"], second["remap_uncorrected"]) == (3, 1)
    assert second["remap_pending"] is True and second["remap_failed"] is False
    assert "remap_pending" not in second["na"]
    yes_no = "GPU-b9f9e81b-bee7-34bc-af17-132ef6592740, 0, 0, Yes, No\n"
    (merged, _) = smi.merge_remapped_rows(parse_query_csv(out.H100_ROWS), yes_no)
    assert merged["remap_pending"] is True


def test_inventory_and_driver_version():
    inventory = smi.inventory_from_csv(out.H100_ROWS)
    assert inventory[1] == {
        "index": 1,
        "uuid": "GPU-20af7308-7522-d66f-fe01-fb6f0551a4b9",
        "name": "NVIDIA H100 80GB HBM3",
        "serial": "1654922006537",
        "pci_bus_id": "0000:2a:00.0",
        "vbios": "96.00.74.00.0D",
        "memory_total_mib": 81559.0,
    }
    assert smi.driver_version_from_csv(out.H100_ROWS) == "550.90.07"
    assert smi.inventory_from_csv(out.LOST_ROWS)[1]["serial"] is None


def test_error_lines_are_explained_and_skipped():
    assert parse_query_csv(out.DRIVER_GONE) == []
    assert smi.error_detail(out.DRIVER_GONE).startswith("NVIDIA-SMI has failed")
    mixed = out.FELL_OFF + out.H100_ROWS
    assert len(parse_query_csv(mixed)) == 2
    assert "Unable to determine the device handle" in smi.error_detail(mixed)
    assert smi.refused_field(out.REFUSED)


def test_commands_use_real_query_names():
    argv = smi.smi_command()
    assert argv[0] == "nvidia-smi" and argv[-1] == "--format=csv,noheader,nounits"
    assert "clocks_event_reasons.active" in argv[1]
    assert "clocks_throttle_reasons.active" in smi.smi_command(legacy=True)[1]
    assert smi.remap_command()[1].startswith("--query-remapped-rows=gpu_uuid,")


@given(st.text())
def test_parsers_never_raise_on_arbitrary_text(text):
    parse_query_csv(text)
    smi.inventory_from_csv(text)
    smi.merge_remapped_rows(parse_query_csv(text), text)
    smi.error_detail(text)


@given(st.lists(st.text(alphabet=st.characters(blacklist_characters=",\n\r"), max_size=12),
                min_size=len(smi.QUERY_FIELDS), max_size=len(smi.QUERY_FIELDS)),
       st.integers(min_value=0, max_value=64))  # fmt: skip
def test_rows_of_odd_cells_parse_without_raising(cells, index):
    row = ", ".join([str(index), *cells[1:]])
    for sample in parse_query_csv(row):
        assert sample["index"] == index
        for field, reason in sample["na"].items():
            assert sample[field] is None and reason
