/* A stand-in for libnvidia-ml.so.1: the NVML C functions the agent reaches through the
 * real pynvml (ctypes), answering like an 8-GPU HGX H200 node, with fault knobs read from
 * a control file (FAKE_NVML_CONTROL) so a test can lose a GPU, bring it back, raise XIDs,
 * refuse a function, fail nvmlInit or hang a call while the agent runs.
 *
 * Control file lines (re-read when the file changes; FAKE_NVML_RELOAD_MS bounds how often
 * it is checked, 0 = on every call):
 *   gpus N | links N | procs N     node shape (default 8 GPUs, 18 NVLinks, 1 process)
 *   init_error CODE                nvmlInitWithFlags returns CODE
 *   lost I                         GPU I has fallen off the bus (NVML_ERROR_GPU_IS_LOST)
 *   unsupported NAME               NAME returns NVML_ERROR_NOT_SUPPORTED
 *   hang NAME                      NAME blocks until the line is gone
 *   xid SEQ I CODE                 queue XID CODE on GPU I once (SEQ: a new number each)
 * Functions the agent may call but absent here read as FUNCTION_NOT_FOUND in pynvml.
 * FAKE_NVML_FIELDS_H (generated from pynvml's constants) gives the field ids.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "fake_nvml_fields.h"

#define MAX_GPUS 16
#define MAX_QUEUE 256
#define OK 0
#define E_UNINITIALIZED 1
#define E_INVALID_ARGUMENT 2
#define E_NOT_SUPPORTED 3
#define E_INSUFFICIENT_SIZE 7
#define E_TIMEOUT 10
#define E_GPU_IS_LOST 15

typedef struct { int index; } gpu_t;
typedef gpu_t *dev_t_;
typedef struct { unsigned long long registered[MAX_GPUS]; } eventset_t;

static const unsigned BUSES[MAX_GPUS] = {0x18, 0x2a, 0x3a, 0x5d, 0x9a, 0xab, 0xba, 0xdb,
                                         0x19, 0x2b, 0x3b, 0x5e, 0x9b, 0xac, 0xbb, 0xdc};
static gpu_t GPUS[MAX_GPUS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int initialised = 0;

static struct {
    int gpus, links, procs, init_error;
    int lost[MAX_GPUS];
    char unsupported[1024];
    char hang[1024];
} ctl;
static long long last_xid_seq = -1;
static struct { int gpu; unsigned long long code; } queue[MAX_QUEUE];
static int q_head = 0, q_len = 0;
static struct timespec checked_at;
static struct stat seen;
static int have_seen = 0;
static unsigned long long calls = 0;

static void parse(FILE *f) {
    char line[256], word[64], name[200];
    long long a, b, c;
    memset(&ctl, 0, sizeof ctl);
    ctl.gpus = 8; ctl.links = 18; ctl.procs = 1;
    strcpy(ctl.unsupported, " "); strcpy(ctl.hang, " ");
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "%63s", word) != 1) continue;
        if (!strcmp(word, "gpus") && sscanf(line, "%*s %lld", &a) == 1 && a >= 0 && a <= MAX_GPUS) ctl.gpus = (int)a;
        else if (!strcmp(word, "links") && sscanf(line, "%*s %lld", &a) == 1 && a >= 0 && a <= 18) ctl.links = (int)a;
        else if (!strcmp(word, "procs") && sscanf(line, "%*s %lld", &a) == 1 && a >= 0 && a <= 64) ctl.procs = (int)a;
        else if (!strcmp(word, "init_error") && sscanf(line, "%*s %lld", &a) == 1) ctl.init_error = (int)a;
        else if (!strcmp(word, "lost") && sscanf(line, "%*s %lld", &a) == 1 && a >= 0 && a < MAX_GPUS) ctl.lost[a] = 1;
        else if (!strcmp(word, "unsupported") && sscanf(line, "%*s %199s", name) == 1 &&
                 strlen(ctl.unsupported) + strlen(name) + 2 < sizeof ctl.unsupported) {
            strcat(ctl.unsupported, name); strcat(ctl.unsupported, " ");
        } else if (!strcmp(word, "hang") && sscanf(line, "%*s %199s", name) == 1 &&
                   strlen(ctl.hang) + strlen(name) + 2 < sizeof ctl.hang) {
            strcat(ctl.hang, name); strcat(ctl.hang, " ");
        } else if (!strcmp(word, "xid") && sscanf(line, "%*s %lld %lld %lld", &a, &b, &c) == 3 &&
                   a > last_xid_seq && b >= 0 && b < MAX_GPUS && q_len < MAX_QUEUE) {
            last_xid_seq = a;
            queue[(q_head + q_len) % MAX_QUEUE].gpu = (int)b;
            queue[(q_head + q_len) % MAX_QUEUE].code = (unsigned long long)c;
            q_len++;
        }
    }
}

/* Re-read the control file if it changed (checked at most every FAKE_NVML_RELOAD_MS). */
static void reload(int force) {
    const char *path = getenv("FAKE_NVML_CONTROL");
    const char *every = getenv("FAKE_NVML_RELOAD_MS");
    long every_ms = every ? atol(every) : 0;
    struct timespec now;
    struct stat st;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long elapsed_ms = (now.tv_sec - checked_at.tv_sec) * 1000 + (now.tv_nsec - checked_at.tv_nsec) / 1000000;
    if (have_seen && !force && elapsed_ms < every_ms) return;
    checked_at = now;
    if (!path || stat(path, &st) != 0) {
        if (!have_seen) { FILE *none = fopen("/dev/null", "r"); if (none) { parse(none); fclose(none); } have_seen = 1; }
        return;
    }
    if (have_seen && st.st_ino == seen.st_ino && st.st_size == seen.st_size &&
        st.st_mtim.tv_sec == seen.st_mtim.tv_sec && st.st_mtim.tv_nsec == seen.st_mtim.tv_nsec)
        return;
    FILE *f = fopen(path, "r");
    if (!f) return;
    parse(f);
    fclose(f);
    seen = st;
    have_seen = 1;
}

