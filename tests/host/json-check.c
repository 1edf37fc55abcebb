/* tests/host/json-check: reads one JSON document from stdin with json-c;
 * exits 1 when it is not valid JSON (or has trailing garbage). With an
 * argument such as "jobs.0.state", prints that member (strings bare). */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
main(int argc, char **argv)
{
    static char buf[1 << 22];
    size_t n = fread(buf, 1, sizeof buf - 1, stdin);
    struct json_tokener *tok = json_tokener_new();
    json_object *o, *cur;
    char *path, *part, *save = NULL;
    int rc = 0;

    buf[n] = 0;
    o = json_tokener_parse_ex(tok, buf, (int)n);
    if (!o || json_tokener_get_error(tok) != json_tokener_success) {
        fprintf(stderr, "json-check: invalid JSON: %s\n",
                json_tokener_error_desc(json_tokener_get_error(tok)));
        rc = 1;
        goto out;
    }
    for (size_t i = (size_t)json_tokener_get_parse_end(tok); i < n; i++)
        if (!strchr(" \t\r\n", buf[i])) {
            fprintf(stderr, "json-check: trailing data after the JSON document\n");
            rc = 1;
            goto out;
        }
    if (argc > 1) {
        cur = o;
        path = strdup(argv[1]);
        for (part = strtok_r(path, ".", &save); part && cur; part = strtok_r(NULL, ".", &save)) {
            if (json_object_is_type(cur, json_type_array))
                cur = json_object_array_get_idx(cur, (size_t)atoi(part));
            else if (!json_object_object_get_ex(cur, part, &cur))
                cur = NULL;
        }
        free(path);
        if (!cur)
            rc = 2;
        else if (json_object_is_type(cur, json_type_string))
            printf("%s\n", json_object_get_string(cur));
        else
            printf("%s\n", json_object_to_json_string(cur));
    }
out:
    /* freed on every path: the tests run it under LeakSanitizer too */
    json_object_put(o);
    json_tokener_free(tok);
    return rc;
}
