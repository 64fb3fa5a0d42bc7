/* JSON files: cJSON_Print, then the atomic write of sys/files.c. */
#include "jsonfile.h"

#include <stdio.h>
#include <string.h>

#include "error.h"
#include "files.h"

int json_write_file(const char *path, const cJSON *root)
{
    char *text = cJSON_Print(root);
    if (!text)
        return amp_fail(AMP_ENOMEM, "out of memory formatting %s", path);
    const int rc = file_write_atomic(path, text, strlen(text));
    cJSON_free(text);
    return rc;
}

int json_write_in(const char *dir, const char *name, const cJSON *root)
{
    char path[4200];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
        return amp_fail(AMP_EIO, "%s/%s: path too long", dir, name);
    return json_write_file(path, root);
}
