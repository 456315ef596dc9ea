/* measure: clean's per-file measurements (codecorpus.stages.clean.features), in one pass per file.
 *
 * For every text of an Arrow string array, what the CodeParrot filters read, with the meaning of
 * Python's string methods in preprocessing.py:
 *   lines      str.splitlines(): breaks are \n \r \x0b \x0c \x1c \x1d \x1e U+0085 U+2028 U+2029,
 *              "\r\n" is one break; lengths in code points
 *   alnum      str.isalnum() per code point (Python's own tables, Py_UNICODE_ISALNUM)
 *   key        MD5 of the UTF-8 text with every str.isspace() character removed (Py_UNICODE_ISSPACE),
 *              as hex: the exact-duplicate key of stages/clean/exact.py
 *   counts     "config" and "test" (non-overlapping, leftmost first) and whether "def ", "class ",
 *              "for " or "while " occur, in the ASCII-lower-cased text (features.py says why
 *              ASCII lower-casing gives Python's lower() answers for these strings)
 *   head_end   the byte where the first `width` lines end (the width-th break; the text's end when
 *              it has fewer)
 * The MD5 is this file's own implementation of RFC 1321 (no library offers one to C here).
 *
 * measure(data, offsets, width) -> (columns: bytes, keys: bytes)
 *   data     the UTF-8 bytes; offsets: n + 1 int64 offsets into data
 *   columns  M_N_COLUMNS x n int64 values, column by column (NATIVE_COLUMNS in features.py)
 *   keys     32 x n hex characters
 * Invalid UTF-8 raises ValueError (Arrow strings are valid; a lone surrogate encoded in 3 bytes is
 * read as its code point, as Python's surrogatepass would).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

enum { M_LINE_MAX, M_LINE_TOTAL, M_N_LINES, M_N_NEWLINES, M_N_EQUALS, M_ALNUM, M_CHARS, M_HEAD_END, M_N_CONFIG, M_N_TEST,
       M_HAS_KEYWORD, M_N_COLUMNS };

/* ----------------------------------------------------------------------------------- MD5 */

typedef struct {
    uint32_t h[4];
    uint64_t length;      /* bytes fed so far */
    uint8_t block[64];
    int used;             /* bytes waiting in block */
} Md5;

static uint32_t md5_k[64];
static const uint8_t md5_r[64] = {7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
                                  5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20,
                                  4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
                                  6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21};

static void md5_tables(void) {
    for (int i = 0; i < 64; i++) md5_k[i] = (uint32_t)(fabs(sin(i + 1.0)) * 4294967296.0);
}

static void md5_init(Md5 *m) {
    m->h[0] = 0x67452301u; m->h[1] = 0xefcdab89u; m->h[2] = 0x98badcfeu; m->h[3] = 0x10325476u;
    m->length = 0;
    m->used = 0;
}

static void md5_block(uint32_t h[4], const uint8_t *p) {
    uint32_t w[16];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 | (uint32_t)p[4 * i + 2] << 16 |
               (uint32_t)p[4 * i + 3] << 24;
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3];
    /* The four rounds as four loops, so each has no branch on the round. */
#define STEP(f, g, i) do { uint32_t t = a + (f) + md5_k[i] + w[g]; a = d; d = c; c = b; \
                           b += (t << md5_r[i]) | (t >> (32 - md5_r[i])); } while (0)
    for (int i = 0; i < 16; i++) STEP((b & c) | (~b & d), i, i);
    for (int i = 16; i < 32; i++) STEP((d & b) | (~d & c), (5 * i + 1) & 15, i);
    for (int i = 32; i < 48; i++) STEP(b ^ c ^ d, (3 * i + 5) & 15, i);
    for (int i = 48; i < 64; i++) STEP(c ^ (b | ~d), (7 * i) & 15, i);
#undef STEP
    h[0] += a; h[1] += b; h[2] += c; h[3] += d;
}

static void md5_update(Md5 *m, const uint8_t *p, Py_ssize_t n) {
    m->length += (uint64_t)n;
    if (m->used) {
        Py_ssize_t take = 64 - m->used < n ? 64 - m->used : n;
        memcpy(m->block + m->used, p, (size_t)take);
        m->used += (int)take; p += take; n -= take;
        if (m->used < 64) return;
        md5_block(m->h, m->block);
        m->used = 0;
    }
    for (; n >= 64; p += 64, n -= 64) md5_block(m->h, p);
    memcpy(m->block, p, (size_t)n);
    m->used = (int)n;
}