static int listed(const char *list, const char *name) {
    char key[210];
    snprintf(key, sizeof key, " %s ", name);
    return strstr(list, key) != NULL;
}

/* What every call does first: hang, refuse, or find its GPU lost. */
static int enter(const char *name, dev_t_ dev) {
    pthread_mutex_lock(&lock);
    calls++;
    reload(0);
    while (listed(ctl.hang, name)) {
        pthread_mutex_unlock(&lock);
        struct timespec pause = {0, 5000000};
        nanosleep(&pause, NULL);
        pthread_mutex_lock(&lock);
        reload(1);
    }
    int ret = OK;
    if (!initialised && strcmp(name, "nvmlInitWithFlags")) ret = E_UNINITIALIZED;
    else if (dev && (dev < GPUS || dev >= GPUS + ctl.gpus)) ret = E_INVALID_ARGUMENT;
    else if (dev && ctl.lost[dev->index]) ret = E_GPU_IS_LOST;
    else if (listed(ctl.unsupported, name)) ret = E_NOT_SUPPORTED;
    pthread_mutex_unlock(&lock);
    return ret;
}

#define ENTER(dev) do { int r_ = enter(__func__, (dev)); if (r_) return r_; } while (0)

static int put(char *buf, unsigned len, const char *text) {
    if (strlen(text) + 1 > len) return E_INSUFFICIENT_SIZE;
    strcpy(buf, text);
    return OK;
}

const char *nvmlErrorString(int code) {
    switch (code) {
    case OK: return "Success";
    case E_UNINITIALIZED: return "Uninitialized";
    case E_NOT_SUPPORTED: return "Not Supported";
    case E_GPU_IS_LOST: return "GPU is lost";
    case 9: return "Driver Not Loaded";
    default: return "Unknown Error";
    }
}

int nvmlInitWithFlags(unsigned flags) {
    (void)flags;
    ENTER(NULL);
    pthread_mutex_lock(&lock);
    int err = ctl.init_error;
    if (!err) {
        for (int i = 0; i < MAX_GPUS; i++) GPUS[i].index = i;
        initialised = 1;
    }
    pthread_mutex_unlock(&lock);
    return err;
}

