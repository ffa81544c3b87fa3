/* The fast JSON decode path (kstreams/json.h): a C shim over simdjson's DOM
 * API.
 *
 * Why the DOM API and not On-Demand: the DOM parser validates the whole
 * document (structure, UTF-8, every string, number and literal) in one pass,
 * with the kernel the shared libsimdjson picks at run time (icelake here).
 * On-Demand validates only what it touches, so it would need a full walk on
 * top; and its iteration code is compiled into this object file for the
 * baseline x86-64 target (simdjson's "fallback" namespace). Measured on one
 * core on 230-byte user events, ten fields out: DOM parse + our walk ~5.7M
 * docs/s; On-Demand touching only the ten fields ~5.4M/s (not validated);
 * On-Demand walking every value ~3.7M/s (the same with -march=haswell). So
 * the DOM path is both the validating and the faster one.
 *
 * Extraction walks each object once and matches its keys against a compiled
 * tree of the requested paths, rather than doing one lookup per path: with
 * dom::object::at_key per path the user-event extract ran at ~4.4M docs/s,
 * with the single walk at ~5.7M/s. (Reading simdjson's tape directly instead
 * of through dom::object iterators measured the same, so we stay on the
 * public API.) */
#include "kstreams/json.h"

#include <simdjson.h>

#include <charconv>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

namespace {

/* One member name in the compiled path tree. The children of a node are
 * contiguous in ks_json_fields_s::nodes so that matching a key is a scan of a
 * short array. */
struct field_node {
        uint32_t name_off; /* into ks_json_fields_s::names */
        uint32_t name_len;
        int32_t out; /* output slot, or -1 when only a prefix */
        uint32_t first_child;
        uint32_t n_children;
};

/* An object or array asked for as a value; its text is produced after the
 * walk, when no more appends can move the text buffer. */
struct pending_text {
        size_t out;
        simdjson::dom::element value;
        size_t text_off, text_len;
};

}  // namespace

struct ks_json_fields_s {
        std::vector<field_node> nodes; /* nodes[0] is the top-level object */
        std::string names;
        /* same_as[i] >= 0: path i repeats path same_as[i]; copy its value. */
        std::vector<int32_t> same_as;
        bool any_same_as = false;
        size_t n         = 0;
};

struct ks_json_parser_s {
        simdjson::dom::parser dom;
        /* seen[node] == generation: the node's key was met in this document;
         * a later duplicate key is ignored (first occurrence wins). Bumping
         * the generation resets every node without a memset. */
        std::vector<uint32_t> seen;
        uint32_t generation = 0;
        std::vector<pending_text> pending;
        std::string text;    /* minified objects and arrays, NUL-separated */
        std::string rewrite; /* the input with oversized integers as doubles */
};

