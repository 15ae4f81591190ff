/*
 * The system calls of LinuxPort, as METH_FASTCALL functions.
 *
 * Struct layouts and request numbers live in the cffi module (_abi); this module only crosses
 * the syscall boundary, taking addresses as integers. A cffi call costs ~0.3 us of conversion on
 * the machines we measured, more than the ioctl itself, so the hot path avoids it.
 *
 * The GIL is held only around the KFD requests that return at once; releasing and re-taking it
 * costs ~0.2 us, more than a short ioctl. Every other request runs with the GIL released.
 *
 *   ioctl(fd, request, arg_addr) -> 0 or the positive errno (EINTR/EAGAIN retried, as libhsakmt;
 *     an exception a Python signal handler raises on EINTR propagates)
 *   ioctl_checked(fd, request, arg_addr, on_error) -> None; calls on_error(errno) on failure
 *   ioctl_loop(fd, request, arg_addr, n) -> errno of the last call (the C floor for benchmarks)
 *   mmap(addr, length, prot, flags, fd, offset) -> address; raises OSError
 *   munmap(addr, length), mprotect(addr, length, prot) -> raise OSError
 *   store64(addr, value), store32(addr, value): release stores (a doorbell ring), fenced for
 *     write-combined and uncached mappings (VRAM through the BAR, the doorbell page)
 *   load64(addr), load32(addr): acquire loads, likewise fenced
 *   cas64(addr, expected, desired), cas32(...) -> the value found (== expected on success):
 *     a real compare-and-swap, so simulated GPU atomics are atomic against CPU atomics too
 *   fetch_add64(addr, value), fetch_add32(addr, value) -> old value
 *   wait_value(addr, width, mask, ref, cond, timeout_ns) -> value: poll until
 *     (value & mask) <cond> ref (cond 0 always, 1 <, 2 <=, 3 ==, 4 !=, 5 >=, 6 > on the
 *     signed 64-bit value; unsigned for width 4) or the timeout, without holding the GIL
 *   device_poll(addr, old, timeout_ns) -> value: poll a 64-bit word until it differs from
 *     `old` or the timeout passes, yielding the CPU, without holding the GIL; for a thread of
 *     an in-process device model (the simulated GPU) waiting for a doorbell, see "GIL
 *     hand-off" below
 *   device_running(delta): such a thread starts (+1) or stops (-1) running Python
 *
 * GIL hand-off. A host thread that waits for a value an in-process device thread writes, and
 * that device thread, pass the GIL back and forth once per round trip. Taking a GIL its holder
 * is about to release costs a futex sleep and wake-up (~20 us each way here), more than the
 * work itself. So each side waits, spinning without the GIL for at most HANDOFF_NS, until the
 * other has let go: a host's wait_value that succeeded waits while device threads still run
 * Python (they are finishing the turn that wrote the value); a device_poll that saw a doorbell
 * waits until a host thread is inside wait_value (the host has finished its submit). Without
 * device threads (real hardware) both counters stay 0 and nothing waits.
 *   cas_many(base, offsets, expected, desired, found, width) -> failures: one CAS per entry
 *     (numpy buffers: offsets uint64, the others uint32/uint64 by width); found[i] receives
 *     the value seen, == expected[i] where the swap happened
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sched.h>
#include <sys/types.h>
#include <time.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

/* KFD requests that return at once (no queue map/unmap, no page-table update, no wait): the
 * GIL stays held for them, since releasing and re-taking it costs more than the call. Every
 * other request, and any request that is not KFD's ('K'), may sleep in the driver (HWS queue
 * remaps for UPDATE_QUEUE / SET_CU_MASK, VM set-up for ACQUIRE_VM, the debugger API, ...), so
 * it runs with the GIL released. */