int nvmlShutdown(void) { ENTER(NULL); return OK; }
int nvmlSystemGetDriverVersion(char *v, unsigned n) { ENTER(NULL); return put(v, n, "570.133.20"); }
int nvmlSystemGetNVMLVersion(char *v, unsigned n) { ENTER(NULL); return put(v, n, "12.570.133.20"); }
int nvmlSystemGetCudaDriverVersion_v2(int *v) { ENTER(NULL); *v = 12080; return OK; }
int nvmlDeviceGetCount_v2(unsigned *n) { ENTER(NULL); *n = (unsigned)ctl.gpus; return OK; }

int nvmlDeviceGetHandleByIndex_v2(unsigned i, dev_t_ *dev) {
    ENTER(NULL);
    if (i >= (unsigned)ctl.gpus) return E_INVALID_ARGUMENT;
    if (ctl.lost[i]) return E_GPU_IS_LOST;
    *dev = &GPUS[i];
    return OK;
}

int nvmlDeviceGetIndex(dev_t_ d, unsigned *i) { ENTER(d); *i = (unsigned)d->index; return OK; }

int nvmlDeviceGetUUID(dev_t_ d, char *v, unsigned n) {
    char text[96];
    ENTER(d);
    snprintf(text, sizeof text, "GPU-fa4e0000-0000-4000-8000-%012d", d->index);
    return put(v, n, text);
}
int nvmlDeviceGetName(dev_t_ d, char *v, unsigned n) { ENTER(d); return put(v, n, "NVIDIA H200"); }
int nvmlDeviceGetSerial(dev_t_ d, char *v, unsigned n) {
    char text[32];
    ENTER(d);
    snprintf(text, sizeof text, "165242300%04d", d->index);
    return put(v, n, text);
}
int nvmlDeviceGetVbiosVersion(dev_t_ d, char *v, unsigned n) { ENTER(d); return put(v, n, "96.00.AF.00.01"); }

typedef struct {
    char busIdLegacy[16];
    unsigned domain, bus, device, pciDeviceId, pciSubSystemId;
    char busId[32];
} pci_t;
int nvmlDeviceGetPciInfo_v3(dev_t_ d, pci_t *p) {
    ENTER(d);
    memset(p, 0, sizeof *p);
    p->bus = BUSES[d->index];
    p->pciDeviceId = 0x233510de;
    snprintf(p->busId, sizeof p->busId, "00000000:%02X:00.0", BUSES[d->index]);
    snprintf(p->busIdLegacy, sizeof p->busIdLegacy, "0000:%02X:00.0", BUSES[d->index]);
    return OK;
}

#define MIB 1048576ULL
#define TOTAL_MIB 143771ULL
#define RESERVED_MIB 512ULL
static unsigned long long used_mib(dev_t_ d) { return 100000ULL + (unsigned long long)d->index; }
typedef struct { unsigned long long total, free, used; } mem_t;
typedef struct { unsigned version; unsigned long long total, reserved, free, used; } mem2_t;
int nvmlDeviceGetMemoryInfo(dev_t_ d, mem_t *m) {
    ENTER(d);
    m->total = TOTAL_MIB * MIB;
    m->used = (used_mib(d) + RESERVED_MIB) * MIB;
    m->free = m->total - m->used;
    return OK;
}
int nvmlDeviceGetMemoryInfo_v2(dev_t_ d, mem2_t *m) {
    ENTER(d);
    m->total = TOTAL_MIB * MIB;
    m->reserved = RESERVED_MIB * MIB;
    m->used = used_mib(d) * MIB;
    m->free = m->total - m->used - m->reserved;
    return OK;
}