namespace {

const char *error_name(simdjson::error_code code) {
        using namespace simdjson;
        switch (code) {
        case CAPACITY:
                return "CAPACITY";
        case MEMALLOC:
                return "MEMALLOC";
        case TAPE_ERROR:
                return "TAPE_ERROR";
        case DEPTH_ERROR:
                return "DEPTH_ERROR";
        case STRING_ERROR:
                return "STRING_ERROR";
        case T_ATOM_ERROR:
                return "T_ATOM_ERROR";
        case F_ATOM_ERROR:
                return "F_ATOM_ERROR";
        case N_ATOM_ERROR:
                return "N_ATOM_ERROR";
        case NUMBER_ERROR:
                return "NUMBER_ERROR";
        case UTF8_ERROR:
                return "UTF8_ERROR";
        case EMPTY:
                return "EMPTY";
        case UNESCAPED_CHARS:
                return "UNESCAPED_CHARS";
        case UNCLOSED_STRING:
                return "UNCLOSED_STRING";
        case UNSUPPORTED_ARCHITECTURE:
                return "UNSUPPORTED_ARCHITECTURE";
        default:
                return "ERROR";
        }
}

__attribute__((format(printf, 3, 4))) void set_errstr(char *errstr,
                                                      size_t errstr_size,
                                                      const char *fmt,
                                                      ...) {
        va_list ap;
        if (!errstr || !errstr_size)
                return;
        va_start(ap, fmt);
        vsnprintf(errstr, errstr_size, fmt, ap);
        va_end(ap);
}

/* Integers beyond int64/uint64 are valid JSON but simdjson 3.0 rejects them
 * with NUMBER_ERROR. Rewrites such integers as "<digits>.0" so that a second
 * parse reads them as doubles, as the API promises. Only integer tokens in
 * value position outside strings are touched; anything else is copied as is
 * and left for the parser to judge. @returns true if something was
 * rewritten. Runs only after a NUMBER_ERROR, so speed does not matter. */
bool rewrite_big_integers(const char *s, size_t len, std::string &out) {
        static const char int64_min_digits[]  = "9223372036854775808";
        static const char uint64_max_digits[] = "18446744073709551615";
        bool in_string = false, changed = false;
        out.clear();
        for (size_t i = 0; i < len;) {
                char c = s[i];
                if (in_string) {
                        size_t step = c == '\\' && i + 1 < len ? 2 : 1;
                        if (c == '"')
                                in_string = false;
                        out.append(s + i, step);
                        i += step;
                        continue;
                }
                if (c == '"') {
                        in_string = true;
                        out.push_back(c);
                        i++;
                        continue;
                }
                bool starts = c == '-' || (c >= '0' && c <= '9');
                char prev   = i ? s[i - 1] : ' ';
                if (!starts || !(prev == ':' || prev == ',' || prev == '[' ||
                                 prev == ' ' || prev == '\t' || prev == '\n' ||
                                 prev == '\r')) {
                        out.push_back(c);
                        i++;
                        continue;
                }
                bool negative = c == '-';
                size_t d0 = i + negative, d1 = d0;
                while (d1 < len && s[d1] >= '0' && s[d1] <= '9')
                        d1++;
                size_t ndigits = d1 - d0;
                bool is_int    = ndigits > 0 && s[d0] != '0' &&
                              !(d1 < len &&
                                (s[d1] == '.' || s[d1] == 'e' || s[d1] == 'E'));
                const char *limit =
                        negative ? int64_min_digits : uint64_max_digits;
                size_t limit_len = negative ? 19 : 20;
                bool too_big =
                        is_int && (ndigits > limit_len ||
                                   (ndigits == limit_len &&
                                    memcmp(s + d0, limit, limit_len) > 0));
                size_t end = d1 > i ? d1 : i + 1;
                out.append(s + i, end - i);
                if (too_big) {
                        out.append(".0");
                        changed = true;
                }
                i = end;
        }
        return changed;
}

/* Appends @p s as a JSON string literal. */
void append_escaped(std::string_view s, std::string &out) {
        out.push_back('"');
        for (char c : s) {
                unsigned char u = (unsigned char)c;
                if (c == '"' || c == '\\') {
                        out.push_back('\\');
                        out.push_back(c);
                } else if (u < 0x20) {
                        char esc[8];
                        snprintf(esc, sizeof(esc), "\\u%04x", u);
                        out.append(esc);
                } else {
                        out.push_back(c);
                }
        }
        out.push_back('"');
}

/* Appends the minified JSON text of @p v. Strings are re-escaped; doubles are
 * written in their shortest round-trip form, with ".0" added to integral
 * ones so that they stay doubles when read back. */
void minify(simdjson::dom::element v, std::string &out) {
        using simdjson::dom::element_type;
        switch (v.type()) {
        case element_type::OBJECT: {
                /* A copy: value_unsafe() refers into the temporary result. */
                simdjson::dom::object obj = v.get_object().value_unsafe();
                bool first                = true;
                out.push_back('{');
                for (simdjson::dom::key_value_pair kv : obj) {
                        if (!first)
                                out.push_back(',');
                        first = false;
                        append_escaped(kv.key, out);
                        out.push_back(':');
                        minify(kv.value, out);
                }
                out.push_back('}');
                break;
        }
        case element_type::ARRAY: {
                simdjson::dom::array arr = v.get_array().value_unsafe();
                bool first               = true;
                out.push_back('[');
                for (simdjson::dom::element e : arr) {
                        if (!first)
                                out.push_back(',');
                        first = false;
                        minify(e, out);
                }
                out.push_back(']');
                break;
        }
        case element_type::STRING:
                append_escaped(v.get_string().value_unsafe(), out);
                break;
        case element_type::INT64:
        case element_type::UINT64:
        case element_type::DOUBLE: {
                char num[40];
                std::to_chars_result r;
                if (v.type() == element_type::INT64)
                        r = std::to_chars(num, num + sizeof(num),
                                          v.get_int64().value_unsafe());
                else if (v.type() == element_type::UINT64)
                        r = std::to_chars(num, num + sizeof(num),
                                          v.get_uint64().value_unsafe());
                else
                        r = std::to_chars(num, num + sizeof(num),
                                          v.get_double().value_unsafe());
                out.append(num, (size_t)(r.ptr - num));
                if (v.type() == element_type::DOUBLE &&
                    !memchr(num, '.', (size_t)(r.ptr - num)) &&
                    !memchr(num, 'e', (size_t)(r.ptr - num)))
                        out.append(".0");
                break;
        }
        case element_type::BOOL:
                out.append(v.get_bool().value_unsafe() ? "true" : "false");
                break;
        case element_type::NULL_VALUE:
                out.append("null");
                break;
        }
}

/* Member names are short: two overlapping word loads per name instead of a
 * call to memcmp, which was ~9% of the user-event extract profile. */
inline uint64_t load64(const char *p) {
        uint64_t v;
        memcpy(&v, p, 8);
        return v;
}

inline uint32_t load32(const char *p) {
        uint32_t v;
        memcpy(&v, p, 4);
        return v;
}

inline bool same_name(const char *a, const char *b, size_t len) {
        if (len >= 8) {
                for (; len > 16; a += 8, b += 8, len -= 8)
                        if (load64(a) != load64(b))
                                return false;
                return load64(a) == load64(b) &&
                       load64(a + len - 8) == load64(b + len - 8);
        }
        if (len >= 4)
                return load32(a) == load32(b) &&
                       load32(a + len - 4) == load32(b + len - 4);
        for (; len; a++, b++, len--)
                if (*a != *b)
                        return false;
        return true;
}

struct walk_ctx {
        const ks_json_fields_s *fields;
        ks_json_parser_s *parser;
        ks_json_value_t *out;
};

void set_value(walk_ctx &ctx, const field_node &node, simdjson::dom::element v);

/* Matches the members of @p obj against the children of @p node_id; stops as
 * soon as every child has been found. */
void walk(walk_ctx &ctx, uint32_t node_id, simdjson::dom::object obj) {
        const field_node &node = ctx.fields->nodes[node_id];
        const field_node *kids = ctx.fields->nodes.data() + node.first_child;
        const char *names      = ctx.fields->names.data();
        uint32_t *seen         = ctx.parser->seen.data() + node.first_child;
        const uint32_t gen     = ctx.parser->generation;
        uint32_t remaining = node.n_children, cursor = 0;

        if (!remaining)
                return;
        for (simdjson::dom::key_value_pair kv : obj) {
                /* Producers usually write keys in one order, and callers list
                 * paths in that order: try the child after the last match
                 * first. */
                uint32_t k = cursor, tries = 0;
                for (; tries < node.n_children; tries++) {
                        const field_node &c = kids[k];
                        if (c.name_len == kv.key.size() &&
                            same_name(names + c.name_off, kv.key.data(),
                                      c.name_len))
                                break;
                        if (++k == node.n_children)
                                k = 0;
                }
                if (tries == node.n_children || seen[k] == gen)
                        continue;
                seen[k] = gen;
                set_value(ctx, kids[k], kv.value);
                if (--remaining == 0)
                        return;
                cursor = k + 1 == node.n_children ? 0 : k + 1;
        }
}

void set_value(walk_ctx &ctx,
               const field_node &node,
               simdjson::dom::element v) {
        using simdjson::dom::element_type;
        element_type type = v.type();
        if (type == element_type::OBJECT && node.n_children)
                walk(ctx, (uint32_t)(&node - ctx.fields->nodes.data()),
                     v.get_object().value_unsafe());
        if (node.out < 0)
                return;
        ks_json_value_t *o = &ctx.out[node.out];
        switch (type) {
        case element_type::STRING: {
                std::string_view s = v.get_string().value_unsafe();
                o->type            = KS_JSON_STRING;
                o->u.s.ptr         = s.data(); /* simdjson NUL-terminates */
                o->u.s.len         = s.size();
                break;
        }
        case element_type::INT64:
                o->type = KS_JSON_INT;
                o->u.i  = v.get_int64().value_unsafe();
                break;
        case element_type::UINT64: /* only used above INT64_MAX */
                o->type = KS_JSON_DOUBLE;
                o->u.d  = (double)v.get_uint64().value_unsafe();
                break;
        case element_type::DOUBLE:
                o->type = KS_JSON_DOUBLE;
                o->u.d  = v.get_double().value_unsafe();
                break;
        case element_type::BOOL:
                o->type = KS_JSON_BOOL;
                o->u.b  = v.get_bool().value_unsafe();
                break;
        case element_type::NULL_VALUE:
                o->type = KS_JSON_NULL;
                break;
        case element_type::OBJECT:
        case element_type::ARRAY:
                o->type = type == element_type::OBJECT ? KS_JSON_OBJECT
                                                       : KS_JSON_ARRAY;
                ctx.parser->pending.push_back({(size_t)node.out, v, 0, 0});
                break;
        }
}

/* A node of the tree being compiled, before it is flattened. */
struct build_node {
        std::string name;
        int32_t out = -1;
        std::vector<size_t> kids; /* indexes into the build vector */
};

}  // namespace