static int returns_at_once(unsigned long request)
{
    unsigned int type = (request >> 8) & 0xFF, nr = request & 0xFF;
    if (type != 'K')
        return 0;
    switch (nr) {
    case 0x01: /* GET_VERSION */
    case 0x05: /* GET_CLOCK_COUNTERS */
    case 0x06: /* GET_PROCESS_APERTURES */
    case 0x09: /* DESTROY_EVENT */
    case 0x0A: /* SET_EVENT */
    case 0x0B: /* RESET_EVENT */
    case 0x14: /* GET_PROCESS_APERTURES_NEW */
    case 0x23: /* AVAILABLE_MEMORY */
        return 1;
    default:
        return 0;
    }
}

/* One ioctl, retried on EINTR and EAGAIN as libhsakmt's kmtIoctl does. Returns 0, the positive
 * errno, or -1 with a Python exception set: on EINTR the Python signal handlers run first (as
 * CPython does for its own system calls, PEP 475), so Ctrl-C or pytest-timeout's SIGALRM
 * interrupt a request that keeps being interrupted, e.g. an infinite WAIT_EVENTS. */
static int call_ioctl(int fd, unsigned long request, uint64_t arg)
{
    int quick = returns_at_once(request);
    for (;;) {
        int r, err;
        if (quick) {
            r = ioctl(fd, request, (void *)(uintptr_t)arg);
            err = errno;
        } else {
            Py_BEGIN_ALLOW_THREADS
            r = ioctl(fd, request, (void *)(uintptr_t)arg);
            err = errno;
            Py_END_ALLOW_THREADS
        }
        if (r != -1)
            return 0;
        if (err == EINTR) {
            if (PyErr_CheckSignals() < 0)
                return -1;
            continue;
        }
        if (err != EAGAIN)
            return err;
    }
}

static int parse_u64(PyObject *o, uint64_t *out)
{
    unsigned long long v = PyLong_AsUnsignedLongLong(o);
    if (v == (unsigned long long)-1 && PyErr_Occurred())
        return -1;
    *out = (uint64_t)v;
    return 0;
}

static int parse_ioctl_args(PyObject *const *args, int *fd, unsigned long *req, uint64_t *arg)
{
    long f = PyLong_AsLong(args[0]);
    if (f == -1 && PyErr_Occurred())
        return -1;
    unsigned long r = PyLong_AsUnsignedLong(args[1]);
    if (r == (unsigned long)-1 && PyErr_Occurred())
        return -1;
    if (parse_u64(args[2], arg) < 0)
        return -1;
    *fd = (int)f;
    *req = r;
    return 0;
}

static PyObject *py_ioctl(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    int fd;
    unsigned long req;
    uint64_t arg;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "ioctl(fd, request, arg_addr)");
        return NULL;
    }
    if (parse_ioctl_args(args, &fd, &req, &arg) < 0)
        return NULL;
    int err = call_ioctl(fd, req, arg);
    if (err < 0)
        return NULL;
    return PyLong_FromLong(err);
}

static PyObject *py_ioctl_checked(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    int fd;
    unsigned long req;
    uint64_t arg;
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "ioctl_checked(fd, request, arg_addr, on_error)");
        return NULL;
    }
    if (parse_ioctl_args(args, &fd, &req, &arg) < 0)
        return NULL;
    int err = call_ioctl(fd, req, arg);
    if (err < 0)
        return NULL;
    if (err == 0)
        Py_RETURN_NONE;
    PyObject *code = PyLong_FromLong(err);
    if (code == NULL)
        return NULL;
    PyObject *res = PyObject_CallOneArg(args[3], code);
    Py_DECREF(code);
    return res;
}

static PyObject *py_ioctl_loop(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    int fd;
    unsigned long req;
    uint64_t arg;
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "ioctl_loop(fd, request, arg_addr, n)");
        return NULL;
    }
    if (parse_ioctl_args(args, &fd, &req, &arg) < 0)
        return NULL;
    long n = PyLong_AsLong(args[3]);
    if (n == -1 && PyErr_Occurred())
        return NULL;
    int last = 0;
    Py_BEGIN_ALLOW_THREADS
    for (long i = 0; i < n; i++)
        last = ioctl(fd, req, (void *)(uintptr_t)arg) == -1 ? errno : 0;
    Py_END_ALLOW_THREADS
    return PyLong_FromLong(last);
}

