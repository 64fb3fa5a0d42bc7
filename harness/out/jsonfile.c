/* JSON files: written with cJSON_Print after every string is made valid UTF-8, then the atomic
 * write of sys/files.c; read back bounded (sys/files.c) and parsed strictly. */
#include "jsonfile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "files.h"
#include "text.h"

/* Replaces every string of the tree (values and keys) that is not valid UTF-8 (a path given in
 * another encoding, say) by its repaired copy, so that the file is valid JSON for any reader. */
static int repair_utf8(cJSON *item)
{
    for (; item; item = item->next) {
        if (item->string && !(item->type & cJSON_StringIsConst) &&
            utf8_valid_prefix(item->string, strlen(item->string)) != strlen(item->string)) {
            char *fixed = utf8_repaired(item->string);
            if (!fixed)
                return AMP_ENOMEM;
            cJSON_free(item->string);
            item->string = fixed;
        }
        if (cJSON_IsString(item) && item->valuestring &&
            utf8_valid_prefix(item->valuestring, strlen(item->valuestring)) !=
                strlen(item->valuestring)) {
            char *fixed = utf8_repaired(item->valuestring);
            if (!fixed)
                return AMP_ENOMEM;
            cJSON_free(item->valuestring);
            item->valuestring = fixed;
        }
        if (item->child && repair_utf8(item->child) != AMP_OK)
            return AMP_ENOMEM;
    }
    return AMP_OK;
}

int json_write_file(const char *path, cJSON *root)
{
    char *text = repair_utf8(root) == AMP_OK ? cJSON_Print(root) : NULL;
    if (!text)
        return amp_fail(AMP_ENOMEM, "out of memory formatting %s", path);
    const int rc = file_write_atomic(path, text, strlen(text));
    cJSON_free(text);
    return rc;
}

int json_write_in(const char *dir, const char *name, cJSON *root)
{
    char path[4200];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
        return amp_fail(AMP_EIO, "%s/%s: path too long", dir, name);
    return json_write_file(path, root);
}

int json_parse_strict(cJSON **out, const char *text, size_t len, const char *name)
{
    *out = NULL;
    const char *nul = memchr(text, '\0', len);
    if (nul)
        return amp_fail(AMP_EINPUT, "%s: binary data (a NUL byte at byte %zu), not JSON", name,
                        (size_t)(nul - text));
    const size_t valid = utf8_valid_prefix(text, len);
    if (valid != len)
        return amp_fail(AMP_EINPUT, "%s: not valid UTF-8 (byte %zu), not JSON", name, valid);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    size_t at = end ? (size_t)(end - text) : 0;
    if (!root)
        return amp_fail(AMP_EINPUT, "%s: not valid JSON (error near byte %zu)", name, at);
    while (at < len && (text[at] == ' ' || text[at] == '\t' || text[at] == '\n' ||
                        text[at] == '\r'))
        at++;
    if (at < len) {
        cJSON_Delete(root);
        return amp_fail(AMP_EINPUT, "%s: trailing data after the JSON value (byte %zu of %zu)",
                        name, at, len);
    }
    *out = root;
    return AMP_OK;
}

int json_read_file(cJSON **out, const char *path, size_t max_bytes)
{
    *out = NULL;
    char *text;
    size_t len;
    int rc = file_read_all(&text, &len, path, max_bytes);
    if (rc == AMP_OK)
        rc = json_parse_strict(out, text, len, path);
    free(text);
    return rc;
}