ks_json_parser_t *ks_json_parser_new(void) {
        return new (std::nothrow) ks_json_parser_s();
}

void ks_json_parser_destroy(ks_json_parser_t *parser) {
        delete parser;
}

ks_json_fields_t *ks_json_fields_new(const char *const *paths,
                                     size_t n,
                                     char *errstr,
                                     size_t errstr_size) {
        if (n && !paths) {
                set_errstr(errstr, errstr_size, "json: no paths given");
                return nullptr;
        }
        try {
                std::vector<build_node> tree(1);
                auto fields = std::make_unique<ks_json_fields_s>();
                fields->n   = n;
                fields->same_as.assign(n, -1);
                for (size_t i = 0; i < n; i++) {
                        const char *p = paths[i];
                        if (!p || !*p) {
                                set_errstr(errstr, errstr_size,
                                           "json: field path %zu is empty", i);
                                return nullptr;
                        }
                        size_t cur = 0;
                        for (const char *seg = p;;) {
                                const char *dot = strchr(seg, '.');
                                size_t len =
                                        dot ? (size_t)(dot - seg) : strlen(seg);
                                if (!len) {
                                        set_errstr(errstr, errstr_size,
                                                   "json: field path \"%s\" "
                                                   "has an empty member name",
                                                   p);
                                        return nullptr;
                                }
                                std::string name(seg, len);
                                size_t next = 0;
                                bool found  = false;
                                for (size_t k : tree[cur].kids) {
                                        if (tree[k].name == name) {
                                                next  = k;
                                                found = true;
                                                break;
                                        }
                                }
                                if (!found) {
                                        tree.emplace_back();
                                        next            = tree.size() - 1;
                                        tree[next].name = name;
                                        tree[cur].kids.push_back(next);
                                }
                                cur = next;
                                if (!dot)
                                        break;
                                seg = dot + 1;
                        }
                        if (tree[cur].out >= 0) {
                                fields->same_as[i]  = tree[cur].out;
                                fields->any_same_as = true;
                        } else {
                                tree[cur].out = (int32_t)i;
                        }
                }

                /* Flatten breadth-first so that siblings are contiguous. */
                std::vector<size_t> order{0};
                fields->nodes.resize(tree.size());
                for (size_t q = 0; q < order.size(); q++) {
                        const build_node &b = tree[order[q]];
                        field_node &f       = fields->nodes[q];
                        f.name_off          = (uint32_t)fields->names.size();
                        f.name_len          = (uint32_t)b.name.size();
                        f.out               = b.out;
                        f.first_child       = (uint32_t)order.size();
                        f.n_children        = (uint32_t)b.kids.size();
                        fields->names += b.name;
                        order.insert(order.end(), b.kids.begin(), b.kids.end());
                }
                return fields.release();
        } catch (const std::bad_alloc &) {
                set_errstr(errstr, errstr_size, "json: out of memory");
                return nullptr;
        }
}