static PyObject *py_mmap(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    uint64_t addr, length, offset;
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError, "mmap(addr, length, prot, flags, fd, offset)");
        return NULL;
    }
    if (parse_u64(args[0], &addr) < 0 || parse_u64(args[1], &length) < 0)
        return NULL;
    long prot = PyLong_AsLong(args[2]);
    long flags = PyLong_AsLong(args[3]);
    long fd = PyLong_AsLong(args[4]);
    if (PyErr_Occurred() || parse_u64(args[5], &offset) < 0)
        return NULL;
    void *p;
    Py_BEGIN_ALLOW_THREADS
    p = mmap((void *)(uintptr_t)addr, (size_t)length, (int)prot, (int)flags, (int)fd,
             (off_t)offset);
    Py_END_ALLOW_THREADS
    if (p == MAP_FAILED)
        return PyErr_SetFromErrno(PyExc_OSError);
    return PyLong_FromUnsignedLongLong((unsigned long long)(uintptr_t)p);
}

static PyObject *py_munmap(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    uint64_t addr, length;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "munmap(addr, length)");
        return NULL;
    }
    if (parse_u64(args[0], &addr) < 0 || parse_u64(args[1], &length) < 0)
        return NULL;
    if (munmap((void *)(uintptr_t)addr, (size_t)length) == -1)
        return PyErr_SetFromErrno(PyExc_OSError);
    Py_RETURN_NONE;
}

static PyObject *py_mprotect(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    uint64_t addr, length;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "mprotect(addr, length, prot)");
        return NULL;
    }
    if (parse_u64(args[0], &addr) < 0 || parse_u64(args[1], &length) < 0)
        return NULL;
    long prot = PyLong_AsLong(args[2]);
    if (prot == -1 && PyErr_Occurred())
        return NULL;
    if (mprotect((void *)(uintptr_t)addr, (size_t)length, (int)prot) == -1)
        return PyErr_SetFromErrno(PyExc_OSError);
    Py_RETURN_NONE;
}

/* On x86-64 a plain release store or acquire load is ordered for write-back memory only:
 * stores to write-combined memory (a ring or signal in VRAM mapped through the BAR) may pass
 * it, and the doorbell page is uncached. ROCr's atomic helpers put an sfence before every
 * release store and an lfence after every acquire load for this reason (ROCR-Runtime
 * src/core/util/atomic_helpers.h, X64_ORDER_WC); a doorbell ring must not overtake the packet
 * it announces. Elsewhere the compiler's fences are enough. */
#if defined(__x86_64__) || defined(__i386__)
#define RELEASE_FENCE() _mm_sfence()
#define ACQUIRE_FENCE() _mm_lfence()
#else
#define RELEASE_FENCE() __atomic_thread_fence(__ATOMIC_RELEASE)
#define ACQUIRE_FENCE() __atomic_thread_fence(__ATOMIC_ACQUIRE)
#endif

static PyObject *py_store64(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    uint64_t addr, value;
    if (nargs != 2 || parse_u64(args[0], &addr) < 0 || parse_u64(args[1], &value) < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "store64(addr, value)");
        return NULL;
    }
    RELEASE_FENCE();
    __atomic_store_n((volatile uint64_t *)(uintptr_t)addr, value, __ATOMIC_RELEASE);
    Py_RETURN_NONE;
}

static PyObject *py_store32(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    uint64_t addr, value;
    if (nargs != 2 || parse_u64(args[0], &addr) < 0 || parse_u64(args[1], &value) < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "store32(addr, value)");
        return NULL;
    }
    RELEASE_FENCE();
    __atomic_store_n((volatile uint32_t *)(uintptr_t)addr, (uint32_t)value, __ATOMIC_RELEASE);
    Py_RETURN_NONE;
}

