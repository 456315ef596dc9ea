/* parse_lines: ingest's fast path for a block of JSON lines of string fields, in C.
 *
 * A CodeParrot shard is one flat object per line whose values are strings. This reads a block
 * of such lines straight into Arrow string columns (UTF-8 data, int32 offsets, validity), one
 * pass over the bytes: plain runs of a string are copied eight bytes at a time, escapes are
 * decoded, non-ASCII bytes are checked as UTF-8 as they are copied. It accepts only what Arrow's
 * JSON reader (RapidJSON) plus a full UTF-8 validation would accept and turn into the same
 * values, and only the plain form of it: exactly one object per line, keys without escapes,
 * each named field at most once, values that are a string or null, no other keys. Anything
 * else - a blank line, a number, a nested value, an unknown or repeated key, a raw control
 * character, a lone surrogate escape, invalid UTF-8 - makes it return None, and the caller
 * reads the block the way it always did (Arrow's reader, then the careful per-line path). So
 * where this answers, the answer is the old path's; where it does not, the old path decides.
 *
 * parse_lines(block, n_lines, names) -> None | tuple of (data, offsets, validity, null_count)
 *   block    bytes-like: whole lines, the last one may lack its newline
 *   n_lines  the lines the caller counted ('\n's, plus an unterminated last line)
 *   names    tuple of bytes: the field names, one column each, in this order
 *   validity is None when the column has no null.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define MAX_FIELDS 16
#define OVERRUN 16  /* the chunk copy may write this far past a string's end */

typedef struct {
    uint8_t *data;
    Py_ssize_t len;
    int32_t *offsets;
    uint8_t *valid;
    Py_ssize_t nulls;
} Column;

typedef struct {
    const uint8_t *name[MAX_FIELDS];
    Py_ssize_t name_len[MAX_FIELDS];
    int n;
} Names;

static inline const uint8_t *skip_ws(const uint8_t *p, const uint8_t *end) {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r')) p++;
    return p;
}

/* High bit set in every byte that is '"', '\\', below 0x20 or above 0x7f; exact for the
 * lowest such byte, which is all the caller looks at (borrows only run upwards). */
static inline uint64_t special_bytes(uint64_t x) {
    const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
    uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');
    return (((q - ones) & ~q) | ((b - ones) & ~b) | ((x - ones * 0x20) & ~x) | x) & high;
}

static inline int hex4(const uint8_t *p, uint32_t *out) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        uint8_t c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (uint32_t)(c - 'A' + 10);
        else return 0;
    }
    *out = v;
    return 1;
}

static inline uint8_t *put_utf8(uint8_t *o, uint32_t cp) {
    if (cp < 0x80) { *o++ = (uint8_t)cp; }
    else if (cp < 0x800) { *o++ = (uint8_t)(0xC0 | (cp >> 6)); *o++ = (uint8_t)(0x80 | (cp & 0x3F)); }
    else if (cp < 0x10000) {
        *o++ = (uint8_t)(0xE0 | (cp >> 12)); *o++ = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (uint8_t)(0x80 | (cp & 0x3F));
    } else {
        *o++ = (uint8_t)(0xF0 | (cp >> 18)); *o++ = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
        *o++ = (uint8_t)(0x80 | ((cp >> 6) & 0x3F)); *o++ = (uint8_t)(0x80 | (cp & 0x3F));
    }
    return o;
}

/* Length of the valid UTF-8 sequence at p (lead byte >= 0x80), or 0 (Unicode's table 3-7:
 * no overlong form, no surrogate, nothing past U+10FFFF). */
static inline int utf8_len(const uint8_t *p, const uint8_t *end) {
    uint8_t c = p[0];
    Py_ssize_t left = end - p;
    uint8_t lo = 0x80, hi = 0xBF;
    int n;
    if (c >= 0xC2 && c <= 0xDF) n = 2;
    else if (c >= 0xE0 && c <= 0xEF) { n = 3; if (c == 0xE0) lo = 0xA0; if (c == 0xED) hi = 0x9F; }
    else if (c >= 0xF0 && c <= 0xF4) { n = 4; if (c == 0xF0) lo = 0x90; if (c == 0xF4) hi = 0x8F; }
    else return 0;
    if (left < n || p[1] < lo || p[1] > hi) return 0;
    for (int i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xBF) return 0;
    return n;
}

/* Decode the string whose opening quote was just read; returns the byte after its closing
 * quote, or NULL when it is not in the accepted form. Writes at *out and advances it. */
