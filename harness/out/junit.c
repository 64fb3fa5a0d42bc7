/* JUnit XML for verify's verdicts: a <testsuite> with one <testcase> per recipe; a failing
 * recipe carries a <failure> with its reason, and the baseline moves when there are any. */
#include "junit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "files.h"

static void put_escaped(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

int junit_write(const char *file, const struct verification *v, double seconds)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return amp_fail(AMP_ENOMEM, "out of memory formatting %s", file);
    size_t failures = 0;
    for (size_t i = 0; i < v->n; i++)
        failures += !v->verdicts[i].pass;
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    fprintf(f, "<testsuites tests=\"%zu\" failures=\"%zu\">\n", v->n, failures);
    fprintf(f, "  <testsuite name=\"ampbench.verify\" tests=\"%zu\" failures=\"%zu\" "
               "time=\"%.3f\">\n", v->n, failures, seconds);
    for (size_t i = 0; i < v->n; i++) {
        const struct verdict *vd = &v->verdicts[i];
        fprintf(f, "    <testcase classname=\"ampbench.verify\" name=\"%s\">\n",
                vd->recipe->name);
        if (!vd->pass) {
            fprintf(f, "      <failure message=\"");
            put_escaped(f, vd->reason);
            fprintf(f, "\">");
            for (size_t k = 0; k < v->nmoves; k++)
                if (strncmp(v->moves[k], vd->recipe->name, strlen(vd->recipe->name)) == 0 &&
                    strchr(" :", v->moves[k][strlen(vd->recipe->name)])) {
                    put_escaped(f, v->moves[k]);
                    fputc('\n', f);
                }
            fprintf(f, "</failure>\n");
        } else {
            fprintf(f, "      <system-out>");
            put_escaped(f, vd->reason);
            fprintf(f, "</system-out>\n");
        }
        fprintf(f, "    </testcase>\n");
    }
    fprintf(f, "  </testsuite>\n</testsuites>\n");
    fclose(f);
    int rc = file_write_atomic(file, buf, len);
    free(buf);
    return rc;
}
