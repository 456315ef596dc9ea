/* codecorpus_scan: the n-gram decontamination tokenizer of codecorpus.stages.clean.ngrams, in C.
 *
 * It gives exactly the codes that module's regular expression (`_TOKEN.findall` + `_classify` +
 * the trailing-comma rule) gives, for every text in an Arrow string array at once: no Python
 * string per file. The regex is deterministic enough to be a scanner: its skip part is greedy and
 * never has to give anything back (after it, some alternative always matches), each string form
 * stops at its first unescaped closing quote, and the alternatives are tried in the regex's order.
 * Character classes are Python's own (`\s` = Py_UNICODE_ISSPACE, `\w` = Py_UNICODE_ISALNUM or
 * '_', `\d` = Py_UNICODE_ISDECIMAL), so a text gives the same codes through either path;
 * tests/test_ngram_scan.py checks that on every code point and on real files.
 *
 * scan(data, offsets, codes_table) -> (codes: bytes, starts: bytes of int64)
 *   data     the UTF-8 bytes (an Arrow data buffer, or any bytes-like object)
 *   offsets  n + 1 int64 offsets into data (the array's own, slice offset applied)
 *   table    the codes: (tokens: list of str (ASCII, 1-8 chars), codes: list of int,
 *            id, str, num, other, comma, closers: the closing brackets, as a str)
 * Lone surrogates encoded as 3 bytes (surrogatepass) are read as their code points, as the
 * regex sees them; any other invalid UTF-8 raises ValueError.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define MAX_KEYS 128

typedef struct {
    uint64_t keys[MAX_KEYS];  /* token bytes packed little-endian into 64 bits, sorted */
    uint8_t codes[MAX_KEYS];
    int n;
    uint8_t id, str, num, other, comma;
    uint8_t is_closer[256];
} Table;

static int lookup(const Table *t, const uint8_t *s, Py_ssize_t len) {
    if (len > 8) return -1;
    uint64_t key = 0;
    memcpy(&key, s, (size_t)len);
    int lo = 0, hi = t->n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (t->keys[mid] == key) return t->codes[mid];
        if (t->keys[mid] < key) lo = mid + 1; else hi = mid - 1;
    }
    return -1;
}

static int read_table(PyObject *spec, Table *t) {
    PyObject *tokens, *codes, *closers;
    int id, str, num, other, comma;
    if (!PyArg_ParseTuple(spec, "O!O!iiiiiU", &PyList_Type, &tokens, &PyList_Type, &codes,
                          &id, &str, &num, &other, &comma, &closers))
        return -1;
    Py_ssize_t n = PyList_GET_SIZE(tokens);
    if (n > MAX_KEYS || PyList_GET_SIZE(codes) != n) {
        PyErr_SetString(PyExc_ValueError, "codes table: too many tokens or lengths differ");
        return -1;
    }
    memset(t, 0, sizeof *t);
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t len;
        const char *s = PyUnicode_AsUTF8AndSize(PyList_GET_ITEM(tokens, i), &len);
        long code = PyLong_AsLong(PyList_GET_ITEM(codes, i));
        if (!s || (code == -1 && PyErr_Occurred())) return -1;
        if (len < 1 || len > 8 || code < 0 || code > 255) {
            PyErr_SetString(PyExc_ValueError, "codes table: a token of 1-8 bytes, a code 0-255");
            return -1;
        }
        uint64_t key = 0;
        memcpy(&key, s, (size_t)len);
        int j = t->n++;  /* insertion sort: the table is small and read once per call */
        while (j > 0 && t->keys[j - 1] > key) {
            t->keys[j] = t->keys[j - 1];
            t->codes[j] = t->codes[j - 1];
            j--;
        }
        t->keys[j] = key;
        t->codes[j] = (uint8_t)code;
    }
    t->id = id; t->str = str; t->num = num; t->other = other; t->comma = comma;
    Py_ssize_t nc;
    const char *cs = PyUnicode_AsUTF8AndSize(closers, &nc);
    if (!cs) return -1;
    for (Py_ssize_t i = 0; i < nc; i++) {  /* a closing bracket is one byte: its code marks it */
        int code = lookup(t, (const uint8_t *)cs + i, 1);
        if (code >= 0) t->is_closer[code] = 1;
    }
    return 0;
}