typedef struct { unsigned gpu, memory; } util_t;
int nvmlDeviceGetUtilizationRates(dev_t_ d, util_t *u) { ENTER(d); u->gpu = 87; u->memory = 41; return OK; }
int nvmlDeviceGetTemperature(dev_t_ d, int sensor, unsigned *t) {
    ENTER(d);
    if (sensor != 0) return E_NOT_SUPPORTED;
    *t = 50 + (unsigned)d->index;
    return OK;
}
int nvmlDeviceGetTemperatureThreshold(dev_t_ d, int kind, unsigned *t) {
    ENTER(d);
    if (kind == 0) { *t = 92; return OK; }  /* shutdown */
    if (kind == 1) { *t = 87; return OK; }  /* slowdown */
    return E_NOT_SUPPORTED;
}
int nvmlDeviceGetPowerUsage(dev_t_ d, unsigned *mw) { ENTER(d); *mw = 612345; return OK; }
int nvmlDeviceGetPowerManagementLimit(dev_t_ d, unsigned *mw) { ENTER(d); *mw = 700000; return OK; }
int nvmlDeviceGetTotalEnergyConsumption(dev_t_ d, unsigned long long *mj) {
    ENTER(d);
    *mj = 987654321ULL + calls;
    return OK;
}
int nvmlDeviceGetClockInfo(dev_t_ d, int type, unsigned *mhz) {
    ENTER(d);
    if (type == 1 || type == 0) { *mhz = 1980; return OK; }
    if (type == 2) { *mhz = 3201; return OK; }
    return E_INVALID_ARGUMENT;
}
int nvmlDeviceGetCurrentClocksEventReasons(dev_t_ d, unsigned long long *r) {
    ENTER(d);
    *r = d->index == 2 ? 0x4ULL : 0ULL;
    return OK;
}
int nvmlDeviceGetTotalEccErrors(dev_t_ d, int type, int counter, unsigned long long *n) {
    ENTER(d);
    *n = (type == 0 && counter == 1) ? 120ULL : (type == 0 ? 3ULL : 0ULL);
    return OK;
}
int nvmlDeviceGetRemappedRows(dev_t_ d, unsigned *c, unsigned *u, unsigned *p, unsigned *f) {
    ENTER(d);
    *c = 2; *u = 0; *p = 0; *f = 0;
    return OK;
}
int nvmlDeviceGetPcieReplayCounter(dev_t_ d, unsigned *n) { ENTER(d); *n = 0; return OK; }
int nvmlDeviceGetCurrPcieLinkGeneration(dev_t_ d, unsigned *n) { ENTER(d); *n = 5; return OK; }
int nvmlDeviceGetMaxPcieLinkGeneration(dev_t_ d, unsigned *n) { ENTER(d); *n = 5; return OK; }
int nvmlDeviceGetCurrPcieLinkWidth(dev_t_ d, unsigned *n) { ENTER(d); *n = 16; return OK; }
int nvmlDeviceGetMaxPcieLinkWidth(dev_t_ d, unsigned *n) { ENTER(d); *n = 16; return OK; }
int nvmlDeviceGetPerformanceState(dev_t_ d, int *p) { ENTER(d); *p = 0; return OK; }
int nvmlDeviceGetEncoderUtilization(dev_t_ d, unsigned *u, unsigned *period) {
    ENTER(d); *u = 0; *period = 167000; return OK;
}
int nvmlDeviceGetDecoderUtilization(dev_t_ d, unsigned *u, unsigned *period) {
    ENTER(d); *u = 3; *period = 167000; return OK;
}

static unsigned long long nvlink_counter(int link, int counter) {
    return (link == 3 && counter == 2) ? 7ULL : 0ULL;
}
int nvmlDeviceGetNvLinkState(dev_t_ d, unsigned link, int *active) {
    ENTER(d);
    if (link >= (unsigned)ctl.links) return ctl.links ? E_INVALID_ARGUMENT : E_NOT_SUPPORTED;
    *active = 1;
    return OK;
}
int nvmlDeviceGetNvLinkErrorCounter(dev_t_ d, unsigned link, int counter, unsigned long long *n) {
    ENTER(d);
    if (link >= (unsigned)ctl.links || counter < 0 || counter > 3) return E_INVALID_ARGUMENT;
    *n = nvlink_counter((int)link, counter);
    return OK;
}

