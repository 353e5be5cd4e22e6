/* SVG primitives and the file they go to (klab vtop / ptdump / ptdiff --svg). Every text is escaped: labels
 * come from snapshot files and symbol names, which may hold '<' or '&'. */
#define _GNU_SOURCE
#include "svg_internal.h"
#include "error_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* One style sheet for every picture: monospace text (addresses line up), level colours lvl0..lvl5 shared by
 * a walk's bit fields and its tables so the eye follows an index to its entry. */
static const char style[] =
    "<style>\n"
    "text { font-family: 'DejaVu Sans Mono', 'Liberation Mono', monospace; font-size: 12px; fill: #222; }\n"
    "text.title { font-size: 16px; font-weight: bold; }\n"
    "text.small { font-size: 10px; fill: #444; }\n"
    "text.bad { fill: #b00020; font-weight: bold; }\n"
    "rect { stroke: #333; stroke-width: 1; }\n"
    "rect.table { fill: #fafafa; }\n"
    "rect.none { fill: #e8e8e8; stroke: #bbb; }\n"
    "rect.seg { stroke: none; }\n"
    "rect.bad { fill: #b00020; }\n"
    "rect.mapped { fill: none; stroke: #1a7f37; stroke-width: 2; }\n"
    "rect.unmapped { fill: none; stroke: #b00020; stroke-width: 2; }\n"
    "rect.changed { fill: none; stroke: #d97706; stroke-width: 2; }\n"
    ".lvl0 { fill: #fde2e4; } .lvl1 { fill: #e2ece9; } .lvl2 { fill: #dfe7fd; } .lvl3 { fill: #fff1c1; }\n"
    ".lvl4 { fill: #e9d5ff; } .lvl5 { fill: #d1fae5; } .sign { fill: #eeeeee; }\n"
    "line.arrow { stroke: #333; stroke-width: 1.5; marker-end: url(#head); }\n"
    "line.bad { stroke: #b00020; stroke-width: 2; }\n"
    "</style>\n"
    "<defs><marker id=\"head\" markerWidth=\"8\" markerHeight=\"8\" refX=\"7\" refY=\"4\" orient=\"auto\">"
    "<path d=\"M0,0 L8,4 L0,8 z\" fill=\"#333\"/></marker></defs>\n";

/* Appends s with XML's five special characters escaped and control characters dropped. */
static void escaped(struct klab_textbuf *t, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': klab_tb_add(t, "&lt;"); break;
        case '>': klab_tb_add(t, "&gt;"); break;
        case '&': klab_tb_add(t, "&amp;"); break;
        case '"': klab_tb_add(t, "&quot;"); break;
        case '\'': klab_tb_add(t, "&apos;"); break;
        default:
            if ((unsigned char)*s >= 0x20 && *s != 0x7f)
                klab_tb_add(t, "%c", *s);
        }
    }
}

void svg_begin(struct klab_textbuf *t, int width, int height, const char *title)
{
    klab_tb_add(t, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                   "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%d\" height=\"%d\" "
                   "viewBox=\"0 0 %d %d\">\n<title>", width, height, width, height);
    escaped(t, title);
    klab_tb_add(t, "</title>\n%s<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#ffffff\" stroke=\"none\"/>\n",
                style, width, height);
}

void svg_end(struct klab_textbuf *t)
{
    klab_tb_add(t, "</svg>\n");
}

void svg_text(struct klab_textbuf *t, int x, int y, const char *cls, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    klab_tb_add(t, "<text x=\"%d\" y=\"%d\"%s%s%s>", x, y, *cls ? " class=\"" : "", cls, *cls ? "\"" : "");
    escaped(t, text);
    klab_tb_add(t, "</text>\n");
}

void svg_rect_titled(struct klab_textbuf *t, double x, double y, double w, double h, const char *cls,
                     const char *fill, const char *title)
{
    klab_tb_add(t, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"", x, y, w, h);
    if (*cls)
        klab_tb_add(t, " class=\"%s\"", cls);
    if (fill)
        klab_tb_add(t, " style=\"fill: %s\"", fill);
    if (!title) {
        klab_tb_add(t, "/>\n");
        return;
    }
    klab_tb_add(t, "><title>");
    escaped(t, title);
    klab_tb_add(t, "</title></rect>\n");
}

void svg_rect(struct klab_textbuf *t, double x, double y, double w, double h, const char *cls, const char *fill)
{
    svg_rect_titled(t, x, y, w, h, cls, fill, NULL);
}

void svg_arrow(struct klab_textbuf *t, int x1, int y1, int x2, int y2, const char *cls)
{
    klab_tb_add(t, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" class=\"%s\"/>\n", x1, y1, x2, y2, cls);
}

/* Writable and executable together is what W^X forbids (red); user pages in cool colours, kernel in warm. */
const char *svg_perms_colour(const struct klab_perms *p)
{
    const bool user = p->user_read || p->user_write || p->user_exec;
    const bool w = user ? p->user_write : p->kernel_write, x = user ? p->user_exec : p->kernel_exec;
    const bool r = user ? p->user_read : p->kernel_read;
    if (w && x)
        return "#d62728";
    if (user)
        return x ? "#e6b800" : w ? "#2a9d8f" : "#9b8ac4";
    if (!r && !x)
        return "#7f7f7f";
    return x ? "#f28e2b" : w ? "#59a14f" : "#8fb0d9";
}

bool svg_wrap_line(const char *text, unsigned width, unsigned n, const char **start, size_t *n_chars)
{
    const char *p = text;
    for (unsigned line = 0;; line++) {
        p += strspn(p, " ");
        if (!*p)
            return false;
        size_t len = strlen(p), take = len;
        if (len > width) {
            take = width;
            while (take > 0 && p[take] != ' ')
                take--;
            if (take == 0)
                take = width;   /* one word longer than a line: cut it */
        }
        if (line == n) {
            *start = p;
            *n_chars = take;
            return true;
        }
        p += take;
    }
}

char *svg_finish(struct klab_textbuf *t, size_t *len, char *err, size_t errlen)
{
    if (t->failed || !t->p) {
        free(t->p);
        if (err)
            snprintf(err, errlen, "out of memory drawing the picture");
        return NULL;
    }
    if (len)
        *len = t->len;
    return t->p;
}

/* The user named the file: it is theirs to replace, but a symlink there is not followed (another user may
 * have planted it in a shared folder), and the picture goes to a new file renamed over the old one, so a
 * reader never sees half of it. "-" is stdout. */
int klab_write_output(const char *path, const char *text, size_t len, struct klab_error *error)
{
    KLAB_ERROR_BUF(error);
    if (!strcmp(path, "-")) {
        if (fwrite(text, 1, len, stdout) != len || fflush(stdout) != 0) {
            snprintf(err, errlen, "stdout: %s", strerror(errno));
            return -1;
        }
        return 0;
    }
    struct stat st;
    if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: %s, not a regular file: refusing to write over it", path,
                 S_ISLNK(st.st_mode) ? "a symlink" : "exists");
        return -1;
    }
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp-%ld", path, (long)getpid()) >= sizeof tmp) {
        snprintf(err, errlen, "%s: path too long", path);
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "%s: cannot create: %s", path, strerror(errno));
        return -1;
    }
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(fd, text + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            snprintf(err, errlen, "%s: %s", path, n < 0 ? strerror(errno) : "short write");
            close(fd);
            unlink(tmp);
            return -1;
        }
        done += (size_t)n;
    }
    if (close(fd) != 0 || rename(tmp, path) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}