static void md5_hex(Md5 *m, char *out) {
    uint64_t bits = m->length * 8;
    uint8_t pad[72] = {0x80};
    int padding = (m->used < 56 ? 56 : 120) - m->used;
    for (int i = 0; i < 8; i++) pad[padding + i] = (uint8_t)(bits >> (8 * i));
    md5_update(m, pad, padding + 8);
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        uint8_t byte = (uint8_t)(m->h[i / 4] >> (8 * (i % 4)));
        out[2 * i] = hex[byte >> 4];
        out[2 * i + 1] = hex[byte & 15];
    }
}

/* ------------------------------------------------------------------------------ one text */

/* Byte classes of ASCII: one table look-up per byte decides which of the rarer steps it needs. */
enum { BREAK = 1, SPACE = 2, IS_ALNUM = 4, EQUALS = 8, ENDS_WORD = 16 };
static uint8_t ascii_class[128];

static void fill_classes(void) {
    const char *breaks = "\n\r\x0b\x0c\x1c\x1d\x1e", *last_letters = "gGtT ";
    for (Py_UCS4 c = 0; c < 128; c++)
        ascii_class[c] = (c && strchr(breaks, (int)c) ? BREAK : 0) | (Py_UNICODE_ISSPACE(c) ? SPACE : 0) |
                         (Py_UNICODE_ISALNUM(c) ? IS_ALNUM : 0) | (c == '=' ? EQUALS : 0) |
                         (c && strchr(last_letters, (int)c) ? ENDS_WORD : 0);
}

/* The last bytes seen, lower-cased, as one integer: a looked-for string ends here when its low
 * bytes equal the string's. Every looked-for string ends in 'g', 't' or ' ' (ENDS_WORD). */
#define PACK4(a, b, c, d) ((uint64_t)(a) << 24 | (uint64_t)(b) << 16 | (uint64_t)(c) << 8 | (uint64_t)(d))
#define PACK6(a, b, c, d, e, f) ((uint64_t)(a) << 40 | (uint64_t)(b) << 32 | PACK4(c, d, e, f))
static const uint64_t CONFIG = PACK6('c', 'o', 'n', 'f', 'i', 'g'), TEST = PACK4('t', 'e', 's', 't'),
                      DEF = PACK4('d', 'e', 'f', ' '), FOR = PACK4('f', 'o', 'r', ' '),
                      CLASS = PACK6('c', 'l', 'a', 's', 's', ' '), WHILE = PACK6('w', 'h', 'i', 'l', 'e', ' ');
#define LOW4 0xFFFFFFFFull
#define LOW6 0xFFFFFFFFFFFFull

/* The key's bytes are gathered into MD5 blocks as they are scanned. */
#define KEEP(byte) do { md5.block[md5.used++] = (byte); if (md5.used == 64) { md5_block(md5.h, md5.block); md5.used = 0; } } while (0)

static void end_stretch(int64_t *v, int64_t *stretch) {
    if (*stretch > v[M_LINE_MAX]) v[M_LINE_MAX] = *stretch;
    v[M_LINE_TOTAL] += *stretch;
    *stretch = 0;
}

/* Measures s[0, n) into v[M_N_COLUMNS] and its key into hex[32]; `base`: s's offset in the data
 * (head_end is a data offset); returns 0, or -1 on invalid UTF-8. */