typedef struct {
    unsigned fieldId, scopeId;
    long long timestamp, latencyUsec;
    int valueType, nvmlReturn;
    union { double d; unsigned ui; unsigned long ul; unsigned long long ull; } value;
} field_t;
int nvmlDeviceGetFieldValues(dev_t_ d, int count, field_t *values) {
    ENTER(d);
    for (int i = 0; i < count; i++) {
        field_t *v = &values[i];
        v->nvmlReturn = E_NOT_SUPPORTED;
        v->valueType = 1;  /* unsigned int */
        if (v->fieldId == FI_LINK_STATE) {
            if (v->scopeId < (unsigned)ctl.links && !listed(ctl.unsupported, "nvmlDeviceGetNvLinkState")) {
                v->nvmlReturn = OK; v->value.ui = 1;  /* NVML_NVLINK_STATE_ACTIVE */
            }
        } else if (v->fieldId == FI_LINK_COUNT) {
            v->nvmlReturn = OK; v->value.ui = (unsigned)ctl.links;
        } else if (v->fieldId == FI_RECOVERY_ACTION) {
            v->nvmlReturn = OK; v->value.ui = 0;
        } else {
            for (unsigned k = 0; k < sizeof NVLINK_FIELDS / sizeof NVLINK_FIELDS[0]; k++) {
                if (NVLINK_FIELDS[k][0] == v->fieldId && NVLINK_FIELDS[k][1] < (unsigned)ctl.links) {
                    v->nvmlReturn = OK;
                    v->valueType = 3;  /* unsigned long long */
                    v->value.ull = nvlink_counter((int)NVLINK_FIELDS[k][1], (int)NVLINK_FIELDS[k][2]);
                }
            }
        }
    }
    return OK;
}

int nvmlDeviceGetMigMode(dev_t_ d, unsigned *current, unsigned *pending) {
    ENTER(d); *current = 0; *pending = 0; return OK;
}

typedef struct { unsigned pid; unsigned long long used; unsigned gi, ci; } proc_t;
int nvmlDeviceGetComputeRunningProcesses_v3(dev_t_ d, unsigned *count, proc_t *procs) {
    ENTER(d);
    unsigned want = (unsigned)ctl.procs;
    if (want == 0) { *count = 0; return OK; }
    if (procs == NULL || *count < want) { *count = want; return E_INSUFFICIENT_SIZE; }
    for (unsigned i = 0; i < want; i++) {
        procs[i].pid = 4242 + (unsigned)d->index * 100 + i;
        procs[i].used = 60000ULL * MIB;
        procs[i].gi = 0xFFFFFFFFu; procs[i].ci = 0xFFFFFFFFu;
    }
    *count = want;
    return OK;
}

int nvmlEventSetCreate(eventset_t **set) {
    ENTER(NULL);
    *set = calloc(1, sizeof **set);
    return *set ? OK : 999;
}
int nvmlDeviceRegisterEvents(dev_t_ d, unsigned long long types, eventset_t *set) {
    ENTER(d);
    set->registered[d->index] |= types;
    return OK;
}
typedef struct { dev_t_ device; unsigned long long eventType, eventData; unsigned gi, ci; } event_t;
int nvmlEventSetWait_v2(eventset_t *set, event_t *data, unsigned timeout_ms) {
    (void)timeout_ms;
    ENTER(NULL);
    pthread_mutex_lock(&lock);
    int ret = E_TIMEOUT;
    while (q_len > 0) {
        int gpu = queue[q_head].gpu;
        unsigned long long code = queue[q_head].code;
        q_head = (q_head + 1) % MAX_QUEUE;
        q_len--;
        if (set->registered[gpu] & 0x8ULL) {  /* nvmlEventTypeXidCriticalError */
            data->device = &GPUS[gpu];
            data->eventType = 0x8ULL;
            data->eventData = code;
            data->gi = data->ci = 0xFFFFFFFFu;
            ret = OK;
            break;
        }
    }
    pthread_mutex_unlock(&lock);
    return ret;
}
int nvmlEventSetFree(eventset_t *set) { free(set); return OK; }