void ks_json_fields_destroy(ks_json_fields_t *fields) {
        delete fields;
}

size_t ks_json_fields_count(const ks_json_fields_t *fields) {
        return fields ? fields->n : 0;
}

ks_err_t ks_json_extract(ks_json_parser_t *parser,
                         const ks_json_fields_t *fields,
                         const void *data,
                         size_t len,
                         ks_json_value_t *out,
                         char *errstr,
                         size_t errstr_size) {
        using namespace simdjson;
        if (!parser || !fields || (!data && len) || (!out && fields->n)) {
                set_errstr(errstr, errstr_size, "json: invalid argument");
                return KS_ERR_INVALID_ARG;
        }
        for (size_t i = 0; i < fields->n; i++)
                out[i].type = KS_JSON_ABSENT;
        try {
                if (parser->seen.size() < fields->nodes.size())
                        parser->seen.resize(fields->nodes.size(), 0);
                if (++parser->generation == 0) { /* wrapped: start over */
                        std::fill(parser->seen.begin(), parser->seen.end(), 0);
                        parser->generation = 1;
                }
                parser->pending.clear();
                parser->text.clear();

                /* The input may lack SIMDJSON_PADDING readable bytes after
                 * it, so simdjson copies it into its own padded buffer, which
                 * it keeps and grows to the largest document. */
                const char *doc = len ? (const char *)data : "";
                dom::element root;
                error_code err = parser->dom.parse(doc, len, true).get(root);
                if (err == NUMBER_ERROR &&
                    rewrite_big_integers(doc, len, parser->rewrite))
                        err = parser->dom
                                      .parse(parser->rewrite.data(),
                                             parser->rewrite.size(), true)
                                      .get(root);
                if (err == MEMALLOC) {
                        set_errstr(errstr, errstr_size, "json: out of memory");
                        return KS_ERR_NOMEM;
                }
                if (err) {
                        set_errstr(errstr, errstr_size, "json: %s: %s",
                                   error_name(err), error_message(err));
                        return KS_ERR_JSON;
                }
                if (root.type() != dom::element_type::OBJECT) {
                        set_errstr(
                                errstr, errstr_size,
                                "json: the top-level value is not an object");
                        return KS_ERR_JSON;
                }

                walk_ctx ctx{fields, parser, out};
                walk(ctx, 0, root.get_object().value_unsafe());

                /* Texts go into one buffer; pointers are taken once it has
                 * stopped growing. */
                for (pending_text &p : parser->pending) {
                        p.text_off = parser->text.size();
                        minify(p.value, parser->text);
                        p.text_len = parser->text.size() - p.text_off;
                        parser->text.push_back('\0');
                }
                for (const pending_text &p : parser->pending) {
                        out[p.out].u.s.ptr = parser->text.data() + p.text_off;
                        out[p.out].u.s.len = p.text_len;
                }
                for (size_t i = 0; fields->any_same_as && i < fields->n; i++)
                        if (fields->same_as[i] >= 0)
                                out[i] = out[fields->same_as[i]];
        } catch (const std::bad_alloc &) {
                for (size_t i = 0; i < fields->n; i++)
                        out[i].type = KS_JSON_ABSENT;
                set_errstr(errstr, errstr_size, "json: out of memory");
                return KS_ERR_NOMEM;
        }
        return KS_OK;
}
