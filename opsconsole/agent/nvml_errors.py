"""How an NVML failure reads on the wire, following nvitop's rules.

A missing feature is `not_supported` (never a 0 that looks like a healthy reading); a GPU
that fell off the bus is `lost` for that GPU only; anything else is `error: <text>`.
Codes are compared by number, so a simulated NVML module needs no pynvml classes.
"""

NVML_SUCCESS = 0
NOT_SUPPORTED_CODES = (3, 13)  # NVML_ERROR_NOT_SUPPORTED, NVML_ERROR_FUNCTION_NOT_FOUND
LOST_CODES = (15, 16, 999)  # NVML_ERROR_GPU_IS_LOST, NVML_ERROR_RESET_REQUIRED, NVML_ERROR_UNKNOWN
FUNCTION_NOT_FOUND = 13  # the binding has it, the installed driver does not


class GpuLost(Exception):
    """Raised inside one GPU's readings to abandon the rest of them."""


def error_text(exc):
    """str(exc), guarded: pynvml's __str__ may itself call into the library."""
    try:
        text = str(exc)
    except Exception:
        text = ""
    return (text or type(exc).__name__)[:120]


def classify(exc):
    """Read an NVML exception as "not_supported", "lost" or "error: <text>"."""
    if isinstance(exc, AttributeError):  # an older pynvml without the function
        return "not_supported"
    code = getattr(exc, "value", None)
    if code in NOT_SUPPORTED_CODES:
        return "not_supported"
    if code in LOST_CODES:
        return "lost"
    return "error: " + error_text(exc)


def code_of(exc):
    return getattr(exc, "value", None)


def as_text(value):
    """NVML strings arrive as bytes or str depending on the pynvml version."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    value = value.replace("\x00", "").strip()
    return value or None


_VALUE_MEMBERS = {
    0: "dVal",
    1: "uiVal",
    2: "ulVal",
    3: "ullVal",
    4: "sllVal",
    5: "siVal",
    6: "usVal",
}


def field_value(field):
    """The number in an nvmlFieldValue_t; raises like a call would when it carries an error."""
    ret = getattr(field, "nvmlReturn", NVML_SUCCESS)
    if ret != NVML_SUCCESS:
        error = Exception("NVML field error %s" % ret)
        error.value = ret
        raise error
    member = _VALUE_MEMBERS.get(getattr(field, "valueType", 1), "uiVal")
    return getattr(field.value, member)