static const uint8_t *read_string(const uint8_t *p, const uint8_t *end, uint8_t **out) {
    uint8_t *o = *out;
    for (;;) {
#if defined(__SSE2__)
        /* Sixteen bytes at a time: a signed compare below 0x20 also catches every byte >= 0x80. */
        const __m128i quote = _mm_set1_epi8('"'), slash = _mm_set1_epi8('\\'), space = _mm_set1_epi8(0x20);
        while (end - p >= 16) {
            __m128i x = _mm_loadu_si128((const __m128i *)p);
            _mm_storeu_si128((__m128i *)o, x);
            int m = _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, slash)),
                                                   _mm_cmplt_epi8(x, space)));
            if (m) {
                int k = __builtin_ctz((unsigned)m);
                p += k;
                o += k;
                goto special;
            }
            p += 16;
            o += 16;
        }
#endif
        while (end - p >= 8) {
            uint64_t x, m;
            memcpy(&x, p, 8);
            memcpy(o, &x, 8);
            m = special_bytes(x);
            if (m) {
                int k = __builtin_ctzll(m) >> 3;
                p += k;
                o += k;
                goto special;
            }
            p += 8;
            o += 8;
        }
        while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\') *o++ = *p++;
        if (p >= end) return NULL;  /* unterminated */
    special:;
        uint8_t c = *p;
        if (c == '"') { *out = o; return p + 1; }
        if (c < 0x20) return NULL;  /* RapidJSON rejects a raw control character */
        if (c >= 0x80) {
            int n = utf8_len(p, end);
            if (!n) return NULL;
            memcpy(o, p, (size_t)n);
            o += n;
            p += n;
            continue;
        }
        /* a backslash */
        if (end - p < 2) return NULL;
        switch (p[1]) {
            case '"': *o++ = '"'; break;
            case '\\': *o++ = '\\'; break;
            case '/': *o++ = '/'; break;
            case 'b': *o++ = '\b'; break;
            case 'f': *o++ = '\f'; break;
            case 'n': *o++ = '\n'; break;
            case 'r': *o++ = '\r'; break;
            case 't': *o++ = '\t'; break;
            case 'u': {
                uint32_t cp, low;
                if (end - p < 6 || !hex4(p + 2, &cp) || cp == 0) return NULL;
                if (cp >= 0xDC00 && cp < 0xE000) return NULL;  /* lone low surrogate */
                if (cp >= 0xD800 && cp < 0xDC00) {
                    if (end - p < 12 || p[6] != '\\' || p[7] != 'u' || !hex4(p + 8, &low)
                        || low < 0xDC00 || low >= 0xE000)
                        return NULL;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                    p += 6;
                }
                o = put_utf8(o, cp);
                p += 6;
                continue;
            }
            default: return NULL;
        }
        p += 2;
    }
}

static int field_of(const Names *nm, const uint8_t *key, Py_ssize_t len) {
    for (int f = 0; f < nm->n; f++)
        if (nm->name_len[f] == len && memcmp(nm->name[f], key, (size_t)len) == 0) return f;
    return -1;
}

/* Parse every line into the columns; 1 when all of them are in the accepted form. */
static int parse_block(const uint8_t *p, const uint8_t *end, Py_ssize_t n_lines, const Names *nm,
                       Column *cols) {
    Py_ssize_t row = 0;
    while (p < end) {
        if (row >= n_lines) return 0;
        uint32_t seen = 0;
        p = skip_ws(p, end);
        if (p >= end || *p != '{') return 0;
        p = skip_ws(p + 1, end);
        if (p < end && *p == '}') p++;
        else for (;;) {
            if (p >= end || *p != '"') return 0;
            const uint8_t *key = ++p;
            while (p < end && *p != '"' && *p != '\\' && *p >= 0x20 && *p < 0x80) p++;
            if (p >= end || *p != '"') return 0;
            int f = field_of(nm, key, p - key);
            if (f < 0 || (seen >> f) & 1) return 0;
            seen |= 1u << f;
            p = skip_ws(p + 1, end);
            if (p >= end || *p != ':') return 0;
            p = skip_ws(p + 1, end);
            if (p >= end) return 0;
            Column *c = &cols[f];
            if (*p == '"') {
                uint8_t *o = c->data + c->len;
                p = read_string(p + 1, end, &o);
                if (!p) return 0;
                c->len = o - c->data;
                c->valid[row >> 3] |= (uint8_t)(1u << (row & 7));
            } else if (end - p >= 4 && memcmp(p, "null", 4) == 0) {
                p += 4;  /* null: the row's bit stays 0 */
            } else {
                return 0;
            }
            p = skip_ws(p, end);
            if (p < end && *p == ',') { p = skip_ws(p + 1, end); continue; }
            if (p < end && *p == '}') { p++; break; }
            return 0;
        }
        p = skip_ws(p, end);
        if (p < end) {
            if (*p != '\n') return 0;
            p++;
        }
        row++;
        for (int f = 0; f < nm->n; f++) cols[f].offsets[row] = (int32_t)cols[f].len;
    }
    if (row != n_lines) return 0;
    for (int f = 0; f < nm->n; f++) {
        Py_ssize_t set = 0;
        for (Py_ssize_t i = 0; i < (n_lines + 7) / 8; i++) set += __builtin_popcount(cols[f].valid[i]);
        cols[f].nulls = n_lines - set;
    }
    return 1;
}

