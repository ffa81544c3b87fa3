/* Prints CONFIGURATION.md from the property table. */
#include <kstreams/conf.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
        if (argc > 1 &&
            (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
                printf("usage: kstreams-confdoc > CONFIGURATION.md\n"
                       "Prints the kstreams configuration reference as "
                       "Markdown.\n");
                return 0;
        }
        ks_buf_t out = {0};
        if (ks_conf_properties_markdown(&out)) {
                fprintf(stderr, "kstreams-confdoc: out of memory\n");
                return 1;
        }
        fwrite(out.data, 1, out.len, stdout);
        ks_buf_free(&out);
        return 0;
}