static int measure_text(const uint8_t *s, Py_ssize_t n, int64_t base, long width, int64_t *v, char *hex) {
    Md5 md5;
    md5_init(&md5);
    memset(v, 0, M_N_COLUMNS * sizeof *v);
    int64_t stretch = 0, breaks = 0, next_test = 0, kept = 0;  /* next_test: where a "test" may start */
    int64_t alnum = 0, chars = 0;
    uint64_t last = 0;
    int after_cr = 0;
    v[M_HEAD_END] = width <= 0 ? base : base + n;
    for (Py_ssize_t i = 0; i < n;) {
        uint8_t b = s[i];
        if (b < 0x80) {
            uint8_t cls = ascii_class[b];
            last = last << 8 | (uint64_t)(b >= 'A' && b <= 'Z' ? b | 0x20 : b);
            chars++;
            i++;
            if (!(cls & (BREAK | SPACE | EQUALS | ENDS_WORD))) {  /* most bytes */
                stretch++;
                alnum += cls & IS_ALNUM ? 1 : 0;
                after_cr = 0;
                KEEP(b);
                kept++;
                continue;
            }
            if (cls & ENDS_WORD) {
                if ((last & LOW6) == CONFIG) v[M_N_CONFIG]++;
                if ((last & LOW4) == TEST && i - 4 >= next_test) { v[M_N_TEST]++; next_test = i; }
                if ((last & LOW4) == DEF || (last & LOW4) == FOR || (last & LOW6) == CLASS || (last & LOW6) == WHILE)
                    v[M_HAS_KEYWORD] = 1;
            }
            if (!(cls & SPACE)) { KEEP(b); kept++; }  /* whitespace leaves the key */
            if (cls & BREAK) {
                if (b == '\n') v[M_N_NEWLINES]++;
                if (!(b == '\n' && after_cr)) {  /* the \n of "\r\n" is no break of its own */
                    end_stretch(v, &stretch);
                    if (++breaks == width) v[M_HEAD_END] = base + i - 1;
                }
                after_cr = b == '\r';
            } else {
                stretch++;
                after_cr = 0;
                if (cls & EQUALS) v[M_N_EQUALS]++;
                alnum += cls & IS_ALNUM ? 1 : 0;
            }
            continue;
        }
        int k;
        Py_UCS4 cp;
        if ((b & 0xE0) == 0xC0) { k = 2; cp = b & 0x1F; }
        else if ((b & 0xF0) == 0xE0) { k = 3; cp = b & 0x0F; }
        else if ((b & 0xF8) == 0xF0) { k = 4; cp = b & 0x07; }
        else return -1;
        if (i + k > n) return -1;
        for (int j = 1; j < k; j++) {
            if ((s[i + j] & 0xC0) != 0x80) return -1;
            cp = cp << 6 | (s[i + j] & 0x3F);
        }
        last = last << 8 | 0x80;  /* no looked-for string holds a non-ASCII byte */
        after_cr = 0;
        chars++;
        if (!Py_UNICODE_ISSPACE(cp)) {
            for (int j = 0; j < k; j++) KEEP(s[i + j]);
            kept += k;
        }
        if (cp == 0x85 || cp == 0x2028 || cp == 0x2029) {
            end_stretch(v, &stretch);
            if (++breaks == width) v[M_HEAD_END] = base + i;
        } else {
            stretch++;
            if (Py_UNICODE_ISALNUM(cp)) alnum++;
        }
        i += k;
    }
    v[M_N_LINES] = breaks + (stretch > 0);
    end_stretch(v, &stretch);
    v[M_ALNUM] = alnum;
    v[M_CHARS] = chars;
    md5.length = (uint64_t)kept;
    md5_hex(&md5, hex);
    return 0;
}

/* ------------------------------------------------------------------------------ the call */

const int64_t *text_offsets(const Py_buffer *offsets, Py_ssize_t data_len, Py_ssize_t *count);  /* codecorpus_scan.c */

PyObject *measure_texts(PyObject *self, PyObject *args) {
    Py_buffer data, offsets;
    long width;
    if (!PyArg_ParseTuple(args, "y*y*l", &data, &offsets, &width)) return NULL;
    PyObject *result = NULL, *columns = NULL, *keys = NULL;
    Py_ssize_t count;
    const int64_t *off = text_offsets(&offsets, data.len, &count);
    if (!off) goto done;
    columns = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(M_N_COLUMNS * count * 8));
    keys = PyBytes_FromStringAndSize(NULL, 32 * count);
    if (!columns || !keys) goto done;
    int64_t *col = (int64_t *)PyBytes_AS_STRING(columns);
    char *hex = PyBytes_AS_STRING(keys);
    int bad = 0;
    Py_BEGIN_ALLOW_THREADS
    int64_t v[M_N_COLUMNS];
    for (Py_ssize_t k = 0; k < count && !bad; k++) {
        bad = measure_text((const uint8_t *)data.buf + off[k], off[k + 1] - off[k], off[k], width, v, hex + 32 * k);
        for (int c = 0; c < M_N_COLUMNS; c++) col[c * count + k] = v[c];
    }
    Py_END_ALLOW_THREADS
    if (bad) {
        PyErr_SetString(PyExc_ValueError, "invalid UTF-8 in a text");
        goto done;
    }
    result = PyTuple_Pack(2, columns, keys);
done:
    Py_XDECREF(columns);
    Py_XDECREF(keys);
    PyBuffer_Release(&data);
    PyBuffer_Release(&offsets);
    return result;
}

void measure_init(void) {
    md5_tables();
    fill_classes();
}