/* count_lines(block) -> lines: its '\n's, plus one for an unterminated last line (memchr's speed,
 * without the GIL; bytes.count runs a byte loop). */
PyObject *jsonl_count_lines(PyObject *self, PyObject *args) {
    Py_buffer block;
    Py_ssize_t n = 0;
    if (!PyArg_ParseTuple(args, "y*", &block)) return NULL;
    const uint8_t *p = (const uint8_t *)block.buf, *end = p + block.len;
    Py_BEGIN_ALLOW_THREADS
    while (p < end) {
        const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
        n++;
        if (!nl) break;
        p = nl + 1;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&block);
    return PyLong_FromSsize_t(n);
}

PyObject *jsonl_parse_lines(PyObject *self, PyObject *args) {
    Py_buffer block;
    Py_ssize_t n_lines;
    PyObject *names_obj, *result = NULL;
    PyObject *data[MAX_FIELDS] = {0}, *offsets[MAX_FIELDS] = {0}, *valid[MAX_FIELDS] = {0};
    Names nm;
    Column cols[MAX_FIELDS];
    if (!PyArg_ParseTuple(args, "y*nO!", &block, &n_lines, &PyTuple_Type, &names_obj)) return NULL;
    nm.n = (int)PyTuple_GET_SIZE(names_obj);
    if (nm.n < 1 || nm.n > MAX_FIELDS || n_lines < 0) {
        PyErr_SetString(PyExc_ValueError, "parse_lines: 1 to 16 field names, n_lines >= 0");
        goto done;
    }
    if (block.len > INT32_MAX - OVERRUN) {  /* int32 offsets: such a block takes the old path */
        result = Py_NewRef(Py_None);
        goto done;
    }
    for (int f = 0; f < nm.n; f++) {
        PyObject *name = PyTuple_GET_ITEM(names_obj, f);
        if (!PyBytes_Check(name)) {
            PyErr_SetString(PyExc_TypeError, "parse_lines: field names are bytes");
            goto done;
        }
        nm.name[f] = (const uint8_t *)PyBytes_AS_STRING(name);
        nm.name_len[f] = PyBytes_GET_SIZE(name);
        /* A column's bytes never outgrow the block: every decoded form is shorter than its JSON. */
        data[f] = PyBytes_FromStringAndSize(NULL, block.len + OVERRUN);
        offsets[f] = PyBytes_FromStringAndSize(NULL, (n_lines + 1) * 4);
        valid[f] = PyBytes_FromStringAndSize(NULL, (n_lines + 7) / 8);
        if (!data[f] || !offsets[f] || !valid[f]) goto done;
        cols[f] = (Column){(uint8_t *)PyBytes_AS_STRING(data[f]), 0, (int32_t *)PyBytes_AS_STRING(offsets[f]),
                           (uint8_t *)PyBytes_AS_STRING(valid[f]), 0};
        cols[f].offsets[0] = 0;
        memset(cols[f].valid, 0, (size_t)((n_lines + 7) / 8));
    }
    int ok;
    Py_BEGIN_ALLOW_THREADS
    ok = parse_block((const uint8_t *)block.buf, (const uint8_t *)block.buf + block.len, n_lines, &nm, cols);
    Py_END_ALLOW_THREADS
    if (!ok) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    result = PyTuple_New(nm.n);
    if (!result) goto done;
    for (int f = 0; f < nm.n; f++) {
        if (_PyBytes_Resize(&data[f], cols[f].len) < 0) { Py_CLEAR(result); goto done; }
        PyObject *v = cols[f].nulls ? valid[f] : Py_None;
        PyObject *col = Py_BuildValue("(OOOn)", data[f], offsets[f], v, cols[f].nulls);
        if (!col) { Py_CLEAR(result); goto done; }
        PyTuple_SET_ITEM(result, f, col);
    }
done:
    for (int f = 0; f < MAX_FIELDS; f++) {
        Py_XDECREF(data[f]);
        Py_XDECREF(offsets[f]);
        Py_XDECREF(valid[f]);
    }
    PyBuffer_Release(&block);
    return result;
}