static PyObject *py_load64(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    uint64_t addr;
    if (nargs != 1 || parse_u64(args[0], &addr) < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "load64(addr)");
        return NULL;
    }
    uint64_t v = __atomic_load_n((volatile uint64_t *)(uintptr_t)addr, __ATOMIC_ACQUIRE);
    ACQUIRE_FENCE();
    return PyLong_FromUnsignedLongLong(v);
}

static PyObject *py_load32(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    uint64_t addr;
    if (nargs != 1 || parse_u64(args[0], &addr) < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "load32(addr)");
        return NULL;
    }
    uint32_t v = __atomic_load_n((volatile uint32_t *)(uintptr_t)addr, __ATOMIC_ACQUIRE);
    ACQUIRE_FENCE();
    return PyLong_FromUnsignedLong(v);
}

static int parse3(PyObject *const *args, Py_ssize_t nargs, const char *sig, uint64_t *a,
                  uint64_t *b, uint64_t *c)
{
    if (nargs != (c ? 3 : 2) || parse_u64(args[0], a) < 0 || parse_u64(args[1], b) < 0 ||
        (c && parse_u64(args[2], c) < 0)) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, sig);
        return -1;
    }
    return 0;
}

static PyObject *py_cas64(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    uint64_t addr, expected, desired;
    if (parse3(args, nargs, "cas64(addr, expected, desired)", &addr, &expected, &desired) < 0)
        return NULL;
    __atomic_compare_exchange_n((uint64_t *)(uintptr_t)addr, &expected, desired, 0,
                                __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    return PyLong_FromUnsignedLongLong(expected);
}

static PyObject *py_cas32(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    uint64_t addr, expected, desired;
    if (parse3(args, nargs, "cas32(addr, expected, desired)", &addr, &expected, &desired) < 0)
        return NULL;
    uint32_t e = (uint32_t)expected;
    __atomic_compare_exchange_n((uint32_t *)(uintptr_t)addr, &e, (uint32_t)desired, 0,
                                __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    return PyLong_FromUnsignedLong(e);
}

static PyObject *py_fetch_add64(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    uint64_t addr, value;
    if (parse3(args, nargs, "fetch_add64(addr, value)", &addr, &value, NULL) < 0)
        return NULL;
    return PyLong_FromUnsignedLongLong(
        __atomic_fetch_add((uint64_t *)(uintptr_t)addr, value, __ATOMIC_SEQ_CST));
}

static PyObject *py_fetch_add32(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    uint64_t addr, value;
    if (parse3(args, nargs, "fetch_add32(addr, value)", &addr, &value, NULL) < 0)
        return NULL;
    return PyLong_FromUnsignedLong(
        __atomic_fetch_add((uint32_t *)(uintptr_t)addr, (uint32_t)value, __ATOMIC_SEQ_CST));
}

static PyObject *py_cas_many(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    uint64_t base;
    long width;
    Py_buffer off = {0}, exp = {0}, des = {0}, fnd = {0};
    PyObject *result = NULL;
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError,
                        "cas_many(base, offsets, expected, desired, found, width)");
        return NULL;
    }
    if (parse_u64(args[0], &base) < 0)
        return NULL;
    width = PyLong_AsLong(args[5]);
    if (width == -1 && PyErr_Occurred())
        return NULL;
    if (width != 4 && width != 8) {
        PyErr_SetString(PyExc_ValueError, "cas_many: width must be 4 or 8");
        return NULL;
    }
    if (PyObject_GetBuffer(args[1], &off, PyBUF_C_CONTIGUOUS) < 0)
        goto done;
    if (PyObject_GetBuffer(args[2], &exp, PyBUF_C_CONTIGUOUS) < 0)
        goto done;
    if (PyObject_GetBuffer(args[3], &des, PyBUF_C_CONTIGUOUS) < 0)
        goto done;
    if (PyObject_GetBuffer(args[4], &fnd, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE) < 0)
        goto done;
    Py_ssize_t n = off.len / 8;
    if (exp.len != n * width || des.len != n * width || fnd.len != n * width) {
        PyErr_SetString(PyExc_ValueError, "cas_many: buffer sizes do not match");
        goto done;
    }
    long failures = 0;
    const uint64_t *o = off.buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (width == 8) {
            uint64_t e = ((const uint64_t *)exp.buf)[i];
            if (!__atomic_compare_exchange_n((uint64_t *)(uintptr_t)(base + o[i]), &e,
                                             ((const uint64_t *)des.buf)[i], 0,
                                             __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
                failures++;
            ((uint64_t *)fnd.buf)[i] = e;
        } else {
            uint32_t e = ((const uint32_t *)exp.buf)[i];
            if (!__atomic_compare_exchange_n((uint32_t *)(uintptr_t)(base + o[i]), &e,
                                             ((const uint32_t *)des.buf)[i], 0,
                                             __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
                failures++;
            ((uint32_t *)fnd.buf)[i] = e;
        }
    }
    result = PyLong_FromLong(failures);
done:
    if (off.obj) PyBuffer_Release(&off);
    if (exp.obj) PyBuffer_Release(&exp);
    if (des.obj) PyBuffer_Release(&des);
    if (fnd.obj) PyBuffer_Release(&fnd);
    return result;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#define HANDOFF_NS 50000ull
static int host_waiters;        /* host threads inside wait_value */
static int device_threads;      /* device-model threads running Python (device_running) */

/* Spin (yielding) without the GIL until *counter == 0 (want_zero) or != 0, HANDOFF_NS at most. */
static void handoff(const int *counter, int want_zero)
{
    uint64_t until = 0;
    for (;;) {
        int n = __atomic_load_n(counter, __ATOMIC_ACQUIRE);
        if ((n == 0) == want_zero)
            return;
        uint64_t t = now_ns();
        if (!until)
            until = t + HANDOFF_NS;
        else if (t >= until)
            return;
        sched_yield();
    }
}

static PyObject *py_device_running(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    long delta;
    if (nargs != 1 || ((delta = PyLong_AsLong(args[0])) == -1 && PyErr_Occurred())) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "device_running(delta)");
        return NULL;
    }
    __atomic_fetch_add(&device_threads, (int)delta, __ATOMIC_SEQ_CST);
    Py_RETURN_NONE;
}

static PyObject *py_device_poll(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    uint64_t addr, old, timeout, v;
    if (parse3(args, nargs, "device_poll(addr, old, timeout_ns)", &addr, &old, &timeout) < 0)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    __atomic_fetch_sub(&device_threads, 1, __ATOMIC_SEQ_CST);
    uint64_t deadline = now_ns() + timeout;
    for (;;) {
        v = __atomic_load_n((volatile uint64_t *)(uintptr_t)addr, __ATOMIC_ACQUIRE);
        if (v != old || now_ns() >= deadline)
            break;
        sched_yield();
    }
    if (v != old)
        handoff(&host_waiters, 0);
    __atomic_fetch_add(&device_threads, 1, __ATOMIC_SEQ_CST);
    Py_END_ALLOW_THREADS
    return PyLong_FromUnsignedLongLong(v);
}

static int compare(int cond, int64_t a, int64_t b)
{
    switch (cond) {
    case 0: return 1;
    case 1: return a < b;
    case 2: return a <= b;
    case 3: return a == b;
    case 4: return a != b;
    case 5: return a >= b;
    case 6: return a > b;
    default: return 0;
    }
}

static PyObject *py_wait_value(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    uint64_t addr, width, mask, ref, cond, timeout, v;
    if (nargs != 6 || parse_u64(args[0], &addr) < 0 || parse_u64(args[1], &width) < 0 ||
        parse_u64(args[2], &mask) < 0 || parse_u64(args[3], &ref) < 0 ||
        parse_u64(args[4], &cond) < 0 || parse_u64(args[5], &timeout) < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError,
                            "wait_value(addr, width, mask, ref, cond, timeout_ns)");
        return NULL;
    }
    if ((width != 4 && width != 8) || cond > 6) {
        PyErr_SetString(PyExc_ValueError, "wait_value: width must be 4 or 8, cond 0..6");
        return NULL;
    }
    int ok = 0;
    Py_BEGIN_ALLOW_THREADS
    __atomic_fetch_add(&host_waiters, 1, __ATOMIC_SEQ_CST);
    uint64_t deadline = now_ns() + timeout;
    for (;;) {
        if (width == 8) {
            v = __atomic_load_n((volatile uint64_t *)(uintptr_t)addr, __ATOMIC_ACQUIRE);
            ok = compare((int)cond, (int64_t)(v & mask), (int64_t)ref);
        } else {
            v = __atomic_load_n((volatile uint32_t *)(uintptr_t)addr, __ATOMIC_ACQUIRE);
            ok = compare((int)cond, (int64_t)(v & mask & 0xFFFFFFFFull),
                         (int64_t)(ref & 0xFFFFFFFFull));
        }
        if (ok || now_ns() >= deadline)
            break;
        sched_yield();
    }
    __atomic_fetch_sub(&host_waiters, 1, __ATOMIC_SEQ_CST);
    if (ok)
        handoff(&device_threads, 1);
    Py_END_ALLOW_THREADS
    return PyLong_FromUnsignedLongLong(v);
}

#define FASTCALL(name, fn, doc) {name, (PyCFunction)(void (*)(void))fn, METH_FASTCALL, doc}

static PyMethodDef methods[] = {
    FASTCALL("ioctl", py_ioctl, "ioctl(fd, request, arg_addr) -> errno or 0"),
    FASTCALL("ioctl_checked", py_ioctl_checked,
             "ioctl_checked(fd, request, arg_addr, on_error): on_error(errno) on failure"),
    FASTCALL("ioctl_loop", py_ioctl_loop, "ioctl_loop(fd, request, arg_addr, n) -> last errno"),
    FASTCALL("mmap", py_mmap, "mmap(addr, length, prot, flags, fd, offset) -> address"),
    FASTCALL("munmap", py_munmap, "munmap(addr, length)"),
    FASTCALL("mprotect", py_mprotect, "mprotect(addr, length, prot)"),
    FASTCALL("store64", py_store64, "release store of a 64-bit value"),
    FASTCALL("store32", py_store32, "release store of a 32-bit value"),
    FASTCALL("load64", py_load64, "acquire load of a 64-bit value"),
    FASTCALL("load32", py_load32, "acquire load of a 32-bit value"),
    FASTCALL("cas64", py_cas64, "cas64(addr, expected, desired) -> value found"),
    FASTCALL("cas32", py_cas32, "cas32(addr, expected, desired) -> value found"),
    FASTCALL("fetch_add64", py_fetch_add64, "fetch_add64(addr, value) -> old value"),
    FASTCALL("fetch_add32", py_fetch_add32, "fetch_add32(addr, value) -> old value"),
    FASTCALL("device_poll", py_device_poll,
             "device_poll(addr, old, timeout_ns) -> value (a device thread's doorbell poll)"),
    FASTCALL("device_running", py_device_running,
             "device_running(delta): a device-model thread starts/stops running Python"),
    FASTCALL("wait_value", py_wait_value,
             "wait_value(addr, width, mask, ref, cond, timeout_ns) -> value (GIL released)"),
    FASTCALL("cas_many", py_cas_many,
             "cas_many(base, offsets, expected, desired, found, width) -> failures"),
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_syscall", "System calls of LinuxPort.", -1, methods,
};

PyMODINIT_FUNC PyInit__syscall(void)
{
    return PyModule_Create(&module);
}