/* The code point at s[i] (i < n) and its length in bytes; -1 on invalid UTF-8. */
static Py_UCS4 decode(const uint8_t *s, Py_ssize_t i, Py_ssize_t n, int *len) {
    uint8_t b = s[i];
    if (b < 0x80) { *len = 1; return b; }
    int k; Py_UCS4 cp, min;
    if ((b & 0xE0) == 0xC0) { k = 2; cp = b & 0x1F; min = 0x80; }
    else if ((b & 0xF0) == 0xE0) { k = 3; cp = b & 0x0F; min = 0x800; }
    else if ((b & 0xF8) == 0xF0) { k = 4; cp = b & 0x07; min = 0x10000; }
    else { *len = -1; return 0; }
    if (i + k > n) { *len = -1; return 0; }
    for (int j = 1; j < k; j++) {
        if ((s[i + j] & 0xC0) != 0x80) { *len = -1; return 0; }
        cp = (cp << 6) | (s[i + j] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF) { *len = -1; return 0; }
    *len = k;
    return cp;
}

/* Python's classes; for ASCII from tables filled at import (ISALNUM is four calls per char). */
enum { SPACE = 1, WORD = 2, DECIMAL = 4 };
static uint8_t ascii_class[128];

static void fill_ascii_classes(void) {
    for (Py_UCS4 c = 0; c < 128; c++)
        ascii_class[c] = (Py_UNICODE_ISSPACE(c) ? SPACE : 0) |
                         (c == '_' || Py_UNICODE_ISALNUM(c) ? WORD : 0) |
                         (Py_UNICODE_ISDECIMAL(c) ? DECIMAL : 0);
}

static inline int is_space(Py_UCS4 c) { return c < 128 ? ascii_class[c] & SPACE : Py_UNICODE_ISSPACE(c); }
static inline int is_word(Py_UCS4 c) { return c < 128 ? ascii_class[c] & WORD : Py_UNICODE_ISALNUM(c); }
static inline int is_decimal(Py_UCS4 c) { return c < 128 ? ascii_class[c] & DECIMAL : Py_UNICODE_ISDECIMAL(c); }
static inline int is_prefix(uint8_t c) { return c && strchr("rRbBuUfF", c) != NULL; }
static inline int is_quote(uint8_t c) { return c == '\'' || c == '"'; }

typedef struct { const uint8_t *s; Py_ssize_t n; int bad; } Text;

static inline Py_UCS4 cp_at(Text *x, Py_ssize_t i, int *len) {
    if (x->s[i] < 0x80) { *len = 1; return x->s[i]; }
    Py_UCS4 c = decode(x->s, i, x->n, len);
    if (*len < 0) { x->bad = 1; *len = 1; }
    return c;
}

/* End of the word characters from i on. */
static Py_ssize_t words_from(Text *x, Py_ssize_t i) {
    while (i < x->n) {
        int len;
        Py_UCS4 c = cp_at(x, i, &len);
        if (!is_word(c)) break;
        i += len;
    }
    return i;
}

/* The skipped stretch from i: blanks and ';', backslash-newline continuations, comments. */
static Py_ssize_t skip_from(Text *x, Py_ssize_t i) {
    const uint8_t *s = x->s;
    Py_ssize_t n = x->n;
    for (;;) {
        while (i < n) {
            int len;
            Py_UCS4 c = cp_at(x, i, &len);
            if (c != ';' && !is_space(c)) break;
            i += len;
        }
        if (i < n && s[i] == '\\') {
            if (i + 1 < n && s[i + 1] == '\n') { i += 2; continue; }
            if (i + 2 < n && s[i + 1] == '\r' && s[i + 2] == '\n') { i += 3; continue; }
            return i;
        }
        if (i < n && s[i] == '#') {  /* bytes are enough: \r and \n never occur inside a UTF-8 sequence */
            while (i < n && s[i] != '\r' && s[i] != '\n') i++;
            continue;
        }
        return i;
    }
}

/* A string literal whose opening quote is at q: its end, or -1 when it is not closed. */
static Py_ssize_t string_end(const Text *x, Py_ssize_t q) {
    const uint8_t *s = x->s;
    Py_ssize_t n = x->n;
    uint8_t qc = s[q];
    if (q + 2 < n && s[q + 1] == qc && s[q + 2] == qc) {  /* triple-quoted, newlines allowed */
        for (Py_ssize_t i = q + 3; i < n;) {
            if (s[i] == '\\') { if (i + 1 >= n) break; i += 2; }
            else if (s[i] == qc && i + 2 < n && s[i + 1] == qc && s[i + 2] == qc) return i + 3;
            else i++;
        }
    }
    for (Py_ssize_t i = q + 1; i < n;) {  /* one quote, up to the line's end */
        if (s[i] == '\\') { if (i + 1 >= n) return -1; i += 2; }
        else if (s[i] == qc) return i + 1;
        else if (s[i] == '\n') return -1;
        else i++;
    }
    return -1;
}

static Py_ssize_t string_at(const Text *x, Py_ssize_t t) {
    const uint8_t *s = x->s;
    Py_ssize_t n = x->n, k;
    if (is_quote(s[t])) k = 0;
    else if (is_prefix(s[t]) && t + 1 < n && is_quote(s[t + 1])) k = 1;
    else if (is_prefix(s[t]) && t + 2 < n && is_prefix(s[t + 1]) && is_quote(s[t + 2])) k = 2;
    else return -1;
    return string_end(x, t + k);
}

/* The operator at t (a character that is neither a word character nor a blank): its end. */
static Py_ssize_t operator_at(Text *x, Py_ssize_t t) {
    const uint8_t *s = x->s;
    Py_ssize_t n = x->n;
    uint8_t a = s[t], b = t + 1 < n ? s[t + 1] : 0, c = t + 2 < n ? s[t + 2] : 0;
    if ((a == '*' || a == '/' || a == '<' || a == '>') && b == a) return t + 2 + (c == '=');
    if (a == '.' && b == '.' && c == '.') return t + 3;
    if (a == '-' && b == '>') return t + 2;
    if (a && strchr("-+*/%@&|^<>=!:", a) && b == '=') return t + 2;
    int len;
    cp_at(x, t, &len);
    return t + len;
}

/* The code of a token that is not in the table: the regex path's _classify. */
static uint8_t classify(Text *x, const Table *tb, Py_ssize_t t, Py_ssize_t end) {
    if (is_quote(x->s[end - 1])) return tb->str;
    int len;
    Py_UCS4 first = cp_at(x, t, &len);
    if (first == '.' || Py_UNICODE_ISDIGIT(first)) return tb->num;
    if (first == '_' || first > 127 || Py_UNICODE_ISALPHA(first)) return tb->id;
    return tb->other;
}

/* Appends the codes of one text to out (room for n codes is there); returns how many. */
static Py_ssize_t scan_text(Text *x, const Table *tb, uint8_t *out) {
    Py_ssize_t i = 0, m = 0;
    for (;;) {
        i = skip_from(x, i);
        if (i >= x->n) break;
        Py_ssize_t t = i, end = string_at(x, t);
        int len;
        Py_UCS4 c = cp_at(x, t, &len);
        if (end < 0) {
            if (is_decimal(c)) {
                end = words_from(x, t + len);
                if (end < x->n && x->s[end] == '.') end = words_from(x, end + 1);
            } else if (is_word(c)) {
                end = words_from(x, t + len);
            } else if (c == '.' && t + 1 < x->n) {
                int l2;
                Py_UCS4 d = cp_at(x, t + 1, &l2);
                end = is_decimal(d) ? words_from(x, t + 1 + l2) : operator_at(x, t);
            } else {
                end = operator_at(x, t);
            }
        }
        int code = lookup(tb, x->s + t, end - t);
        uint8_t out_code = code >= 0 ? (uint8_t)code : classify(x, tb, t, end);
        if (m > 0 && out[m - 1] == tb->comma && tb->is_closer[out_code]) m--;
        out[m++] = out_code;
        i = end;
    }
    return m;
}

/* The n + 1 int64 offsets of n texts in data of `data_len` bytes, checked (ascending, inside the
 * data); NULL with ValueError set when they are not. Shared with native/measure.c. */
const int64_t *text_offsets(const Py_buffer *offsets, Py_ssize_t data_len, Py_ssize_t *count) {
    if (offsets->len % 8 || offsets->len < 8) {
        PyErr_SetString(PyExc_ValueError, "offsets: n + 1 int64 values");
        return NULL;
    }
    *count = offsets->len / 8 - 1;
    const int64_t *off = (const int64_t *)offsets->buf;
    for (Py_ssize_t k = 0; k <= *count; k++) {
        if (off[k] < 0 || off[k] > data_len || (k && off[k] < off[k - 1])) {
            PyErr_SetString(PyExc_ValueError, "offsets out of order or outside the data");
            return NULL;
        }
    }
    return off;
}

static PyObject *scan(PyObject *self, PyObject *args) {
    Py_buffer data, offsets;
    PyObject *spec;
    if (!PyArg_ParseTuple(args, "y*y*O!", &data, &offsets, &PyTuple_Type, &spec)) return NULL;
    PyObject *result = NULL, *codes = NULL, *starts = NULL;
    Table tb;
    if (read_table(spec, &tb) < 0) goto done;
    Py_ssize_t count;
    const int64_t *off = text_offsets(&offsets, data.len, &count);
    if (!off) goto done;
    /* A text of b bytes has at most b tokens, so the whole data buffer bounds the output. */
    Py_ssize_t total = off[count] - off[0];
    codes = PyBytes_FromStringAndSize(NULL, total);
    starts = PyBytes_FromStringAndSize(NULL, (count + 1) * 8);
    if (!codes || !starts) goto done;
    uint8_t *out = (uint8_t *)PyBytes_AS_STRING(codes);
    int64_t *st = (int64_t *)PyBytes_AS_STRING(starts);
    Py_ssize_t m = 0;
    int bad = 0;
    Py_BEGIN_ALLOW_THREADS
    st[0] = 0;
    for (Py_ssize_t k = 0; k < count && !bad; k++) {
        Text x = {(const uint8_t *)data.buf + off[k], off[k + 1] - off[k], 0};
        m += scan_text(&x, &tb, out + m);
        st[k + 1] = m;
        bad = x.bad;
    }
    Py_END_ALLOW_THREADS
    if (bad) {
        PyErr_SetString(PyExc_ValueError, "invalid UTF-8 in a text");
        goto done;
    }
    if (_PyBytes_Resize(&codes, m) < 0) goto done;
    result = PyTuple_Pack(2, codes, starts);
done:
    Py_XDECREF(codes);
    Py_XDECREF(starts);
    PyBuffer_Release(&data);
    PyBuffer_Release(&offsets);
    return result;
}

/* ngram_candidates(codes, table, maybe, n_codes) -> (where: bytes of int64, hashes: bytes of uint64)
 * The hash of every n-gram of `codes` (uint8 token codes; n = rows of `table`, an n x n_codes
 * uint64 array: the hash is the XOR of table[j][codes[i + j]]), kept only where `maybe` (one
 * byte per value of the hash's low bits, len(maybe) a power of two) is set: the positions and
 * hashes ngrams.NgramMatcher.batch_hits searches, in one pass without an array per step. */
static PyObject *ngram_candidates(PyObject *self, PyObject *args) {
    Py_buffer codes, table, maybe;
    Py_ssize_t n_codes;
    if (!PyArg_ParseTuple(args, "y*y*y*n", &codes, &table, &maybe, &n_codes)) return NULL;
    PyObject *result = NULL, *where = NULL, *hashes = NULL;
    Py_ssize_t width = table.len / 8, n = n_codes > 0 ? width / n_codes : 0;
    if (n_codes <= 0 || n <= 0 || width % n_codes || table.len % 8 || maybe.len <= 0 ||
        (maybe.len & (maybe.len - 1))) {
        PyErr_SetString(PyExc_ValueError, "table: n x n_codes uint64 values; maybe: a power of two bytes");
        goto done;
    }
    const uint8_t *c = (const uint8_t *)codes.buf, *ok = (const uint8_t *)maybe.buf;
    const uint64_t *t = (const uint64_t *)table.buf;
    Py_ssize_t m = codes.len - n + 1;
    for (Py_ssize_t i = 0; i < codes.len; i++) {
        if (c[i] >= n_codes) {
            PyErr_SetString(PyExc_ValueError, "a token code outside the table");
            goto done;
        }
    }
    if (m < 0) m = 0;
    Py_ssize_t cap = m < 1024 ? m : 1024, found = 0;
    where = PyBytes_FromStringAndSize(NULL, cap * 8);
    hashes = PyBytes_FromStringAndSize(NULL, cap * 8);
    if (!where || !hashes) goto done;
    uint64_t mask = (uint64_t)maybe.len - 1;
    for (Py_ssize_t i = 0; i < m; i++) {
        uint64_t h = 0;
        for (Py_ssize_t j = 0; j < n; j++) h ^= t[j * n_codes + c[i + j]];
        if (!ok[h & mask]) continue;
        if (found == cap) {  /* few n-grams pass the filter: grow rarely */
            cap = cap * 2 + 1024;
            if (_PyBytes_Resize(&where, cap * 8) < 0 || _PyBytes_Resize(&hashes, cap * 8) < 0) goto done;
        }
        ((int64_t *)PyBytes_AS_STRING(where))[found] = (int64_t)i;
        ((uint64_t *)PyBytes_AS_STRING(hashes))[found] = h;
        found++;
    }
    if (_PyBytes_Resize(&where, found * 8) < 0 || _PyBytes_Resize(&hashes, found * 8) < 0) goto done;
    result = PyTuple_Pack(2, where, hashes);
done:
    Py_XDECREF(where);
    Py_XDECREF(hashes);
    PyBuffer_Release(&codes);
    PyBuffer_Release(&table);
    PyBuffer_Release(&maybe);
    return result;
}

PyObject *jsonl_parse_lines(PyObject *self, PyObject *args);  /* native/jsonl.c */
PyObject *jsonl_count_lines(PyObject *self, PyObject *args);  /* native/jsonl.c */
PyObject *measure_texts(PyObject *self, PyObject *args);      /* native/measure.c */
void measure_init(void);

static PyMethodDef methods[] = {
    {"scan", scan, METH_VARARGS, "scan(data, offsets, table) -> (codes, starts): token codes of many texts."},
    {"count_lines", jsonl_count_lines, METH_VARARGS,
     "count_lines(block) -> the lines of a block (an unterminated last line counted)."},
    {"parse_lines", jsonl_parse_lines, METH_VARARGS,
     "parse_lines(block, n_lines, names) -> None or per-field (data, offsets, validity, nulls)."},
    {"ngram_candidates", ngram_candidates, METH_VARARGS,
     "ngram_candidates(codes, table, maybe, n_codes) -> (where, hashes): filtered n-gram hashes."},
    {"measure", measure_texts, METH_VARARGS,
     "measure(data, offsets, width) -> (columns, keys): clean's per-file measurements of many texts."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "codecorpus_scan", NULL, -1, methods};

PyMODINIT_FUNC PyInit_codecorpus_scan(void) {
    fill_ascii_classes();
    measure_init();
    return PyModule_Create(&module);
}
