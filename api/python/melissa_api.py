"""Melissa client API for Python (ctypes over libmelissa-api.so, numpy arrays).

    import melissa_api
    melissa_api.init("temperature", local_size, comm)   # comm: an mpi4py communicator, or None
    melissa_api.send("temperature", values)             # a numpy array of local_size values
    melissa_api.finalize()

Without `comm` (or with comm=None) the field is initialized without MPI: this
process owns the whole field and no MPI call is made. mpi4py is optional and
only touched through the communicator you pass.

Errors raise melissa_api.Error (a RuntimeError) with the library's message and
`status` (a MELISSA_ERR_* code). Fatal errors (server unreachable, field
refused, connection lost) end the process unless MELISSA_ON_ERROR=return.

The library is found through, in order: the MELISSA_API_LIB environment
variable (a path to libmelissa-api.so), a libmelissa-api.so next to this file,
the library directory it was installed into, and the system's library path.
"""

import ctypes
import ctypes.util
import os

import numpy as np

MELISSA_OK = 0
MELISSA_ERR_ENV = -1
MELISSA_ERR_CONNECT = -2
MELISSA_ERR_REFUSED = -3
MELISSA_ERR_FIELD = -4
MELISSA_ERR_ORDER = -5
MELISSA_ERR_IO = -6
MELISSA_ERR_ARG = -7

# Replaced by meson when the module is installed; left as is in the source tree.
_INSTALLED_LIBDIR = "@MELISSA_API_LIBDIR@"
_LIB_NAME = "libmelissa-api.so"


class Error(RuntimeError):
    """A Melissa API call failed; `status` is the MELISSA_ERR_* code."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def _candidates():
    explicit = os.environ.get("MELISSA_API_LIB")
    if explicit:
        yield explicit
        return  # an explicit choice that fails must not silently fall back
    here = os.path.dirname(os.path.abspath(__file__))
    yield os.path.join(here, _LIB_NAME)
    if not _INSTALLED_LIBDIR.startswith("@"):
        yield os.path.join(_INSTALLED_LIBDIR, _LIB_NAME)
    found = ctypes.util.find_library("melissa-api")
    if found:
        yield found
    yield _LIB_NAME  # LD_LIBRARY_PATH and the loader cache


def _load():
    tried = []
    for path in _candidates():
        if os.path.sep in path and not os.path.exists(path):
            tried.append(path + " (missing)")
            continue
        try:
            # RTLD_GLOBAL: Open MPI's plugins resolve symbols of libmpi, which
            # this library pulls in, in the global namespace.
            return ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
        except OSError as e:
            tried.append(f"{path} ({e})")
    raise ImportError("melissa_api: cannot load libmelissa-api.so; tried: " + "; ".join(tried)
                      + ". Set MELISSA_API_LIB to its path.")


_lib = _load()
_lib.melissa_init_f.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int]
_lib.melissa_init_f.restype = ctypes.c_int
_lib.melissa_init_no_mpi.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
_lib.melissa_init_no_mpi.restype = ctypes.c_int
_lib.melissa_send.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
_lib.melissa_send.restype = ctypes.c_int
_lib.melissa_send_float.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
_lib.melissa_send_float.restype = ctypes.c_int
_lib.melissa_finalize.argtypes = []
_lib.melissa_finalize.restype = ctypes.c_int
_lib.melissa_get_local_size.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_size_t)]
_lib.melissa_get_local_size.restype = ctypes.c_int
_lib.melissa_last_error.argtypes = []
_lib.melissa_last_error.restype = ctypes.c_char_p
_lib.melissa_get_sim_id.restype = ctypes.c_int
_lib.melissa_get_attempt.restype = ctypes.c_int


def last_error():
    """The message of the last error ("" if none)."""
    return (_lib.melissa_last_error() or b"").decode("utf-8", "replace")


def _check(status):
    if status != MELISSA_OK:
        raise Error(status, last_error())


def _name(field_name):
    if not isinstance(field_name, str):
        raise TypeError(f"melissa_api: field name must be a str, not {type(field_name).__name__}")
    return field_name.encode("utf-8")


def init(field_name, local_size, comm=None):
    """Declares a field; collective over `comm` (an mpi4py communicator).

    With comm=None the process owns the whole field (`local_size` values) and
    no MPI call is made."""
    local_size = int(local_size)
    if local_size < 0:
        raise ValueError(f"melissa_api.init: local_size {local_size} is negative")
    if comm is None:
        _check(_lib.melissa_init_no_mpi(_name(field_name), local_size))
    else:
        # py2f() gives the Fortran handle, which every MPI can turn back into
        # its C handle (MPI_Comm_f2c) whatever MPI_Comm is in C.
        _check(_lib.melissa_init_f(_name(field_name), local_size, comm.py2f()))
    _local_sizes[field_name] = local_size


# Local sizes given to init(), to check arrays before their pointer goes to C.
_local_sizes = {}


def local_size(field_name):
    """The local size given to init() for this field."""
    n = ctypes.c_size_t()
    _check(_lib.melissa_get_local_size(_name(field_name), ctypes.byref(n)))
    return n.value


def send(field_name, values):
    """Sends the next time step: this rank's local part, local_size values.

    float32 arrays are sent as they are; anything else is converted to
    float64 (the library converts to float32 for the wire). Blocks while the
    server has granted no credit."""
    name = _name(field_name)
    # Unknown fields and calls out of order are reported by the library itself.
    expected = _local_sizes.get(field_name)
    array = np.asarray(values)
    if array.dtype != np.float32:
        array = np.asarray(array, dtype=np.float64)
    array = np.ascontiguousarray(array).reshape(-1)
    if expected is not None and array.size != expected:
        raise Error(MELISSA_ERR_ARG, f"melissa_api.send: field '{field_name}' has local size "
                                     f"{expected}, got {array.size} values")
    pointer = array.ctypes.data_as(ctypes.c_void_p)
    if array.dtype == np.float32:
        _check(_lib.melissa_send_float(name, pointer))
    else:
        _check(_lib.melissa_send(name, pointer))


def finalize():
    """Waits until the server has stored every step, then disconnects."""
    _check(_lib.melissa_finalize())


def sim_id():
    """The simulation id (MELISSA_SIM_ID), -1 before the first init."""
    return _lib.melissa_get_sim_id()


def attempt():
    """The attempt number (MELISSA_ATTEMPT), -1 before the first init."""
    return _lib.melissa_get_attempt()
