/* The in-memory sorted map behind the in-memory stores: a skip list.
 *
 * Why a skip list: O(log n) expected get/put/delete and seek, in-order
 * iteration by following level-0 links, and deletion without rebalancing;
 * about a third of the code of a red-black tree. A sorted array would make
 * every insert O(n), which a restore of a million keys cannot afford. */
#include <stdlib.h>

#include "store_int.h"

#define SL_MAX_LEVEL 24 /* p = 1/4: enough for 4^24 entries */

struct ks__mnode_s {
        char *val; /**< NULL when vlen is 0 */
        size_t vlen;
        size_t vcap;
        size_t klen;
        int level;
        struct ks__mnode_s *next[]; /* level links, then the key bytes */
};

struct ks__skiplist_s {
        ks__mnode_t *head;
        int level;
        size_t count;
        size_t bytes;
        uint64_t rng;
};

static char *node_key(const ks__mnode_t *n) {
        return (char *)&n->next[n->level];
}

static ks__mnode_t *node_new(int level, ks_bytes_t key) {
        ks__mnode_t *n =
                calloc(1, sizeof(*n) + (size_t)level * sizeof(n) + key.len);
        if (!n)
                return NULL;
        n->level = level;
        n->klen  = key.len;
        if (key.len)
                memcpy(node_key(n), key.data, key.len);
        return n;
}

ks__skiplist_t *ks__skiplist_new(void) {
        ks__skiplist_t *sl = calloc(1, sizeof(*sl));
        if (!sl)
                return NULL;
        sl->head = node_new(SL_MAX_LEVEL, (ks_bytes_t){NULL, 0});
        if (!sl->head) {
                free(sl);
                return NULL;
        }
        sl->level = 1;
        sl->rng   = 0x9e3779b97f4a7c15ull ^ (uintptr_t)sl;
        return sl;
}

void ks__skiplist_destroy(ks__skiplist_t *sl) {
        if (!sl)
                return;
        ks__mnode_t *n = sl->head;
        while (n) {
                ks__mnode_t *next = n->next[0];
                free(n->val);
                free(n);
                n = next;
        }
        free(sl);
}

static int random_level(ks__skiplist_t *sl) {
        /* xorshift64*: two random bits per level. */
        sl->rng ^= sl->rng >> 12;
        sl->rng ^= sl->rng << 25;
        sl->rng ^= sl->rng >> 27;
        uint64_t r = sl->rng * 0x2545f4914f6cdd1dull;
        int level  = 1;
        while (level < SL_MAX_LEVEL && (r & 3) == 0) {
                level++;
                r >>= 2;
        }
        return level;
}

static int node_cmp(const ks__mnode_t *n, ks_bytes_t key) {
        return ks__bytes_cmp(node_key(n), n->klen, key.data, key.len);
}

/* The last node < key at each level in update[]; returns the first node
 * >= key. */
static ks__mnode_t *find_ge(const ks__skiplist_t *sl,
                            ks_bytes_t key,
                            ks__mnode_t **update) {
        ks__mnode_t *x = sl->head;
        for (int i = sl->level - 1; i >= 0; i--) {
                while (x->next[i] && node_cmp(x->next[i], key) < 0)
                        x = x->next[i];
                if (update)
                        update[i] = x;
        }
        return x->next[0];
}

ks__mnode_t *ks__skiplist_get(const ks__skiplist_t *sl, ks_bytes_t key) {
        ks__mnode_t *n = find_ge(sl, key, NULL);
        return n && node_cmp(n, key) == 0 ? n : NULL;
}

static ks_err_t set_value(ks__skiplist_t *sl, ks__mnode_t *n, ks_bytes_t v) {
        if (v.len > n->vcap) {
                char *p = realloc(n->val, v.len);
                if (!p)
                        return KS_ERR_NOMEM;
                n->val  = p;
                n->vcap = v.len;
        }
        if (v.len)
                memcpy(n->val, v.data, v.len);
        sl->bytes = sl->bytes - n->vlen + v.len;
        n->vlen   = v.len;
        return KS_OK;
}

ks_err_t ks__skiplist_put(ks__skiplist_t *sl, ks_bytes_t key, ks_bytes_t val) {
        ks__mnode_t *update[SL_MAX_LEVEL];
        ks__mnode_t *n = find_ge(sl, key, update);
        if (n && node_cmp(n, key) == 0)
                return set_value(sl, n, val);

        int level = random_level(sl);
        n         = node_new(level, key);
        if (!n)
                return KS_ERR_NOMEM;
        if (set_value(sl, n, val)) {
                free(n);
                return KS_ERR_NOMEM;
        }
        for (int i = sl->level; i < level; i++)
                update[i] = sl->head;
        if (level > sl->level)
                sl->level = level;
        for (int i = 0; i < level; i++) {
                n->next[i]         = update[i]->next[i];
                update[i]->next[i] = n;
        }
        sl->count++;
        sl->bytes += key.len;
        return KS_OK;
}

bool ks__skiplist_del(ks__skiplist_t *sl, ks_bytes_t key) {
        ks__mnode_t *update[SL_MAX_LEVEL];
        ks__mnode_t *n = find_ge(sl, key, update);
        if (!n || node_cmp(n, key) != 0)
                return false;
        for (int i = 0; i < n->level; i++)
                update[i]->next[i] = n->next[i];
        while (sl->level > 1 && !sl->head->next[sl->level - 1])
                sl->level--;
        sl->count--;
        sl->bytes -= n->klen + n->vlen;
        free(n->val);
        free(n);
        return true;
}

ks__mnode_t *ks__skiplist_seek(const ks__skiplist_t *sl, ks_bytes_t key) {
        if (!key.data)
                return sl->head->next[0];
        return find_ge(sl, key, NULL);
}

ks__mnode_t *ks__skiplist_next(const ks__mnode_t *n) {
        return n->next[0];
}

ks_bytes_t ks__mnode_key(const ks__mnode_t *n) {
        return (ks_bytes_t){node_key(n), n->klen};
}

ks_bytes_t ks__mnode_value(const ks__mnode_t *n) {
        return (ks_bytes_t){n->vlen ? n->val : "", n->vlen};
}

size_t ks__skiplist_count(const ks__skiplist_t *sl) {
        return sl->count;
}

size_t ks__skiplist_bytes(const ks__skiplist_t *sl) {
        return sl->bytes;
}
